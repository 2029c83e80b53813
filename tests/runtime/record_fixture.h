// The fixture of the `capscope record` runtime tests: a temporary directory
// with a profile database, `record` run with the backend under test, and its
// JSON report and stderr at hand.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "helpers.h"

namespace capscope::runtime_test {

class RecordRuntime : public ::testing::Test {
 protected:
  using json = nlohmann::json;

  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    dir_ = fs::temp_directory_path() / ("capscope-record-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write);
    db_ = (dir_ / "profiles.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `capscope record` with the backend under test; returns its exit status.
  int record(const std::string& name, const std::string& command, const std::string& extra = "") {
    std::string backend = test_backend().empty() ? "" : " --backend " + test_backend();
    return sh(capscope_binary() + " record --db " + db_ + " --name " + name + backend + " -o json" +
              " --report " + report_file() + " " + extra + " -- " + command + " 2>" +
              (dir_ / "stderr").string());
  }
  std::string report_file() const { return (dir_ / "report.json").string(); }
  json report() const { return json::parse(read_file(report_file())); }
  std::string stderr_text() const { return read_file(dir_ / "stderr"); }
  // Waits (up to 90 s: a guest under emulation is slow; on 6.12 with kprobes a start
  // took 23 s with the machine idle and over 30 s beside another guest) until a
  // spawned `record` says it is recording.
  bool wait_recording() const {
    for (int i = 0; i < 1800; ++i) {
      if (stderr_text().find("recording") != std::string::npos) return true;
      usleep(50'000);
    }
    return false;
  }
  std::string advise(const std::string& name, const std::string& format) {
    return capture(capscope_binary() + " advise " + name + " --db " + db_ + " -f " + format);
  }

  fs::path dir_;
  std::string db_;
};

}  // namespace capscope::runtime_test
