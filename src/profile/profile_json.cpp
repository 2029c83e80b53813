#include "profile/profile_json.h"

#include <fmt/format.h>

#include <limits>

#include <type_traits>
#include <utility>

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

// A value of the wanted type, strictly: JSON's true is not 1, nor -1 a count.
template <typename T>
bool has_type(const json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v.is_boolean();
  } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
    // In range too: a uid of 2^32 + 1 must not wrap to 1.
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= std::numeric_limits<T>::max();
    return v.is_number_integer() && v.get<int64_t>() >= 0 &&
           static_cast<uint64_t>(v.get<int64_t>()) <= std::numeric_limits<T>::max();
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned())
      return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    return v.is_number_integer() && v.get<int64_t>() >= std::numeric_limits<T>::min() &&
           v.get<int64_t>() <= std::numeric_limits<T>::max();
  } else {
    return true;  // strings and containers: get<T>() checks them
  }
}

// The fields of one object of the document; a failure names the field and
// where it is.
class Fields {
 public:
  Fields(const json& object, std::string where, json::json_pointer at, ImportError* error)
      : object_(object), where_(std::move(where)), at_(std::move(at)), error_(error) {}

  // A field that must be there.
  template <typename T>
  bool need(const char* name, T* out) const {
    if (!object_.contains(name)) return fail(name, fmt::format("missing field \"{}\"", name));
    return read(name, out);
  }

  // A field that may be left out; *out keeps its value then.
  template <typename T>
  bool may(const char* name, T* out) const {
    return !object_.contains(name) || read(name, out);
  }

  bool fail(const std::string& name, const std::string& what) const {
    error_->message = fmt::format("{}: {}", where_, what);
    error_->pointer = (at_ / name).to_string();
    return false;
  }

 private:
  template <typename T>
  bool read(const char* name, T* out) const {
    const json& v = object_.at(name);
    try {
      if (has_type<T>(v)) {
        *out = v.get<T>();
        return true;
      }
    } catch (const json::exception&) {  // falls through to the error
    }
    return fail(name, fmt::format("field \"{}\" has the wrong type", name));
  }

  const json& object_;
  std::string where_;
  json::json_pointer at_;
  ImportError* error_;
};

bool fail_at(ImportError* error, const json::json_pointer& at, std::string message) {
  error->message = std::move(message);
  error->pointer = at.to_string();
  return false;
}

bool mask_of_names(const Fields& held, const char* name, uint64_t* mask, ImportError* error) {
  std::vector<std::string> names;
  if (!held.may(name, &names)) return false;
  for (size_t i = 0; i < names.size(); ++i) {
    auto cap = tables::cap_from_name(names[i]);
    if (!cap)
      return fail_at(error, json::json_pointer("/held") / name / i,
                     fmt::format("held.{}: unknown capability \"{}\"", name, names[i]));
    *mask |= 1ULL << *cap;
  }
  return true;
}

bool read_held(const json& h, HeldSets* held, ImportError* error) {
  if (!h.is_object())
    return fail_at(error, json::json_pointer("/held"),
                   "profile: field \"held\" has the wrong type");
  Fields f(h, "held", json::json_pointer("/held"), error);
  for (auto [name, mask] : {std::pair{"effective", &held->caps.effective},
                            {"permitted", &held->caps.permitted},
                            {"inheritable", &held->caps.inheritable},
                            {"bounding", &held->caps.bounding},
                            {"ambient", &held->caps.ambient}})
    if (!mask_of_names(f, name, mask, error)) return false;
  return f.may("ran_as_root", &held->ran_as_root) && f.may("ran_as_user", &held->ran_as_user) &&
         f.may("no_new_privs", &held->no_new_privs);
}

