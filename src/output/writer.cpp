#include "output/writer.h"

#include <ctime>
#include <ostream>
#include <stdexcept>

#include "output/compact_writer.h"
#include "output/json_writer.h"
#include "output/table_writer.h"
#include "tables/capabilities.h"

namespace capscope::output {
namespace {

// The coarse clock costs a few nanoseconds, against some twenty for the precise one, and
// its few milliseconds of resolution are plenty for a flush deadline.
int64_t coarse_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

unsigned char byte_at(std::string_view s, size_t i) { return static_cast<unsigned char>(s[i]); }

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8_length(std::string_view s, size_t i) {
  unsigned char c = byte_at(s, i);
  size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || byte_at(s, i + 1) < lo || byte_at(s, i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((byte_at(s, i + k) & 0xC0) != 0x80) return 0;
  return n;
}

void append_json_escape(Buffer& out, unsigned char c) {
  switch (c) {
    case '"':
      put(out, "\\\"");
      return;
    case '\\':
      put(out, "\\\\");
      return;
    case '\b':
      put(out, "\\b");
      return;
    case '\f':
      put(out, "\\f");
      return;
    case '\n':
      put(out, "\\n");
      return;
    case '\r':
      put(out, "\\r");
      return;
    case '\t':
      put(out, "\\t");
      return;
    default:
      break;
  }
  if (c >= 0x80) {
    put(out, "\\ufffd");  // a byte that is not part of well-formed UTF-8
    return;
  }
  fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
}

void append_printable_escape(Buffer& out, unsigned char c) {
  switch (c) {
    case '\\':
      put(out, "\\\\");
      return;
    case '\n':
      put(out, "\\n");
      return;
    case '\r':
      put(out, "\\r");
      return;
    case '\t':
      put(out, "\\t");
      return;
    default:
      break;
  }
  fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
}

// C1 controls (U+0080..U+009F) are well-formed UTF-8, but some terminals act on them.
bool is_c1(std::string_view s, size_t i, size_t len) {
  return len == 2 && byte_at(s, i) == 0xC2 && byte_at(s, i + 1) < 0xA0;
}

// How many bytes at s[i] the JSON writer escapes: 0 when the character is copied.
size_t json_escape_length(std::string_view s, size_t i) {
  unsigned char c = byte_at(s, i);
  if (c >= 0x20 && c < 0x7f) return c == '"' || c == '\\' ? 1 : 0;
  if (c < 0x80) return 1;
  size_t n = utf8_length(s, i);
  if (n == 0) return 1;
  return is_c1(s, i, n) ? 2 : 0;
}

// How many bytes at s[i] go to a terminal as escapes: 0 when the character prints.
size_t printable_escape_length(std::string_view s, size_t i) {
  unsigned char c = byte_at(s, i);
  if (c >= 0x20 && c < 0x7f) return c == '\\' ? 1 : 0;
  if (c < 0x80) return 1;
  size_t n = utf8_length(s, i);
  if (n == 0) return 1;
  return is_c1(s, i, n) ? 2 : 0;
}

// Copies `s` to `out`, runs of plain characters in one go; where escape_length(s, i)
// says n > 0 bytes need escaping, calls escape(i, n) instead.
template <typename EscapeLength, typename Escape>
void append_escaped(Buffer& out, std::string_view s, EscapeLength escape_length, Escape escape) {
  size_t run = 0;  // start of the bytes not yet copied
  size_t i = 0;
  while (i < s.size()) {
    size_t n = escape_length(s, i);
    if (n == 0) {
      i += byte_at(s, i) < 0x80 ? 1 : utf8_length(s, i);
      continue;
    }
    put(out, s.substr(run, i - run));
    escape(i, n);
    i += n;
    run = i;
  }
  put(out, s.substr(run));
}

// Code point starting at s[i] of valid UTF-8, and its length in *len.
char32_t decode_utf8(std::string_view s, size_t i, size_t* len) {
  unsigned char c = byte_at(s, i);
  if (c < 0x80 || i + 1 >= s.size()) {
    *len = 1;
    return c;
  }
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  if (i + n > s.size()) n = s.size() - i;
  char32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (byte_at(s, i + k) & 0x3F);
  *len = n;
  return cp;
}

bool is_wide(char32_t cp) {
  return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F) ||
         (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
         (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
         (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
         (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

size_t char_width(std::string_view s, size_t i, size_t* len) {
  return is_wide(decode_utf8(s, i, len)) ? 2 : 1;
}

// Byte offset in `p` after the longest prefix that fits `width` columns.
size_t prefix_fitting(std::string_view p, size_t width) {
  size_t cols = 0;
  size_t i = 0;
  while (i < p.size()) {
    size_t len = 0;
    size_t w = char_width(p, i, &len);
    if (cols + w > width) break;
    cols += w;
    i += len;
  }
  return i;
}

// Byte offset in `p` where the longest suffix that fits `width` columns starts.
size_t suffix_fitting(std::string_view p, size_t width) {
  size_t excess = display_width(p) - width;
  size_t i = 0;
  size_t dropped = 0;
  while (i < p.size() && dropped < excess) {
    size_t len = 0;
    dropped += char_width(p, i, &len);
    i += len;
  }
  return i;
}

}  // namespace

std::optional<Format> parse_format(std::string_view s) {
  if (iequals(s, "json")) return Format::Json;
  if (iequals(s, "compact")) return Format::Compact;
  if (iequals(s, "table")) return Format::Table;
  return std::nullopt;
}

std::unique_ptr<EventWriter> make_writer(Format format, Sink& out, const WriterOptions& options) {
  if (format != Format::Table && !options.fields.empty())
    throw std::invalid_argument("--fields selects table columns: use it with -o table");
  switch (format) {
    case Format::Json:
      return std::make_unique<JsonWriter>(out,
                                          JsonOptions{options.process_caps, options.process_ns});
    case Format::Compact:
      return std::make_unique<CompactWriter>(out);
    case Format::Table:
      return std::make_unique<TableWriter>(out, resolve_columns(options.fields, options.wide));
  }
  throw std::invalid_argument("unknown output format");
}

BufferedWriter::~BufferedWriter() {
  try {
    BufferedWriter::flush();
  } catch (...) {  // a stream set to throw must not take the process down here
  }
}

void BufferedWriter::hand_over() {
  if (buf_.size() > 0) sink_.write(std::string_view(buf_.data(), buf_.size()));
  buf_.clear();
}

void BufferedWriter::flush() {
  hand_over();
  sink_.flush(true);
  last_flush_ns_ = coarse_now_ns();
}

// A steady stream never leaves the pipeline idle, so the deadline flush hands over what
// is cheap to hand over; the idle flush hands over everything.
void BufferedWriter::end_event() {
  if (buf_.size() >= kBlockBytes) hand_over();
  if (coarse_now_ns() - last_flush_ns_ >= kMaxDelayNs) {
    hand_over();
    sink_.flush(false);
    last_flush_ns_ = coarse_now_ns();
  }
}

void append_json_string(Buffer& out, std::string_view s) {
  out.push_back('"');
  append_escaped(out, s, json_escape_length, [&](size_t i, size_t n) {
    if (n == 2) {  // a C1 control, written as \u0080..\u009f
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", byte_at(s, i + 1));
      return;
    }
    append_json_escape(out, byte_at(s, i));
  });
  out.push_back('"');
}

void append_printable(Buffer& out, std::string_view s) {
  append_escaped(out, s, printable_escape_length, [&](size_t i, size_t n) {
    for (size_t k = 0; k < n; ++k) append_printable_escape(out, byte_at(s, i + k));
  });
}

size_t display_width(std::string_view printable) {
  size_t cols = 0;
  size_t i = 0;
  while (i < printable.size()) {
    size_t len = 0;
    cols += char_width(printable, i, &len);
    i += len;
  }
  return cols;
}

size_t append_clipped(Buffer& out, std::string_view s, size_t width, bool keep_tail) {
  thread_local Buffer scratch;  // reused: the hot path allocates nothing here
  scratch.clear();
  append_printable(scratch, s);
  std::string_view p(scratch.data(), scratch.size());
  size_t cols = display_width(p);
  if (cols <= width) {
    put(out, p);
    return cols;
  }
  if (width == 0) return 0;
  constexpr std::string_view kEllipsis = "…";
  if (keep_tail) {
    put(out, kEllipsis);
    std::string_view tail = p.substr(suffix_fitting(p, width - 1));
    put(out, tail);
    return 1 + display_width(tail);
  }
  std::string_view head = p.substr(0, prefix_fitting(p, width - 1));
  put(out, head);
  put(out, kEllipsis);
  return display_width(head) + 1;
}

void append_spaces(Buffer& out, size_t n) {
  constexpr std::string_view kSpaces = "                                ";
  while (n > 0) {
    size_t k = std::min(n, kSpaces.size());
    put(out, kSpaces.substr(0, k));
    n -= k;
  }
}

std::string tetragon_arguments(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 1; i < argv.size(); ++i) {
    if (i > 1) out += ' ';
    bool quote = argv[i].find(' ') != std::string::npos;
    if (quote) out += '"';
    out += argv[i];
    if (quote) out += '"';
  }
  return out;
}

void append_cap_name(Buffer& out, int cap) {
  auto known = tables::all_capabilities();
  if (cap >= 0 && static_cast<size_t>(cap) < known.size()) {
    put(out, known[static_cast<size_t>(cap)].name);
    return;
  }
  put(out, tables::cap_name(cap));
}

std::string_view verdict_word(const CapCheck& c) { return c.granted() ? "granted" : "denied"; }

std::string policy_label(const CapCheck& c) {
  if (!c.policy_sigkill) return c.policy_name;
  return c.policy_name + (c.policy_killed ? " [killed]" : " [sigkill]");
}

std::string container_label(const EnrichedCheck& e, bool with_pod) {
  if (!e.process) return "?";
  const ContainerRef& c = e.process->container;
  if (c.empty()) return "host";
  const ContainerInfo* info = e.container.get();
  if (info == nullptr || info->name.empty()) return c.id.substr(0, 12);
  if (!with_pod || info->pod_name.empty()) return info->name;
  if (info->pod_namespace.empty()) return info->pod_name + "/" + info->name;
  return info->pod_namespace + "/" + info->pod_name + "/" + info->name;
}

}  // namespace capscope::output
