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

// argv from the NUL-separated bytes the kernel copied (the last may be cut).
std::vector<std::string> split_args(std::span<const char> bytes);

}  // namespace capscope::capture
