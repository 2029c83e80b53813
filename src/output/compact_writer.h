// One line per check for a person at a terminal, in the spirit of `tetra getevents -o
// compact`: verdict, capability, who asked, through which syscall, audit or probe, where.
//
//   ❌ denied  CAP_SYSLOG    dmesg[73860] /bin/dmesg via syslog (audit)  container spaceship
//   ✅ granted CAP_SETUID    sudo[4242] /usr/bin/sudo -u nobody id via setuid (audit, insetid)  host
//
// docs/EVENTS.md describes every part.
#pragma once

#include <iosfwd>

#include "output/writer.h"

namespace capscope::output {

// Appends the line of one check, without the newline.
void append_compact_line(Buffer& out, const EnrichedCheck& e);

class CompactWriter final : public BufferedWriter {
 public:
  explicit CompactWriter(Sink& out) : BufferedWriter(out) {}
  void write(const EnrichedCheck& e) override;
};

}  // namespace capscope::output
