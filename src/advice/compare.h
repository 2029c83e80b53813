// A profile's advice against what a container is granted today (`advise
// --current`): which granted capabilities were never used (drop), which needed
// ones are missing (add), which needed ones it already has (keep), and the
// drop-ALL form to paste, in the spec's own syntax.
#pragma once

#include <string>
#include <vector>

#include "advice/advice.h"
#include "advice/current_spec.h"
#include "profile/profile.h"

namespace capscope::advice {

enum class Action { Drop, Add, Keep };

struct CompareLine {
  Action action = Action::Drop;
  int cap = 0;
  std::string why;  // "granted by the containerd default, never used"
};

struct Comparison {
  CurrentContainer container;
  std::vector<int> held;             // what it holds today, ascending
  std::vector<CompareLine> lines;    // drops, then adds, then keeps; each ascending
  std::vector<int> recommended;      // what to add after dropping ALL: the advised needs
  std::vector<int> default_removed;  // the runtime default's capabilities drop ALL removes
  Escalation escalation;             // the profile's verdict on no_new_privs
  std::vector<std::string> warnings;
};

Comparison compare(const Advice& a, const profile::Profile& p, const CurrentContainer& c);

// "drop CAP_NET_RAW (granted by the docker default, never used)"
std::string line_text(const CompareLine& l);

// The recommended settings in the spec's own form: a Kubernetes container
// securityContext, compose cap_drop/cap_add, docker flags, or setpriv for a pid.
std::string recommended_form(const Comparison& c);

// Every comparison of one spec, as text or as JSON (-f json).
std::string render_comparisons(const std::vector<Comparison>& all, const CurrentSpec& spec,
                               const Advice& a, const profile::Profile& p, bool json);

}  // namespace capscope::advice
