#include "output/json_writer.h"

#include <array>

#include "tables/capabilities.h"
#include "tables/syscalls.h"
#include "util/clock.h"

namespace capscope::output {
namespace {

// Writes the members of one JSON object and places the commas. Keys are our own
// literals and need no escaping.
class Members {
 public:
  explicit Members(Buffer& b) : b_(b) { b_.push_back('{'); }
  // Continues an object whose '{' and first members are already written.
  static constexpr struct Continue {
  } kContinue{};
  Members(Buffer& b, Continue) : b_(b), first_(false) {}

  void key(std::string_view k) {
    if (!first_) b_.push_back(',');
    first_ = false;
    b_.push_back('"');
    put(b_, k);
    put(b_, "\":");
  }
  void str(std::string_view k, std::string_view v) {
    key(k);
    append_json_string(b_, v);
  }
  // protojson leaves empty strings out.
  void str_if(std::string_view k, std::string_view v) {
    if (!v.empty()) str(k, v);
  }
  template <typename Int>
  void num(std::string_view k, Int v) {
    key(k);
    put_int(b_, v);
  }
  void boolean(std::string_view k, bool v) {
    key(k);
    put(b_, v ? "true" : "false");
  }
  void raw(std::string_view k, std::string_view json) {
    key(k);
    put(b_, json);
  }
  void close() { b_.push_back('}'); }