bool read_binaries(const json& list, const std::string& where, const json::json_pointer& at,
                   UseStats* s, ImportError* error) {
  if (!list.is_array())
    return fail_at(error, at, fmt::format("{}: field \"binaries\" has the wrong type", where));
  for (size_t i = 0; i < list.size(); ++i) {
    std::string bwhere = fmt::format("{}.binaries[{}]", where, i);
    if (!list[i].is_object()) return fail_at(error, at / i, bwhere + ": not an object");
    Fields f(list[i], bwhere, at / i, error);
    std::string path;
    BinaryUse bu;
    if (!f.need("path", &path) || !f.need("count", &bu.count) ||
        !f.may("sample_args", &bu.sample_args))
      return false;
    s->binaries[path] = bu;
  }
  return true;
}

bool read_use(const json& u, size_t i, Profile* p, ImportError* error) {
  std::string where = fmt::format("uses[{}]", i);
  auto at = json::json_pointer("/uses") / i;
  if (!u.is_object()) return fail_at(error, at, where + ": not an object");
  Fields f(u, where, at, error);
  std::string cap_name, verdict;
  bool audit = true;
  UseStats s;
  if (!f.need("capability", &cap_name) || !f.need("verdict", &verdict) ||
      !f.need("audit", &audit) || !f.need("count", &s.count) ||
      !f.may("first_seen_ns", &s.first_ns) || !f.may("last_seen_ns", &s.last_ns) ||
      !f.may("syscalls", &s.syscalls))
    return false;
  auto cap = tables::cap_from_name(cap_name);
  if (!cap) return f.fail("capability", fmt::format("unknown capability \"{}\"", cap_name));
  if (verdict != "granted" && verdict != "denied")
    return f.fail("verdict", "verdict must be granted or denied");
  if (u.contains("binaries") && !read_binaries(u["binaries"], where, at / "binaries", &s, error))
    return false;
  p->uses[{*cap, verdict == "granted", audit}].merge(s);
  return true;
}

ordered_json privileged_to_json(const std::string& path, const PrivilegedBinary& b) {
  ordered_json j = {{"path", path},
                    {"setuid", b.file.setuid},
                    {"setgid", b.file.setgid},
                    {"owner_uid", b.file.owner_uid},
                    {"owner_gid", b.file.owner_gid}};
  if (b.file.caps)
    j["file_capabilities"] = {{"permitted", cap_list(b.file.caps->permitted)},
                              {"inheritable", cap_list(b.file.caps->inheritable)},
                              {"effective", b.file.caps->effective},
                              {"rootid", b.file.caps->rootid}};
  j["execs"] = b.execs;
  j["raised"] = b.raised;
  j["held_back"] = b.held_back;
  return j;
}

bool read_file_caps(const json& j, const std::string& where, const json::json_pointer& at,
                    FileCaps* caps, ImportError* error) {
  Fields f(j, where + ".file_capabilities", at, error);
  std::vector<std::string> permitted, inheritable;
  if (!f.may("permitted", &permitted) || !f.may("inheritable", &inheritable) ||
      !f.may("effective", &caps->effective) || !f.may("rootid", &caps->rootid))
    return false;
  for (auto [names, mask] :
       {std::pair{&permitted, &caps->permitted}, {&inheritable, &caps->inheritable}})
    for (const auto& n : *names) {
      auto cap = tables::cap_from_name(n);
      if (!cap)
        return fail_at(error, at,
                       fmt::format("{}.file_capabilities: unknown capability \"{}\"", where, n));
      *mask |= 1ULL << *cap;
    }
  return true;
}

bool read_privileged(const json& list, Profile* p, ImportError* error) {
  auto at = json::json_pointer("/privileged_binaries");
  if (!list.is_array())
    return fail_at(error, at, "profile: field \"privileged_binaries\" has the wrong type");
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = fmt::format("privileged_binaries[{}]", i);
    Fields f(list[i], where, at / i, error);
    std::string path;
    PrivilegedBinary b;
    if (!f.need("path", &path) || !f.may("setuid", &b.file.setuid) ||
        !f.may("setgid", &b.file.setgid) || !f.may("owner_uid", &b.file.owner_uid) ||
        !f.may("owner_gid", &b.file.owner_gid) || !f.may("execs", &b.execs) ||
        !f.may("raised", &b.raised) || !f.may("held_back", &b.held_back))
      return false;
    if (list[i].contains("file_capabilities")) {
      if (!list[i]["file_capabilities"].is_object())
        return f.fail("file_capabilities", "field \"file_capabilities\" has the wrong type");
      FileCaps caps;
      if (!read_file_caps(list[i]["file_capabilities"], where, at / i / "file_capabilities", &caps,
                          error))
        return false;
      b.file.caps = caps;
    }
    p->privileged_binaries[path].merge(b);
  }
  return true;
}

