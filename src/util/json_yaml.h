// JSON <-> YAML, generically: capscope's YAML documents (the profile export,
// record's report) are their JSON documents written as YAML, so the two forms
// cannot drift apart.
//
// Types survive the trip both ways. Writing quotes every string that a YAML
// reader could take for a null, boolean or number ("yes", "123", "null", "",
// "1:1 /tmp/f"), under YAML 1.1 as well as 1.2 since readers differ.
// Reading decides a scalar's type from its tag and quoting (a quoted scalar
// is a string) and resolves plain scalars by the YAML 1.2 core schema, so an
// integer is read as an integer (64-bit timestamps exactly), never a double.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace capscope::util {

// The YAML text of a JSON document: block style, keys in the document's order,
// ending in a newline.
std::string json_to_yaml(const nlohmann::ordered_json& j);

// Where each value of a read document stands in its text: JSON pointer
// ("/uses/1/count") -> 1-based line. For a mapping's entry, the line of its key.
using YamlLines = std::map<std::string, int, std::less<>>;

struct YamlProblem {
  int line = 0;  // 1-based; 0 when unknown
  std::string message;
};

// The JSON document a YAML text holds (its first document); nullopt and
// *problem when the text is not YAML, or holds what JSON cannot (a duplicate
// or non-scalar key, an unsupported tag). lines may be null.
std::optional<nlohmann::json> yaml_to_json(std::string_view text, YamlLines* lines,
                                           YamlProblem* problem);

// The line of the value at pointer, or of its nearest enclosing value that
// lines knows (a missing field: the object it is missing from); 0 if none.
int line_of(const YamlLines& lines, std::string_view pointer);

}  // namespace capscope::util
