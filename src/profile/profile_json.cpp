#include "profile/profile_json.h"

#include <fmt/format.h>

#include "tables/capabilities.h"

namespace capscope::profile {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

ordered_json cap_list(uint64_t mask) { return tables::cap_names_in_mask(mask); }

ordered_json use_to_json(const UseKey& k, const UseStats& s) {
  ordered_json binaries = ordered_json::array();
  for (const auto& [path, b] : s.binaries)
    binaries.push_back({{"path", path}, {"count", b.count}, {"sample_args", b.sample_args}});
  return {{"capability", tables::cap_name(k.cap)},
          {"verdict", k.granted ? "granted" : "denied"},
          {"audit", k.audit},
          {"count", s.count},
          {"first_seen_ns", s.first_ns},
          {"last_seen_ns", s.last_ns},
          {"syscalls", s.syscalls},
          {"binaries", binaries}};
}

// Reads a field, or fails naming it.
template <typename T>
bool field(const json& j, const char* name, T* out, const std::string& where, std::string* error) {
  auto it = j.find(name);
  if (it == j.end()) {
    *error = fmt::format("{}: missing field \"{}\"", where, name);
    return false;
  }
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    *error = fmt::format("{}: field \"{}\" has the wrong type", where, name);
    return false;
  }
  return true;
}

bool mask_of_names(const json& j, const char* name, uint64_t* mask, std::string* error) {
  std::vector<std::string> names;
  if (!field(j, name, &names, "held", error)) return false;
  for (const auto& n : names) {
    auto cap = tables::cap_from_name(n);
    if (!cap) {
      *error = fmt::format("held.{}: unknown capability \"{}\"", name, n);
      return false;
    }
    *mask |= 1ULL << *cap;
  }
  return true;
}

bool read_use(const json& u, size_t i, Profile* p, std::string* error) {
  std::string where = fmt::format("uses[{}]", i);
  std::string cap_name, verdict;
  bool audit = true;
  UseStats s;
  if (!field(u, "capability", &cap_name, where, error) ||
      !field(u, "verdict", &verdict, where, error) || !field(u, "audit", &audit, where, error) ||
      !field(u, "count", &s.count, where, error))
    return false;
  auto cap = tables::cap_from_name(cap_name);
  if (!cap) return *error = fmt::format("{}: unknown capability \"{}\"", where, cap_name), false;
  if (verdict != "granted" && verdict != "denied")
    return *error = fmt::format("{}: verdict must be granted or denied", where), false;
  s.first_ns = u.value("first_seen_ns", uint64_t{0});
  s.last_ns = u.value("last_seen_ns", uint64_t{0});
  if (u.contains("syscalls") && !field(u, "syscalls", &s.syscalls, where, error)) return false;
  for (const auto& b : u.value("binaries", json::array())) {
    std::string path;
    BinaryUse bu;
    if (!field(b, "path", &path, where + ".binaries", error) ||
        !field(b, "count", &bu.count, where + ".binaries", error))
      return false;
    bu.sample_args = b.value("sample_args", "");
    s.binaries[path] = bu;
  }
  p->uses[{*cap, verdict == "granted", audit}].merge(s);
  return true;
}

}  // namespace

ordered_json to_export_json(const Profile& p) {
  ordered_json uses = ordered_json::array();
  for (const auto& [k, s] : p.uses) uses.push_back(use_to_json(k, s));
  return {{"capscope_profile", kExportFormatVersion},
          {"name", p.name},
          {"subject", p.subject},
          {"runs", p.runs},
          {"recorded_ns", p.recorded_ns},
          {"first_run_ns", p.first_run_ns},
          {"last_run_ns", p.last_run_ns},
          {"held",
           {{"effective", cap_list(p.held.caps.effective)},
            {"permitted", cap_list(p.held.caps.permitted)},
            {"inheritable", cap_list(p.held.caps.inheritable)},
            {"bounding", cap_list(p.held.caps.bounding)},
            {"ambient", cap_list(p.held.caps.ambient)},
            {"ran_as_root", p.held.ran_as_root},
            {"ran_as_user", p.held.ran_as_user},
            {"no_new_privs", p.held.no_new_privs}}},
          {"uses", uses}};
}

std::optional<Profile> from_export_json(const json& j, std::string* error) {
  int version = 0;
  if (!j.is_object() || !field(j, "capscope_profile", &version, "profile", error)) {
    if (!j.is_object()) *error = "not a capscope profile (expected a JSON object)";
    return std::nullopt;
  }
  if (version != kExportFormatVersion) {
    *error = fmt::format("profile format version {} is not one this capscope reads ({})", version,
                         kExportFormatVersion);
    return std::nullopt;
  }
  Profile p;
  if (!field(j, "name", &p.name, "profile", error) || !field(j, "runs", &p.runs, "profile", error))
    return std::nullopt;
  p.subject = j.value("subject", "");
  p.recorded_ns = j.value("recorded_ns", uint64_t{0});
  p.first_run_ns = j.value("first_run_ns", uint64_t{0});
  p.last_run_ns = j.value("last_run_ns", uint64_t{0});
  if (j.contains("held")) {
    const json& h = j["held"];
    for (auto [name, mask] : {std::pair{"effective", &p.held.caps.effective},
                              {"permitted", &p.held.caps.permitted},
                              {"inheritable", &p.held.caps.inheritable},
                              {"bounding", &p.held.caps.bounding},
                              {"ambient", &p.held.caps.ambient}})
      if (h.contains(name) && !mask_of_names(h, name, mask, error)) return std::nullopt;
    p.held.ran_as_root = h.value("ran_as_root", false);
    p.held.ran_as_user = h.value("ran_as_user", false);
    p.held.no_new_privs = h.value("no_new_privs", false);
  }
  json uses;
  if (!field(j, "uses", &uses, "profile", error)) return std::nullopt;
  for (size_t i = 0; i < uses.size(); ++i)
    if (!read_use(uses[i], i, &p, error)) return std::nullopt;
  return p;
}

}  // namespace capscope::profile
