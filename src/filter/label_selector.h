// Kubernetes label selectors, in the syntax `kubectl get -l` takes, matched
// against a container's or pod's labels with Kubernetes' own semantics, so a
// selector a user already wrote for kubectl selects the same things here.
//
//   selector    := "" | requirement ("," requirement)*
//   requirement := key | "!" key
//                | key ("=" | "==" | "!=") value
//                | key ("in" | "notin") "(" value ("," value)* ")"
//                | key (">" | "<") integer
//
// Whitespace (space, tab, CR, LF) may stand between any two tokens. A key is
// [prefix "/"] name: prefix a lowercase DNS subdomain (<= 253), name <= 63
// characters of letters, digits, '-', '_', '.', beginning and ending with a
// letter or digit. A value follows the name rule but may be empty (`a=`,
// `a in (x,)`). `>` and `<` compare integers (kubectl accepts them too).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "enrich/runtime/container_info.h"  // Labels

namespace capscope {

class LabelSelector {
 public:
  enum class Op { Exists, DoesNotExist, Equals, NotEquals, In, NotIn, GreaterThan, LessThan };

  struct Requirement {
    std::string key;
    Op op = Op::Exists;
    // Sorted and unique. One value for Equals/NotEquals/GreaterThan/LessThan
    // (the integer in canonical form), none for Exists/DoesNotExist.
    std::vector<std::string> values;

    [[nodiscard]] bool matches(const Labels& labels) const;
    [[nodiscard]] std::string str() const;
    bool operator==(const Requirement&) const = default;
  };

  LabelSelector() = default;  // no requirement: matches everything

  // Throws std::invalid_argument, one line: the selector, what is wrong at
  // which column (1-based), and how to write it, e.g.
  //   selector "app in (a,b": missing ')' at column 12 (write: key in (v1,v2))
  static LabelSelector parse(std::string_view text);

  // Every requirement holds (Kubernetes: `a!=b` and `a notin (b)` hold when a
  // is absent; `a>1` does not).
  [[nodiscard]] bool matches(const Labels& labels) const;

  // Canonical form: requirements sorted by key (then by their own text),
  // duplicates dropped, `==` written `=`, set values sorted; parse(str())
  // gives an equal selector. "" for the empty selector.
  [[nodiscard]] std::string str() const;

  [[nodiscard]] bool empty() const { return requirements_.empty(); }
  [[nodiscard]] const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace capscope
