#include "output/compact_writer.h"

#include "tables/syscalls.h"

namespace capscope::output {
namespace {

// Wide enough for the common names (CAP_SYS_ADMIN) to line up; longer ones push on.
constexpr size_t kCapColumn = 13;
// Arguments beyond this many columns are cut: a JVM's command line would bury the rest.
constexpr size_t kArgsColumns = 100;

void append_cap_padded(Buffer& b, int cap) {
  size_t before = b.size();
  append_cap_name(b, cap);
  size_t len = b.size() - before;  // ASCII
  if (len < kCapColumn) append_spaces(b, kCapColumn - len);
}

void append_who(Buffer& b, const EnrichedCheck& e) {
  append_clipped(b, e.check.comm, 64);
  b.push_back('[');
  put_int(b, e.check.pid);
  b.push_back(']');
  if (!e.process || e.process->binary.empty()) return;
  b.push_back(' ');
  append_printable(b, e.process->binary);
  if (e.process->args.size() < 2) return;
  b.push_back(' ');
  append_clipped(b, tetragon_arguments(e.process->args), kArgsColumns);
}

void append_syscall(Buffer& b, const CapCheck& c) {
  if (c.syscall_nr >= 0) {
    put(b, " via ");
    put(b, tables::syscall_name(c.syscall_nr));
  } else {
    put(b, c.kthread ? " in a kernel thread" : " outside any syscall");
  }
}

void append_flags(Buffer& b, const CapCheck& c) {
  put(b, c.audit ? " (audit" : " (probe");
  if (c.insetid) put(b, ", insetid");
  if (c.cred_override) put(b, ", cred-override");
  if (c.suppressed > 0) {
    put(b, ", +");
    put_int(b, c.suppressed);
    put(b, " suppressed");
  }
  b.push_back(')');
}

void append_where(Buffer& b, const EnrichedCheck& e) {
  put(b, "  ");
  bool in_container = e.process && !e.process->container.empty();
  if (in_container) put(b, "container ");
  append_printable(b, container_label(e));
  if (e.runtime_process) put(b, " [runtime start-up]");
}

// A policy's event ends with the policy that posted it.
void append_policy(Buffer& b, const CapCheck& c) {
  if (c.policy_slot < 0) return;
  put(b, "  policy ");
  append_printable(b, policy_label(c));
}

}  // namespace

void append_compact_line(Buffer& out, const EnrichedCheck& e) {
  const CapCheck& c = e.check;
  put(out, c.granted() ? "✅ granted " : "❌ denied  ");
  append_cap_padded(out, c.cap);
  out.push_back(' ');
  append_who(out, e);
  append_syscall(out, c);
  append_flags(out, c);
  append_where(out, e);
  append_policy(out, c);
}

void CompactWriter::write(const EnrichedCheck& e) {
  append_compact_line(buf(), e);
  buf().push_back('\n');
  end_event();
}

}  // namespace capscope::output
