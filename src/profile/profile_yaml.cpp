#include "profile/profile_yaml.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "profile/profile_json.h"
#include "util/json_yaml.h"

namespace capscope::profile {

namespace {

// "web.yaml:14: " or, where the line is unknown, "web.yaml: ".
std::string located(const std::string& source, int line) {
  return line > 0 ? fmt::format("{}:{}: ", source, line) : source + ": ";
}

bool starts_like_json(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{';
}

}  // namespace

std::string to_export_yaml(const Profile& p) { return util::json_to_yaml(to_export_json(p)); }

std::optional<Profile> from_export_yaml(std::string_view text, const std::string& source,
                                        std::string* error) {
  util::YamlLines lines;
  util::YamlProblem problem;
  auto doc = util::yaml_to_json(text, &lines, &problem);
  if (!doc) {
    *error = located(source, problem.line) + "not YAML: " + problem.message;
    return std::nullopt;
  }
  if (!doc->is_object()) {
    *error = located(source, util::line_of(lines, "")) +
             "not a capscope profile (expected a YAML mapping)";
    return std::nullopt;
  }
  ImportError e;
  auto p = from_export_json(*doc, &e);
  if (!p) *error = located(source, util::line_of(lines, e.pointer)) + e.message;
  return p;
}

std::optional<Profile> from_export_text(std::string_view text, const std::string& source,
                                        std::string* error) {
  if (!starts_like_json(text)) return from_export_yaml(text, source, error);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& json_error) {
    util::YamlProblem not_yaml;
    if (util::yaml_to_json(text, nullptr, &not_yaml)) return from_export_yaml(text, source, error);
    *error = fmt::format("{}: not JSON: {}", source, json_error.what());
    return std::nullopt;
  }
  ImportError e;
  auto p = from_export_json(doc, &e);
  if (!p) *error = fmt::format("{}: {}", source, e.message);
  return p;
}

}  // namespace capscope::profile
