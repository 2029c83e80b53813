#include "output/table_writer.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include "tables/syscalls.h"
#include "util/clock.h"

namespace capscope::output {
namespace {

enum class Kind {
  Text,    // left-aligned, cut at the end
  Path,    // left-aligned, cut at the start (the file name is the informative end)
  Number,  // right-aligned, never cut
};

struct ColumnSpec {
  Column column;
  std::string_view name;
  size_t width;  // at least the header's length
  Kind kind;
};

// Widths: a container id short form is 12, a comm at most 15, pid_max 4194304 has 7
// digits, CAP_CHECKPOINT_RESTORE is 22, an RFC 3339 time with nanoseconds 30, a Tetragon
// exec id of a short node name about 52.
constexpr std::array<ColumnSpec, 27> kColumns = {{
    {Column::Container, "CONTAINER", 16, Kind::Text},
    {Column::Comm, "COMM", 16, Kind::Text},
    {Column::Pid, "PID", 7, Kind::Number},
    {Column::Tid, "TID", 7, Kind::Number},
    {Column::Uid, "UID", 7, Kind::Number},
    {Column::Gid, "GID", 7, Kind::Number},
    {Column::Capable, "CAPABLE", 7, Kind::Text},
    {Column::Audit, "AUDIT", 5, Kind::Text},
    {Column::Cap, "CAP", 22, Kind::Text},
    {Column::Syscall, "SYSCALL", 18, Kind::Text},
    {Column::Timestamp, "TIMESTAMP", 30, Kind::Text},
    {Column::Ppid, "PPID", 7, Kind::Number},
    {Column::Binary, "BINARY", 24, Kind::Path},
    {Column::Args, "ARGS", 32, Kind::Text},
    {Column::Verdict, "VERDICT", 7, Kind::Text},
    {Column::AuditSource, "AUDIT_SOURCE", 12, Kind::Text},
    {Column::Insetid, "INSETID", 7, Kind::Text},
    {Column::Mntns, "MNTNS", 10, Kind::Number},
    {Column::CgroupId, "CGROUP_ID", 10, Kind::Number},
    {Column::UsernsLevel, "USERNS_LEVEL", 12, Kind::Number},
    {Column::ExecId, "EXEC_ID", 52, Kind::Text},
    {Column::Suppressed, "SUPPRESSED", 10, Kind::Number},
    {Column::Namespace, "NAMESPACE", 16, Kind::Text},
    {Column::Pod, "POD", 24, Kind::Text},
    {Column::Image, "IMAGE", 32, Kind::Text},
    {Column::Startup, "STARTUP", 7, Kind::Text},
    {Column::Policy, "POLICY", 24, Kind::Text},
}};

const ColumnSpec& spec(Column c) { return kColumns[static_cast<size_t>(c)]; }

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string valid_names() {
  std::string out;
  for (const auto& c : kColumns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

Column column_named(std::string_view name) {
  std::string up(name);
  std::transform(up.begin(), up.end(), up.begin(), upper);
  for (const auto& c : kColumns)
    if (c.name == up) return c.column;
  throw std::invalid_argument(
      fmt::format("--fields: unknown field '{}'; valid fields: {}", name, valid_names()));
}

// The entries, split at commas and trimmed; empty ones dropped.
std::vector<std::string_view> split_entries(const std::vector<std::string>& fields) {
  std::vector<std::string_view> out;
  for (const auto& f : fields) {
    std::string_view rest = f;
    while (true) {
      size_t comma = rest.find(',');
      std::string_view one = trim(rest.substr(0, comma));
      if (!one.empty()) out.push_back(one);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

bool is_modifier(std::string_view entry) { return entry[0] == '+' || entry[0] == '-'; }

void add_once(std::vector<Column>& cols, Column c) {
  if (std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
}

void modify(std::vector<Column>& cols, std::string_view entry) {
  Column c = column_named(trim(entry.substr(1)));
  if (entry[0] == '+') {
    add_once(cols, c);
  } else {
    cols.erase(std::remove(cols.begin(), cols.end(), c), cols.end());
  }
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

// The text of a cell before it is made printable and fitted.
std::string cell_text(Column c, const EnrichedCheck& e) {
  const CapCheck& k = e.check;
  const ProcessInfo* p = e.process.get();
  switch (c) {
    case Column::Container:
      return container_label(e, false);
    case Column::Namespace:
      return e.container ? or_dash(e.container->pod_namespace) : "-";
    case Column::Pod:
      return e.container ? or_dash(e.container->pod_name) : "-";
    case Column::Image:
      return e.container ? or_dash(e.container->image) : "-";
    case Column::Startup:
      return e.runtime_process ? "runtime" : "-";
    case Column::Comm:
      return k.comm;
    case Column::Pid:
      return std::to_string(k.pid);
    case Column::Tid:
      return std::to_string(k.tid);
    case Column::Uid:
      return std::to_string(k.uid);
    case Column::Gid:
      return std::to_string(k.gid);
    case Column::Capable:
      return k.granted() ? "true" : "false";
    case Column::Audit:
      return k.audit ? "1" : "0";
    case Column::Cap: {
      Buffer b;
      append_cap_name(b, k.cap);
      return {b.data(), b.size()};
    }
    case Column::Syscall:
      return tables::syscall_display_name(k.syscall_nr);
    case Column::Timestamp:
      return util::format_rfc3339_ns(e.wall_ns);
    case Column::Ppid:
      return std::to_string(k.ppid);
    case Column::Binary:
      return or_dash(p ? p->binary : "");
    case Column::Args:
      return or_dash(p ? tetragon_arguments(p->args) : "");
    case Column::Verdict:
      return std::string(verdict_word(k));
    case Column::AuditSource:
      return std::string(audit_source_name(k.audit_source));
    case Column::Insetid:
      return k.insetid ? "true" : "false";
    case Column::Mntns:
      return std::to_string(k.mntns);
    case Column::CgroupId:
      return std::to_string(k.cgroup_id);
    case Column::UsernsLevel:
      return std::to_string(k.target_ns.level);
    case Column::ExecId:
      return or_dash(p ? p->exec_id : "");
    case Column::Suppressed:
      return std::to_string(k.suppressed);
    case Column::Policy:
      return k.policy_slot < 0 ? "-" : policy_label(k);
  }
  return "";
}

// One cell: fitted to its width and padded, unless it is the last of the line, which
// is never cut (nothing follows it to misalign) and gets no trailing blanks.
void append_fitted(Buffer& b, const ColumnSpec& s, std::string_view text, bool last) {
  if (s.kind == Kind::Number) {
    if (!last && text.size() < s.width) append_spaces(b, s.width - text.size());
    put(b, text);
    return;
  }
  if (last) {
    append_printable(b, text);
    return;
  }
  size_t cols = append_clipped(b, text, s.width, s.kind == Kind::Path);
  if (cols < s.width) append_spaces(b, s.width - cols);
}

}  // namespace

std::string_view column_name(Column c) { return spec(c).name; }

std::vector<Column> all_columns() {
  std::vector<Column> out;
  out.reserve(kColumns.size());
  for (const auto& c : kColumns) out.push_back(c.column);
  return out;
}

std::vector<Column> default_columns(bool wide) {
  std::vector<Column> cols = {Column::Container, Column::Comm,   Column::Pid,     Column::Tid,
                              Column::Uid,       Column::Gid,    Column::Capable, Column::Audit,
                              Column::Cap,       Column::Syscall};
  if (wide) cols.push_back(Column::Timestamp);
  return cols;
}

std::vector<Column> resolve_columns(const std::vector<std::string>& fields, bool wide) {
  std::vector<std::string_view> entries = split_entries(fields);
  if (entries.empty()) return default_columns(wide);
  bool modifying = is_modifier(entries.front());
  for (auto entry : entries) {
    if (is_modifier(entry) != modifying)
      throw std::invalid_argument(
          "--fields: either list the columns to show, or add (+FIELD) and remove (-FIELD) "
          "columns from the defaults, not both");
  }
  std::vector<Column> cols;
  if (modifying) {
    cols = default_columns(wide);
    for (auto entry : entries) modify(cols, entry);
  } else {
    for (auto entry : entries) add_once(cols, column_named(entry));
  }
  if (cols.empty()) throw std::invalid_argument("--fields: no column left to show");
  return cols;
}

TableWriter::TableWriter(Sink& out, std::vector<Column> columns)
    : BufferedWriter(out), columns_(std::move(columns)) {
  if (columns_.empty()) columns_ = default_columns(false);
}

void TableWriter::header_once() {
  if (header_done_) return;
  header_done_ = true;
  for (size_t i = 0; i < columns_.size(); ++i) {
    const ColumnSpec& s = spec(columns_[i]);
    bool last = i + 1 == columns_.size();
    if (i > 0) buf().push_back(' ');
    // Headers sit over their values: numbers are right-aligned, so are their headers.
    append_fitted(buf(), s, s.name, last);
  }
  buf().push_back('\n');
}

void TableWriter::append_cell(Column c, const EnrichedCheck& e, bool last) {
  append_fitted(buf(), spec(c), cell_text(c, e), last);
}

void TableWriter::write(const EnrichedCheck& e) {
  header_once();
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i > 0) buf().push_back(' ');
    append_cell(columns_[i], e, i + 1 == columns_.size());
  }
  buf().push_back('\n');
  end_event();
}

void TableWriter::flush() {
  header_once();
  BufferedWriter::flush();
}

}  // namespace capscope::output
