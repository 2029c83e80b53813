// A table with Inspektor Gadget's trace_capabilities columns (CONTAINER COMM PID TID UID
// GID CAPABLE AUDIT CAP SYSCALL, TIMESTAMP with --wide) plus capscope's own, chosen with
// --fields. Fixed widths keep the columns aligned: text is cut with "…", numbers never.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "output/writer.h"

namespace capscope::output {

enum class Column {
  // Inspektor Gadget's.
  Container,
  Comm,
  Pid,
  Tid,
  Uid,
  Gid,
  Capable,
  Audit,
  Cap,
  Syscall,
  Timestamp,
  // capscope's.
  Ppid,
  Binary,
  Args,
  Verdict,
  AuditSource,
  Insetid,
  Mntns,
  CgroupId,
  UsernsLevel,
  ExecId,
  Suppressed,
  Namespace,  // the Kubernetes namespace (Inspektor Gadget's K8S.NAMESPACE)
  Pod,        // the pod (K8S.PODNAME)
  Image,      // the container's image
  Startup,    // "runtime" for a check made by the container runtime's own process
  Policy,     // the policy whose event this is (trace --policy), "-" for capscope's own
};

// The header: "CONTAINER", "AUDIT_SOURCE", ...
std::string_view column_name(Column c);

// Every column, in the order above.
std::vector<Column> all_columns();

// CONTAINER COMM PID TID UID GID CAPABLE AUDIT CAP SYSCALL, then TIMESTAMP when wide.
std::vector<Column> default_columns(bool wide);

// The columns --fields asks for. Names are case-insensitive; an entry may itself be a
// comma-separated list. Either every entry is a plain name, and the list replaces the
// defaults (in its order), or every entry starts with '+' (appended to the defaults) or
// '-' (removed from them), as in Inspektor Gadget. `wide` only changes the defaults.
// An empty list gives the defaults. Throws std::invalid_argument naming an unknown field
// and listing the valid ones, for a mix of both forms, and when no column is left.
std::vector<Column> resolve_columns(const std::vector<std::string>& fields, bool wide);

class TableWriter final : public BufferedWriter {
 public:
  TableWriter(Sink& out, std::vector<Column> columns);
  void write(const EnrichedCheck& e) override;
  void flush() override;  // prints the header first if no row did yet

 private:
  void header_once();
  void append_cell(Column c, const EnrichedCheck& e, bool last);

  std::vector<Column> columns_;
  bool header_done_ = false;
};

}  // namespace capscope::output
