// YAML documents as a small immutable tree, built from yaml-cpp's parser
// events rather than with YAML::LoadAll: Debian 12's yaml-cpp (0.7.0) loops
// forever in LoadAll, allocating, on inputs its parser accepts without
// consuming them (e.g. "&a," or "!t,": yaml-cpp issue 1040, fixed upstream in
// 2024). Policies arrive through the agent's API too, so a few bytes must not
// hang it. Each document is handled on its own and one that does not move the
// parser forward is an error.
//
// Aliases share the node they refer to, so a small text cannot expand into a
// large tree; an alias to a node that is not complete yet (`&a [*a]`) is an
// error, so the tree never has a cycle.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace capscope::util {

struct YamlNode;
using YamlNodePtr = std::shared_ptr<const YamlNode>;

struct YamlNode {
  enum class Kind : uint8_t { Null, Scalar, Sequence, Map };
  Kind kind = Kind::Null;
  int line = 0;                                              // 1-based; 0 unknown
  std::string value;                                         // Scalar
  std::vector<YamlNodePtr> items;                            // Sequence
  std::vector<std::pair<YamlNodePtr, YamlNodePtr>> entries;  // Map, in document order

  [[nodiscard]] bool is_null() const { return kind == Kind::Null; }
  [[nodiscard]] bool is_scalar() const { return kind == Kind::Scalar; }
  [[nodiscard]] bool is_sequence() const { return kind == Kind::Sequence; }
  [[nodiscard]] bool is_map() const { return kind == Kind::Map; }
};

class YamlError : public std::runtime_error {
 public:
  YamlError(int line, const std::string& what) : std::runtime_error(what), line_(line) {}
  [[nodiscard]] int line() const { return line_; }  // 1-based; 0 unknown

 private:
  int line_;
};

// The documents of text, in order; an empty document is a Null root. Throws
// YamlError: malformed YAML, an alias inside its own anchor, more than
// max_documents documents.
std::vector<YamlNodePtr> load_yaml_documents(std::string_view text, size_t max_documents);

// Whether yaml-cpp's own loaders (YAML::Load, LoadAll, LoadFile) finish on `text`:
// empty if they do, else the one-line reason (with its line) that they would loop
// on. Readers that still walk yaml-cpp's nodes ask this first.
std::string yaml_cpp_would_hang(std::string_view text);

}  // namespace capscope::util
