#include "enrich/proc_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <system_error>

#include "enrich/cgroup_fs.h"
#include "enrich/cgroup_path.h"

namespace capscope {

namespace fs = std::filesystem;

namespace {

// procfs files are small; the cap only guards against a runaway fixture or
// a giant command line.
constexpr size_t kMaxFileBytes = 1 << 20;
constexpr uint32_t kNoAuid = 0xffffffffu;

// Whole file, or nullopt if it cannot be opened or read (ENOENT, ESRCH, ...).
std::optional<std::string> read_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf{};
  while (out.size() < kMaxFileBytes) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::optional<std::string> read_link(const fs::path& path) {
  std::error_code ec;
  fs::path target = fs::read_symlink(path, ec);
  if (ec) return std::nullopt;
  return target.string();
}

template <typename T>
std::optional<T> parse_number(std::string_view s, int base = 10) {
  T value{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n')) ++pos;
    size_t end = pos;
    while (end < s.size() && s[end] != ' ' && s[end] != '\t' && s[end] != '\n') ++end;
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::string_view first_word(std::string_view s) {
  auto words = split_ws(s);
  return words.empty() ? std::string_view{} : words.front();
}

// "Key:\tvalue" lines of /proc/PID/status; value with surrounding blanks removed.
std::optional<std::string_view> status_field(std::string_view status, std::string_view key) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ':') {
      std::string_view v = line.substr(key.size() + 1);
      while (!v.empty() && (v.front() == '\t' || v.front() == ' ')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\t' || v.back() == ' ')) v.remove_suffix(1);
      return v;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

// The n-th (0-based) number of a whitespace-separated status value, e.g. the
// effective id (index 1) of "Uid:\treal\teffective\tsaved\tfs".
template <typename T>
std::optional<T> status_number(std::string_view status, std::string_view key, size_t index = 0,
                               int base = 10) {
  auto v = status_field(status, key);
  if (!v) return std::nullopt;
  auto words = split_ws(*v);
  if (index >= words.size()) return std::nullopt;
  return parse_number<T>(words[index], base);
}

void fill_from_status(std::string_view status, ProcessInfo& p) {
  auto set = [](auto& field, auto value) {
    if (value) field = *value;
  };
  set(p.ppid, status_number<uint32_t>(status, "PPid"));
  set(p.uid, status_number<uint32_t>(status, "Uid", 0));
  set(p.euid, status_number<uint32_t>(status, "Uid", 1));
  set(p.gid, status_number<uint32_t>(status, "Gid", 0));
  set(p.egid, status_number<uint32_t>(status, "Gid", 1));
  set(p.caps.inheritable, status_number<uint64_t>(status, "CapInh", 0, 16));
  set(p.caps.permitted, status_number<uint64_t>(status, "CapPrm", 0, 16));
  set(p.caps.effective, status_number<uint64_t>(status, "CapEff", 0, 16));
  set(p.caps.bounding, status_number<uint64_t>(status, "CapBnd", 0, 16));
  set(p.caps.ambient, status_number<uint64_t>(status, "CapAmb", 0, 16));
  p.no_new_privs = status_number<uint32_t>(status, "NoNewPrivs").value_or(0) != 0;
  // "NSpid:\t4242\t17": the last is its pid in its own namespace.
  if (auto nspid = status_field(status, "NSpid")) {
    auto words = split_ws(*nspid);
    if (!words.empty()) set(p.ns_pid, parse_number<uint32_t>(words.back(), 10));
  }
}

constexpr std::array<std::string_view, kNsKinds> kNsFiles = {
    "uts",    "ipc",  "mnt", "pid", "pid_for_children", "net", "time", "time_for_children",
    "cgroup", "user",
};

std::string strip_deleted(std::string path) {
  constexpr std::string_view kDeleted = " (deleted)";
  if (std::string_view(path).ends_with(kDeleted)) path.resize(path.size() - kDeleted.size());
  return path;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  // comm may hold anything, ')' included: it ends at the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return std::nullopt;
  ProcStat s;
  auto pid = parse_number<uint32_t>(first_word(text.substr(0, open)));
  if (!pid) return std::nullopt;
  s.pid = *pid;
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  // Fields after comm start at field 3 (state); starttime is field 22.
  auto rest = split_ws(text.substr(close + 1));
  constexpr size_t kStartIndex = 22 - 3;
  if (rest.size() <= kStartIndex || rest[0].size() != 1) return std::nullopt;
  auto ppid = parse_number<uint32_t>(rest[1]);
  auto start = parse_number<uint64_t>(rest[kStartIndex]);
  if (!ppid || !start) return std::nullopt;
  s.state = rest[0][0];
  s.ppid = *ppid;
  s.start_ticks = *start;
  return s;
}

std::vector<std::string> split_cmdline(std::string_view text) {
  std::vector<std::string> args;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\0', pos);
    if (end == std::string_view::npos) end = text.size();
    args.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return args;
}

std::optional<uint32_t> parse_ns_link(std::string_view target) {
  size_t open = target.find(":[");
  if (open == std::string_view::npos || open == 0 || !target.ends_with("]")) return std::nullopt;
  return parse_number<uint32_t>(target.substr(open + 2, target.size() - open - 3));
}

ProcReader::ProcReader(fs::path proc_root, uint64_t ticks_per_second)
    : root_(std::move(proc_root)), ticks_per_second_(ticks_per_second) {}

fs::path ProcReader::dir(uint32_t pid) const { return root_ / std::to_string(pid); }

std::vector<uint32_t> ProcReader::list_pids() const {
  std::vector<uint32_t> pids;
  std::error_code ec;
  fs::directory_iterator it(root_, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (auto pid = parse_number<uint32_t>(name); pid && *pid > 0) pids.push_back(*pid);
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

std::optional<ProcStat> ProcReader::read_stat(uint32_t pid) const {
  auto text = read_file(dir(pid) / "stat");
  if (!text) return std::nullopt;
  return parse_proc_stat(*text);
}

std::optional<uint64_t> ProcReader::read_start_boot_ns(uint32_t pid) const {
  auto st = read_stat(pid);
  if (!st) return std::nullopt;
  return util::ticks_to_ns(st->start_ticks, ticks_per_second_);
}

std::optional<std::string> ProcReader::read_cwd(uint32_t pid) const {
  return read_link(dir(pid) / "cwd");
}

std::optional<std::string> ProcReader::read_exe(uint32_t pid) const {
  auto exe = read_link(dir(pid) / "exe");
  if (!exe) return std::nullopt;
  return strip_deleted(std::move(*exe));
}

std::optional<std::string> ProcReader::read_cgroup_path(uint32_t pid) const {
  auto text = read_file(dir(pid) / "cgroup");
  if (!text) return std::nullopt;
  return select_cgroup_path(*text);
}

std::optional<std::string> ProcReader::read_unified_cgroup_path(uint32_t pid) const {
  auto text = read_file(dir(pid) / "cgroup");
  if (!text) return std::nullopt;
  auto path = unified_cgroup_path(*text);
  if (!path) return std::nullopt;
  return std::string(*path);
}

NsInodes ProcReader::read_namespaces(uint32_t pid) const {
  NsInodes ns{};
  fs::path ns_dir = dir(pid) / "ns";
  for (size_t i = 0; i < kNsKinds; ++i) {
    auto target = read_link(ns_dir / kNsFiles[i]);
    if (target) ns[i] = parse_ns_link(*target).value_or(0);
  }
  return ns;
}

NsInodes host_namespaces(const ProcReader& reader, uint32_t init_pid, uint32_t self_pid) {
  NsInodes ns = reader.read_namespaces(init_pid);
  auto fill = [&](NsKind k, uint32_t ino) {
    uint32_t& slot = ns[static_cast<size_t>(k)];
    if (slot == 0) slot = ino;
  };
  fill(NsKind::Uts, kInitUtsIno);
  fill(NsKind::Ipc, kInitIpcIno);
  fill(NsKind::Pid, kInitPidIno);
  fill(NsKind::PidForChildren, kInitPidIno);
  fill(NsKind::Time, kInitTimeIno);
  fill(NsKind::TimeForChildren, kInitTimeIno);
  fill(NsKind::Cgroup, kInitCgroupIno);
  fill(NsKind::User, kInitUserIno);
  NsInodes self = reader.read_namespaces(self_pid);
  if (self[static_cast<size_t>(NsKind::Pid)] == kInitPidIno) {
    fill(NsKind::Mnt, self[static_cast<size_t>(NsKind::Mnt)]);
    fill(NsKind::Net, self[static_cast<size_t>(NsKind::Net)]);
  }
  return ns;
}

std::optional<ProcessInfo> ProcReader::read(uint32_t pid) const {
  auto status = read_file(dir(pid) / "status");
  if (!status) return std::nullopt;
  auto st = read_stat(pid);
  if (!st) return std::nullopt;
  ProcessInfo p;
  p.pid = pid;
  p.ppid = st->ppid;
  p.comm = st->comm;
  fill_from_status(*status, p);
  p.start_ktime_ns = util::ticks_to_ns(st->start_ticks, ticks_per_second_);
  if (auto cmdline = read_file(dir(pid) / "cmdline")) p.args = split_cmdline(*cmdline);
  p.binary = read_exe(pid).value_or("");
  p.cwd = read_cwd(pid).value_or("");
  if (auto loginuid = read_file(dir(pid) / "loginuid"))
    p.auid = parse_number<uint32_t>(first_word(*loginuid)).value_or(kNoAuid);
  p.ns = read_namespaces(pid);
  if (auto cg = read_cgroup_path(pid)) {
    p.cgroup_path = std::move(*cg);
    p.container = parse_container_cgroup(p.cgroup_path);
  }
  return p;
}

}  // namespace capscope
