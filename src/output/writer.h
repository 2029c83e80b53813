// Event writers: how a check leaves capscope (JSON lines, compact lines or a table), and
// the text helpers the three share. docs/EVENTS.md documents every format.
//
// Writers sit on the hot path of `trace -o json` (hundreds of thousands of checks a
// second): each builds its lines with fmt in one reused buffer and hands the stream
// blocks of many lines, never one line at a time, and builds no JSON DOM.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/process.h"
#include "output/sink.h"

namespace capscope::output {

enum class Format { Json, Compact, Table };

// "json", "compact" or "table", in any letter case; anything else gives nullopt.
std::optional<Format> parse_format(std::string_view s);

struct WriterOptions {
  std::vector<std::string> fields;  // table columns; see resolve_columns() in table_writer.h
  bool wide = false;                // table: TIMESTAMP among the default columns
  bool process_caps = false;        // json: Tetragon's process.cap block and process_caps
  bool process_ns = false;          // json: Tetragon's process.ns block
};

class EventWriter {
 public:
  virtual ~EventWriter() = default;
  virtual void write(const EnrichedCheck& e) = 0;
  // Hands everything written so far to the stream and flushes the stream.
  virtual void flush() = 0;
};

// Throws std::invalid_argument for options the format cannot honour: an unknown table
// field, or fields given to a format other than table. The writer writes to `sink`,
// which must outlive it.
std::unique_ptr<EventWriter> make_writer(Format format, Sink& sink, const WriterOptions& options);

using Buffer = fmt::memory_buffer;

// Base of the writers: lines accumulate in one buffer that reaches the stream when it
// holds kBlockBytes, and at flush(). The pipeline flushes whenever the source is idle;
// a steady trickle of checks never leaves it idle, so end_event() also flushes when the
// last flush is kMaxDelayNs old: a reader on a pipe never waits long for a line.
class BufferedWriter : public EventWriter {
 public:
  explicit BufferedWriter(Sink& sink) : sink_(sink) {}
  BufferedWriter(const BufferedWriter&) = delete;
  BufferedWriter& operator=(const BufferedWriter&) = delete;
  ~BufferedWriter() override;  // flushes: a writer dropped without flush() loses nothing
  void flush() override;

 protected:
  Buffer& buf() { return buf_; }
  void end_event();  // after each event: hands the block over when full or old

 private:
  static constexpr size_t kBlockBytes = 64 * 1024;
  static constexpr int64_t kMaxDelayNs = 100'000'000;
  void hand_over();

  Sink& sink_;
  Buffer buf_;
  int64_t last_flush_ns_ = 0;
};

// ---- Text helpers shared by the writers -------------------------------------------------

// One resize and a memcpy: fmt's generic append() costs a quarter of the JSON writer's
// time on the many short pieces an event is made of.
inline void put(Buffer& out, std::string_view s) {
  size_t old = out.size();
  out.resize(old + s.size());
  std::memcpy(out.data() + old, s.data(), s.size());
}

template <typename Int>
void put_int(Buffer& out, Int v) {
  fmt::format_int f(v);
  put(out, std::string_view(f.data(), f.size()));
}

// Appends `s` as a JSON string literal, quotes included. Any bytes give valid JSON: `"`,
// `\`, control characters, DEL and C1 controls are escaped (so no line break or terminal
// escape sequence survives), other well-formed UTF-8 is copied, and each byte that is not
// part of well-formed UTF-8 becomes U+FFFD (as Go's encoder, hence Tetragon, does).
void append_json_string(Buffer& out, std::string_view s);

// Appends `s` for a terminal: control characters, DEL, C1 controls, `\` and bytes that
// are not well-formed UTF-8 become C escapes (\n, \t, \r, \\, \xNN), so that one event
// stays one line and no escape sequence reaches the terminal.
void append_printable(Buffer& out, std::string_view s);

// Terminal columns of printable UTF-8 text (East Asian wide characters and emoji count
// two, everything else one; an approximation of wcwidth that needs no locale).
size_t display_width(std::string_view printable);

// append_printable(s), cut to at most `width` columns; the cut side becomes "…".
// keep_tail keeps the end (for paths). Returns the columns written.
size_t append_clipped(Buffer& out, std::string_view s, size_t width, bool keep_tail = false);

// Appends `n` spaces.
void append_spaces(Buffer& out, size_t n);

// argv[1..] joined by spaces, each argument that contains a space wrapped in double
// quotes (and nothing else escaped), the way Tetragon prints `process.arguments`.
std::string tetragon_arguments(const std::vector<std::string>& argv);

// tables::cap_name() without an allocation for the capabilities the table knows.
void append_cap_name(Buffer& out, int cap);

// "granted" or "denied".
std::string_view verdict_word(const CapCheck& c);

// A policy event's policy for the compact and table formats: its name, followed by
// " [killed]" when its Sigkill was sent, " [sigkill]" when it was not.
std::string policy_label(const CapCheck& c);

// Where the check ran, for the compact and table formats: "host", the container's name
// as the runtime gives it (prefixed "namespace/pod/" when `with_pod` and it runs in a
// pod), else the first 12 characters of its id; "?" when the process is unknown.
std::string container_label(const EnrichedCheck& e, bool with_pod = true);

}  // namespace capscope::output
