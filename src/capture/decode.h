// Decoding of ring-buffer records (bpf/capscope.h layouts) into the plain
// records of src/model/records.h. Defensive: a record shorter than its type
// needs, or with lengths pointing past its end, is rejected, never read past.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "model/records.h"

namespace capscope::capture {

enum class DecodeError { TooShort, UnknownType, BadLength };

struct DecodeResult {
  std::optional<Record> record;
  std::optional<DecodeError> error;
};

DecodeResult decode_record(std::span<const uint8_t> data);
// When a record was made (its ktime_ns, CLOCK_MONOTONIC; every record type has it at
// byte 8), or 0 for a record too short to have one (a lane wakeup).
uint64_t record_ktime(std::span<const uint8_t> data);

// What policies did with a check (the CS_F_POLICY part of its record). Slots are
// numbered within `bank` of the policy set loaded as `generation`.
struct PolicyPart {
  uint64_t post = 0;     // slots the check is an event of
  uint64_t killed = 0;   // slots whose Sigkill the kernel sent
  uint64_t pending = 0;  // slots whose Sigkill waits for user space to classify the check
  uint32_t generation = 0;
  uint32_t bank = 0;
  bool policy_only = false;  // the event filters dropped it: only its policies' events
};

// The policy part of a check record, or nullopt when it has none (or is malformed:
// decode_record() rejects those).
std::optional<PolicyPart> decode_policy_part(std::span<const uint8_t> data);

// argv from the NUL-separated bytes the kernel copied (the last may be cut).
std::vector<std::string> split_args(std::span<const char> bytes);

}  // namespace capscope::capture
