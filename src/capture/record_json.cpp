#include "capture/record_json.h"

#include <fmt/format.h>

namespace capscope::capture {

using nlohmann::json;

namespace {

json check_to_json(const CapCheck& c) {
  return {{"type", "check"},
          {"ktime_ns", c.ktime_ns},
          {"cgroup_id", c.cgroup_id},
          {"cap_effective", c.cap_effective},
          {"cap_permitted", c.cap_permitted},
          {"suppressed", c.suppressed},
          {"pid", c.pid},
          {"tid", c.tid},
          {"ppid", c.ppid},
          {"uid", c.uid},
          {"gid", c.gid},
          {"euid", c.euid},
          {"mntns", c.mntns},
          {"pidns_level", c.pidns_level},
          {"cap", c.cap},
          {"ret", c.ret},
          {"syscall_nr", c.syscall_nr},
          {"audit", c.audit},
          {"insetid", c.insetid},
          {"cred_override", c.cred_override},
          {"kthread", c.kthread},
          {"audit_source", audit_source_name(c.audit_source)},
          {"target_ns",
           {c.target_ns.level, c.target_ns.inum, c.target_ns.owner_uid, c.target_ns.owner_gid}},
          {"comm", c.comm}};
}

json exec_to_json(const ExecRecord& e) {
  return {
      {"type", "exec"},
      {"ktime_ns", e.ktime_ns},
      {"start_ns", e.start_ns},
      {"cgroup_id", e.cgroup_id},
      {"caps",
       {e.caps.effective, e.caps.permitted, e.caps.inheritable, e.caps.bounding, e.caps.ambient}},
      {"pid", e.pid},
      {"tid", e.tid},
      {"ppid", e.ppid},
      {"uid", e.uid},
      {"gid", e.gid},
      {"euid", e.euid},
      {"egid", e.egid},
      {"auid", e.auid},
      {"no_new_privs", e.no_new_privs},
      {"ns", e.ns},
      {"userns_level", e.userns_level},
      {"comm", e.comm},
      {"filename", e.filename},
      {"args", e.args},
      {"args_truncated", e.args_truncated},
      {"ns_pid", e.ns_pid}};
}

template <typename T>
void get(const json& j, const char* key, T& out) {
  out = j.at(key).get<T>();
}

CapCheck check_from_json(const json& j) {
  CapCheck c;
  get(j, "ktime_ns", c.ktime_ns);
  get(j, "cgroup_id", c.cgroup_id);
  get(j, "cap_effective", c.cap_effective);
  get(j, "cap_permitted", c.cap_permitted);
  get(j, "suppressed", c.suppressed);
  get(j, "pid", c.pid);
  get(j, "tid", c.tid);
  get(j, "ppid", c.ppid);
  get(j, "uid", c.uid);
  get(j, "gid", c.gid);
  get(j, "euid", c.euid);
  get(j, "mntns", c.mntns);
  get(j, "pidns_level", c.pidns_level);
  get(j, "cap", c.cap);
  get(j, "ret", c.ret);
  get(j, "syscall_nr", c.syscall_nr);
  get(j, "audit", c.audit);
  get(j, "insetid", c.insetid);
  get(j, "cred_override", c.cred_override);
  get(j, "kthread", c.kthread);
  c.audit_source = audit_source_from_name(j.at("audit_source").get<std::string>());
  const json& ns = j.at("target_ns");
  c.target_ns = {ns.at(0).get<uint32_t>(), ns.at(1).get<uint32_t>(), ns.at(2).get<uint32_t>(),
                 ns.at(3).get<uint32_t>()};
  get(j, "comm", c.comm);
  return c;
}

ExecRecord exec_from_json(const json& j) {
  ExecRecord e;
  get(j, "ktime_ns", e.ktime_ns);
  get(j, "start_ns", e.start_ns);
  get(j, "cgroup_id", e.cgroup_id);
  const json& caps = j.at("caps");
  e.caps = {caps.at(0).get<uint64_t>(), caps.at(1).get<uint64_t>(), caps.at(2).get<uint64_t>(),
            caps.at(3).get<uint64_t>(), caps.at(4).get<uint64_t>()};
  get(j, "pid", e.pid);
  get(j, "tid", e.tid);
  get(j, "ppid", e.ppid);
  get(j, "uid", e.uid);
  get(j, "gid", e.gid);
  get(j, "euid", e.euid);
  get(j, "egid", e.egid);
  get(j, "auid", e.auid);
  get(j, "no_new_privs", e.no_new_privs);
  get(j, "ns", e.ns);
  get(j, "userns_level", e.userns_level);
  get(j, "comm", e.comm);
  get(j, "filename", e.filename);
  get(j, "args", e.args);
  get(j, "args_truncated", e.args_truncated);
  e.ns_pid = j.value("ns_pid", 0U);  // saved before capscope recorded it
  return e;
}

}  // namespace

json record_to_json(const Record& r) {
  json j = std::visit(
      [](const auto& rec) -> json {
        using T = std::decay_t<decltype(rec)>;
        if constexpr (std::is_same_v<T, CapCheck>) return check_to_json(rec);
        if constexpr (std::is_same_v<T, ExecRecord>) return exec_to_json(rec);
        if constexpr (std::is_same_v<T, ForkRecord>)
          return {{"type", "fork"},           {"ktime_ns", rec.ktime_ns},
                  {"start_ns", rec.start_ns}, {"pid", rec.pid},
                  {"ppid", rec.ppid},         {"comm", rec.comm},
                  {"exec_seq", rec.exec_seq}, {"ns_pid", rec.ns_pid}};
        if constexpr (std::is_same_v<T, ExitRecord>)
          return {{"type", "exit"},
                  {"ktime_ns", rec.ktime_ns},
                  {"pid", rec.pid},
                  {"exit_code", rec.exit_code}};
        if constexpr (std::is_same_v<T, CgroupRecord>)
          return {
              {"type", "cgroup"}, {"ktime_ns", rec.ktime_ns}, {"id", rec.id}, {"path", rec.path}};
      },
      r);
  j["v"] = kRecordFormatVersion;
  return j;
}

std::optional<Record> record_from_json(const json& j, std::string* error) {
  try {
    if (j.value("v", 0) != kRecordFormatVersion) {
      *error =
          fmt::format("record format version {} is not {}", j.value("v", 0), kRecordFormatVersion);
      return std::nullopt;
    }
    std::string type = j.at("type").get<std::string>();
    if (type == "check") return Record{check_from_json(j)};
    if (type == "exec") return Record{exec_from_json(j)};
    if (type == "fork")
      return Record{ForkRecord{j.at("ktime_ns").get<uint64_t>(), j.at("start_ns").get<uint64_t>(),
                               j.at("pid").get<uint32_t>(), j.at("ppid").get<uint32_t>(),
                               j.at("comm").get<std::string>(), j.value("exec_seq", 0U),
                               j.value("ns_pid", 0U)}};
    if (type == "exit")
      return Record{ExitRecord{j.at("ktime_ns").get<uint64_t>(), j.at("pid").get<uint32_t>(),
                               j.at("exit_code").get<uint32_t>()}};
    if (type == "cgroup")
      return Record{CgroupRecord{j.at("ktime_ns").get<uint64_t>(), j.at("id").get<uint64_t>(),
                                 j.at("path").get<std::string>()}};
    *error = fmt::format("unknown record type '{}'", type);
  } catch (const json::exception& e) {
    *error = fmt::format("malformed record: {}", e.what());
  }
  return std::nullopt;
}

}  // namespace capscope::capture
