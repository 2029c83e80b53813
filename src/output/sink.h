// Where a writer's bytes go: a stream (standard output, tests) or a file.
//
// A flood of JSON events is mostly bytes to move: a million checks a second make a
// gigabyte and more of JSON a second, and copying that through the page cache costs the
// tracer more than formatting it. FileSink therefore writes full blocks of a regular file
// with O_DIRECT where the file system takes it, so the copy is the disk's business, and
// only the tail of a flush goes through the page cache (so readers see every complete
// event at once).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace capscope::output {

class Sink {
 public:
  virtual ~Sink() = default;
  // Appends bytes. False once anything failed; error() says what.
  virtual bool write(std::string_view bytes) = 0;
  // complete: everything written so far reaches readers now. Otherwise only what is
  // cheap to hand over (a reader may see the last event cut until the next flush).
  virtual bool flush(bool complete) = 0;
  [[nodiscard]] virtual const std::string& error() const = 0;
};

class StreamSink final : public Sink {
 public:
  explicit StreamSink(std::ostream& out) : out_(out) {}
  bool write(std::string_view bytes) override;
  bool flush(bool complete) override;
  [[nodiscard]] const std::string& error() const override { return error_; }

 private:
  std::ostream& out_;
  std::string error_;
};

class FileSink final : public Sink {
 public:
  // Creates or truncates `path`. nullptr and a one-line reason in *error if it cannot.
  static std::unique_ptr<FileSink> open(const std::string& path, std::string* error);
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  bool write(std::string_view bytes) override;
  bool flush(bool complete) override;
  [[nodiscard]] const std::string& error() const override;
  // Whether full blocks bypass the page cache (a regular file on a disk file system).
  [[nodiscard]] bool direct() const { return direct_; }

 private:
  struct Io;  // the block pool and the thread that writes blocks out (sink.cpp)
  FileSink(std::string path, int fd, int direct_fd, bool seekable);
  bool submit_aligned();
  bool write_tail();

  std::unique_ptr<Io> io_;
  bool direct_ = false;
  char* block_ = nullptr;  // the block being filled (direct only)
  size_t used_ = 0;
  off_t base_ = 0;  // file offset of block_[0]
};

}  // namespace capscope::output