ordered_json container_to_json(const ContainerIdentity& c) {
  return {{"runtime", c.runtime},
          {"namespace", c.namespace_name},
          {"workload", c.workload},
          {"workload_kind", c.workload_kind},
          {"workload_from", c.workload_from},
          {"pod", c.pod},
          {"container", c.container},
          {"image", c.image},
          {"instances", c.instances}};
}

bool read_container(const json& j, ContainerIdentity* c, ImportError* error) {
  auto at = json::json_pointer("/container");
  if (!j.is_object()) return fail_at(error, at, "profile: field \"container\" has the wrong type");
  Fields f(j, "container", at, error);
  std::vector<std::string> ids;
  if (!f.need("container", &c->container) || !f.may("runtime", &c->runtime) ||
      !f.may("namespace", &c->namespace_name) || !f.may("workload", &c->workload) ||
      !f.may("workload_kind", &c->workload_kind) || !f.may("workload_from", &c->workload_from) ||
      !f.may("pod", &c->pod) || !f.may("image", &c->image) || !f.may("instances", &ids))
    return false;
  for (auto& id : ids)
    if (c->instances.size() < ContainerIdentity::kMaxInstances) c->instances.insert(std::move(id));
  return true;
}

}  // namespace

ordered_json to_export_json(const Profile& p) {
  ordered_json uses = ordered_json::array();
  for (const auto& [k, s] : p.uses) uses.push_back(use_to_json(k, s));
  ordered_json privileged = ordered_json::array();
  for (const auto& [path, b] : p.privileged_binaries)
    privileged.push_back(privileged_to_json(path, b));
  ordered_json out = {{"capscope_profile", kExportFormatVersion},
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
                      {"uses", uses},
                      {"privileged_binaries", privileged}};
  if (!p.container.empty()) out["container"] = container_to_json(p.container);
  return out;
}

std::optional<Profile> from_export_json(const json& j, ImportError* error) {
  if (!j.is_object()) {
    fail_at(error, json::json_pointer(), "not a capscope profile (expected a JSON object)");
    return std::nullopt;
  }
  Fields f(j, "profile", json::json_pointer(), error);
  int version = 0;
  if (!f.need("capscope_profile", &version)) return std::nullopt;
  if (version != kExportFormatVersion) {
    fail_at(error, json::json_pointer("/capscope_profile"),
            fmt::format("profile format version {} is not one this capscope reads ({})", version,
                        kExportFormatVersion));
    return std::nullopt;
  }
  Profile p;
  json uses;
  if (!f.need("name", &p.name) || !f.need("runs", &p.runs) || !f.may("subject", &p.subject) ||
      !f.may("recorded_ns", &p.recorded_ns) || !f.may("first_run_ns", &p.first_run_ns) ||
      !f.may("last_run_ns", &p.last_run_ns) || !f.need("uses", &uses))
    return std::nullopt;
  if (j.contains("held") && !read_held(j["held"], &p.held, error)) return std::nullopt;
  if (!uses.is_array()) {
    f.fail("uses", "field \"uses\" has the wrong type");
    return std::nullopt;
  }
  for (size_t i = 0; i < uses.size(); ++i)
    if (!read_use(uses[i], i, &p, error)) return std::nullopt;
  if (j.contains("privileged_binaries") && !read_privileged(j["privileged_binaries"], &p, error))
    return std::nullopt;
  if (j.contains("container") && !read_container(j["container"], &p.container, error))
    return std::nullopt;
  return p;
}

std::optional<Profile> from_export_json(const json& j, std::string* error) {
  ImportError e;
  auto p = from_export_json(j, &e);
  if (!p) *error = e.message;
  return p;
}

}  // namespace capscope::profile