 private:
  Buffer& b_;
  bool first_ = true;
};

// Tetragon's names of the namespace kinds, in NsKind order.
constexpr std::array<std::string_view, kNsKinds> kNsNames = {
    "uts",    "ipc", "mnt", "pid", "pid_for_children", "net", "time", "time_for_children",
    "cgroup", "user"};

void append_cap_list(Buffer& b, uint64_t mask) {
  b.push_back('[');
  bool first = true;
  for (int cap = 0; cap < 64; ++cap) {
    if (!(mask >> cap & 1)) continue;
    if (!first) b.push_back(',');
    first = false;
    b.push_back('"');
    append_cap_name(b, cap);  // names are [A-Z0-9_]: nothing to escape
    b.push_back('"');
  }
  b.push_back(']');
}

// Tetragon's Namespace message: protojson leaves out inum 0 and is_host false.
void append_namespace(Buffer& b, uint32_t inum, bool is_host) {
  Members ns(b);
  if (inum != 0) ns.num("inum", inum);
  if (is_host) ns.boolean("is_host", true);
  ns.close();
}

void append_caps(Buffer& b, Members& m, const CapSets& c) {
  if ((c.permitted | c.effective | c.inheritable) == 0) return;
  m.key("cap");
  Members caps(b);
  const std::array<std::pair<std::string_view, uint64_t>, 3> sets = {
      {{"permitted", c.permitted}, {"effective", c.effective}, {"inheritable", c.inheritable}}};
  for (const auto& [name, mask] : sets) {
    if (mask == 0) continue;  // protojson leaves out empty lists
    caps.key(name);
    append_cap_list(b, mask);
  }
  caps.close();
}

// is_host compares with the host's inode of the same kind (0 there: unknown, never host).
void append_namespaces(Buffer& b, Members& m, const NsInodes& ns, const NsInodes& host) {
  bool any = false;
  for (uint32_t inum : ns) any = any || inum != 0;
  if (!any) return;
  m.key("ns");
  Members block(b);
  for (size_t k = 0; k < kNsKinds; ++k) {
    if (ns[k] == 0) continue;
    block.key(kNsNames[k]);
    append_namespace(b, ns[k], host[k] != 0 && ns[k] == host[k]);
  }
  block.close();
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

// The process block up to, not including, "tid" and the closing brace. host_ns is null
// for the parent, which gets no cap and ns blocks (as in Tetragon's events).
void append_process_head(Buffer& b, const ProcessInfo& p, const ContainerInfo* info,
                         const NsInodes* host_ns, const JsonOptions& opts) {
  Members m(b);
  m.str_if("exec_id", p.exec_id);
  m.num("pid", p.pid);
  m.num("uid", p.uid);
  m.str_if("cwd", p.cwd);
  m.str_if("binary", p.binary);
  if (p.args.size() > 1) m.str_if("arguments", tetragon_arguments(p.args));
  if (!p.flags.empty()) m.str_if("flags", join_words(p.flags));
  if (p.start_wall_ns != 0) m.str("start_time", util::format_rfc3339_ns(p.start_wall_ns));
  m.num("auid", p.auid);
  append_pod(b, p.container, info, p.ns_pid);
  if (!p.container.empty()) m.str("docker", std::string_view(p.container.id).substr(0, 31));
  m.str_if("parent_exec_id", p.parent_exec_id);
  if (host_ns == nullptr) return;
  if (opts.process_caps) append_caps(b, m, p.caps);
  if (opts.process_ns) append_namespaces(b, m, p.ns, *host_ns);
}

// Tetragon's KprobeUserNamespace: level, uid and gid are wrapper types, always printed;
// is_host comes from level 0, as Tetragon decides it.
void append_user_ns_arg(Buffer& b, const UserNs& ns) {
  put(b, "{\"user_ns_arg\":{\"level\":");
  put_int(b, ns.level);
  put(b, ",\"uid\":");
  put_int(b, ns.owner_uid);
  put(b, ",\"gid\":");
  put_int(b, ns.owner_gid);
  put(b, ",\"ns\":");
  append_namespace(b, ns.inum, ns.is_host());
  put(b, "}}");
}

void append_capability_arg(Buffer& b, int cap) {
  put(b, "{\"capability_arg\":{\"value\":");
  put_int(b, cap);
  put(b, ",\"name\":\"");
  append_cap_name(b, cap);
  put(b, "\"}}");
}

// As protojson prints a Timestamp: 0, 3, 6 or 9 fraction digits, the fewest that are exact.
std::string protojson_time(int64_t ns) {
  std::string t = util::format_rfc3339_ns(ns);  // ...:SS.nnnnnnnnnZ
  auto dot = t.rfind('.');
  if (dot == std::string::npos) return t;
  std::string frac = t.substr(dot + 1, 9);
  size_t keep = 9;
  while (keep > 0 && frac.compare(keep - 3, 3, "000") == 0) keep -= 3;
  return t.substr(0, dot) + (keep == 0 ? "" : "." + frac.substr(0, keep)) + "Z";
}

void append_labels(Buffer& b, Members& m, std::string_view key, const Labels& labels) {
  if (labels.empty()) return;
  m.key(key);
  b.push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {  // label keys are the user's: escaped like values
    if (!first) b.push_back(',');
    first = false;
    append_json_string(b, k);
    b.push_back(':');
    append_json_string(b, v);
  }
  b.push_back('}');
}

// Outside Kubernetes there is no pod block: the runtime's name, image and labels
// (Tetragon's `docker` field carries only the id) go here.
void append_container(Buffer& b, Members& m, const EnrichedCheck& e) {
  const ContainerRef& c = e.process->container;
  if (c.empty()) return;
  m.str("container_id", c.id);
  const ContainerInfo* info = e.container.get();
  m.str_if("container_runtime", info != nullptr ? info->runtime : c.runtime);
  if (e.runtime_process) m.boolean("runtime_process", true);
  if (info == nullptr) return;
  m.key("container");
  Members block(b);
  block.str("id", c.id);
  block.str_if("name", info->name);
  block.str_if("image", info->image);
  block.str_if("image_id", info->image_id);
  if (info->started_at_ns != 0) block.str("start_time", protojson_time(info->started_at_ns));
  block.str_if("pod", info->pod_name);
  append_labels(b, block, "labels", info->labels);
  block.close();
}

// A capability set as /proc/PID/status prints it: 16 hex digits ("000001ffffffffff"),
// which `capsh --decode` reads.
void append_capset_hex(Buffer& b, uint64_t mask) {
  static constexpr char kHex[] = "0123456789abcdef";
  char text[18] = {'"'};
  for (int i = 0; i < 16; ++i) text[16 - i] = kHex[(mask >> (4 * i)) & 0xf];
  text[17] = '"';
  put(b, std::string_view(text, sizeof(text)));
}

// The process's bounding and ambient sets, which Tetragon's cap block has no room for.
void append_process_caps(Buffer& b, Members& m, const ProcessInfo* p) {
  if (p == nullptr) return;
  m.key("process_caps");
  Members caps(b);
  caps.key("bounding");
  append_capset_hex(b, p->caps.bounding);
  caps.key("ambient");
  append_capset_hex(b, p->caps.ambient);
  caps.close();
}

void append_bool(Buffer& b, bool v) { put(b, v ? "true" : "false"); }

// What capscope knows and Tetragon's event cannot say. Every member is always there
// (zeros included, unlike the Tetragon part) but suppressed and the container ones.
// Written from literal pieces rather than through Members: this runs once per event.
void append_capscope(Buffer& b, const EnrichedCheck& e, const JsonOptions& opts) {
  const CapCheck& c = e.check;
  put(b, "{\"syscall\":{\"nr\":");
  put_int(b, c.syscall_nr);
  if (auto name = tables::known_syscall_name(c.syscall_nr)) {
    put(b, ",\"name\":\"");
    put(b, *name);  // [a-z0-9_]: nothing to escape
    b.push_back('"');
  } else if (c.syscall_nr >= 0) {
    put(b, ",\"name\":");
    append_json_string(b, tables::syscall_name(c.syscall_nr));
  }
  put(b, "},\"verdict\":\"");
  put(b, verdict_word(c));
  put(b, "\",\"errno\":");
  put_int(b, c.ret);
  put(b, ",\"audit\":");
  append_bool(b, c.audit);
  put(b, ",\"audit_source\":\"");
  put(b, audit_source_name(c.audit_source));
  put(b, "\",\"insetid\":");
  append_bool(b, c.insetid);
  put(b, ",\"cred_override\":");
  append_bool(b, c.cred_override);
  put(b, ",\"kthread\":");
  append_bool(b, c.kthread);
  put(b, ",\"comm\":");
  append_json_string(b, c.comm);
  put(b, ",\"ppid\":");
  put_int(b, c.ppid);
  put(b, ",\"uid\":");
  put_int(b, c.uid);
  put(b, ",\"euid\":");
  put_int(b, c.euid);
  put(b, ",\"gid\":");
  put_int(b, c.gid);
  put(b, ",\"cgroup_id\":");
  put_int(b, c.cgroup_id);
  put(b, ",\"mntns\":");
  put_int(b, c.mntns);
  put(b, ",\"pidns_level\":");
  put_int(b, c.pidns_level);
  put(b, ",\"cap_effective\":");
  append_capset_hex(b, c.cap_effective);
  put(b, ",\"cap_permitted\":");
  append_capset_hex(b, c.cap_permitted);
  Members m(b, Members::kContinue);
  if (opts.process_caps) append_process_caps(b, m, e.process.get());
  if (c.suppressed > 0) m.num("suppressed", c.suppressed);
  if (c.policy_slot >= 0) {
    m.num("policy_slot", c.policy_slot);
    if (c.policy_sigkill) m.boolean("killed", c.policy_killed);
  }
  if (e.process) append_container(b, m, e);
  m.close();
}

// The pieces a writer may have cached, assembled into one event.
struct Parts {
  std::string_view process_head;  // empty: unknown process
  std::string_view parent_head;   // empty: unknown parent
};

void append_process_block(Buffer& b, const CapCheck& c, std::string_view head) {
  if (head.empty()) {  // unknown process: what the check itself carries
    put(b, "{\"pid\":");
    put_int(b, c.pid);
    put(b, ",\"uid\":");
    put_int(b, c.uid);
  } else {
    put(b, head);
  }
  put(b, ",\"tid\":");
  put_int(b, c.tid);
  b.push_back('}');
}

void assemble(Buffer& b, const EnrichedCheck& e, const Parts& parts, const JsonOptions& opts,
              util::Rfc3339Formatter& clock) {
  const CapCheck& c = e.check;
  put(b, "{\"process_kprobe\":{\"process\":");
  append_process_block(b, c, parts.process_head);
  if (!parts.parent_head.empty()) {
    put(b, ",\"parent\":");
    put(b, parts.parent_head);
    put(b, ",\"tid\":");
    put_int(b, e.parent->pid);
    b.push_back('}');
  }
  put(b, ",\"function_name\":\"cap_capable\",\"args\":[");
  append_user_ns_arg(b, c.target_ns);
  b.push_back(',');
  append_capability_arg(b, c.cap);
  // int_arg sits in a oneof, so protojson prints it even when 0: Tetragon's events say
  // "int_arg":0 for a granted check, and so do ours.
  put(b, "],\"return\":{\"int_arg\":");
  put_int(b, c.ret);
  // A policy's event names it, and says KPROBE_ACTION_SIGKILL for a Sigkill selector's.
  put(b, c.policy_sigkill ? "},\"action\":\"KPROBE_ACTION_SIGKILL\""
                          : "},\"action\":\"KPROBE_ACTION_POST\"");
  put(b, ",\"policy_name\":");
  if (c.policy_slot >= 0)
    append_json_string(b, c.policy_name);
  else
    put(b, "\"capscope\"");
  put(b, ",\"capscope\":");
  append_capscope(b, e, opts);
  b.push_back('}');
  if (!e.node_name.empty()) {
    put(b, ",\"node_name\":");
    append_json_string(b, e.node_name);
  }
  put(b, ",\"time\":\"");
  put(b, clock.format(e.wall_ns));
  put(b, "\"}");
}

std::string to_string(const Buffer& b) { return {b.data(), b.size()}; }

}  // namespace

void append_pod(Buffer& out, const ContainerRef& c, const ContainerInfo* info, uint32_t ns_pid) {
  bool in_pod = !c.pod_uid.empty() || (info != nullptr && !info->pod_name.empty());
  if (c.empty() || !in_pod) return;
  put(out, ",\"pod\":");
  Members pod(out);
  if (info != nullptr) {
    pod.str_if("namespace", info->pod_namespace);
    pod.str_if("name", info->pod_name);
  }
  pod.str_if("uid", info != nullptr && !info->pod_uid.empty() ? info->pod_uid : c.pod_uid);
  pod.key("container");
  Members ctr(out);
  // Kubernetes spells container ids "<runtime>://<id>".
  std::string_view runtime = info != nullptr ? info->runtime : c.runtime;
  ctr.str("id", runtime.empty() ? c.id : fmt::format("{}://{}", runtime, c.id));
  if (info != nullptr) {
    ctr.str_if("name", info->name);
    if (!info->image.empty() || !info->image_id.empty()) {
      ctr.key("image");
      Members image(out);
      image.str_if("id", info->image_id);
      image.str_if("name", info->image);
      image.close();
    }
    if (info->started_at_ns != 0) ctr.str("start_time", protojson_time(info->started_at_ns));
  }
  // Tetragon's pid here is the process's, as the container's pid namespace numbers it.
  if (ns_pid != 0) ctr.num("pid", ns_pid);
  ctr.close();
  if (info != nullptr) {
    append_labels(out, pod, "pod_labels", info->pod_labels);
    pod.str_if("workload", info->workload);
    pod.str_if("workload_kind", info->workload_kind);
  }
  pod.close();
}

void append_json_event(Buffer& out, const EnrichedCheck& e, const JsonOptions& opts) {
  Buffer process, parent;
  if (e.process) append_process_head(process, *e.process, e.container.get(), &e.host_ns, opts);
  if (e.parent) append_process_head(parent, *e.parent, e.parent_container.get(), nullptr, opts);
  std::string texts[2] = {to_string(process), to_string(parent)};
  util::Rfc3339Formatter clock;
  assemble(out, e, Parts{texts[0], texts[1]}, opts, clock);
}

std::string_view JsonWriter::process_head(const ProcessPtr& p, const ContainerInfoPtr& container,
                                          const NsInodes* host_ns, ProcessCache& cache) const {
  if (!p) return {};
  // Fibonacci hashing: the top bits of the product depend on all bits of the address,
  // whatever its alignment.
  static_assert(kProcessSlots == 16);
  uint64_t hash =
      static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p.get())) * 0x9E3779B97F4A7C15ULL;
  ProcessSlot& slot = cache[hash >> 60];
  bool same_ns = host_ns == nullptr || *host_ns == slot.host_ns;
  if (p == slot.process && container == slot.container && same_ns) return slot.text;
  Buffer b;
  append_process_head(b, *p, container.get(), host_ns, opts_);
  slot.process = p;
  slot.container = container;
  if (host_ns != nullptr) slot.host_ns = *host_ns;
  slot.text.assign(b.data(), b.size());
  return slot.text;
}

void JsonWriter::write(const EnrichedCheck& e) {
  Parts parts{process_head(e.process, e.container, &e.host_ns, processes_),
              process_head(e.parent, e.parent_container, nullptr, parents_)};
  assemble(buf(), e, parts, opts_, clock_);
  buf().push_back('\n');
  end_event();
}

}  // namespace capscope::output
