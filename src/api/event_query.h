// GetEventsRequest -> EventQuery: the filters of `capscope trace`, checked the
// way trace checks its flags, so a subscriber gets the same one-line errors a
// trace user gets (named by request field and by flag).
#pragma once

#include <optional>
#include <string>

#include "api/backend.h"
#include "capscope/v1/capscope.pb.h"

namespace capscope::api {

// The most entries a repeated filter field may have: a subscriber's filters
// are kept per subscriber and matched per event.
inline constexpr int kMaxFilterValues = 1024;

// nullopt and one line in *error ("caps (--caps): unknown capability 'X' ...")
// when a filter does not parse or the filters contradict each other.
std::optional<EventQuery> to_event_query(const v1::GetEventsRequest& request, std::string* error);

}  // namespace capscope::api
