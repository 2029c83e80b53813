// Runtime tests of `capscope record`, `profile` and `advise`: real commands
// recorded through the kernel's aggregation map, their profiles stored, merged
// and turned into advice, and the exit status of the command passed through.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "record_fixture.h"

using nlohmann::json;
using namespace capscope::runtime_test;

namespace {

// /bin/true makes only the mmap/brk/execve probes: no capability to add.
TEST_F(RecordRuntime, TrueNeedsNoCapabilities) {
  ASSERT_EQ(record("true", "/bin/true"), 0) << stderr_text();
  json r = report();
  EXPECT_TRUE(r.at("add").empty()) << r.dump();
  EXPECT_EQ(r.at("probes"), json::array({"SYS_ADMIN"})) << r.dump();
  EXPECT_EQ(advise("true", "docker"), "--cap-drop=ALL --security-opt=no-new-privileges");
}

// chown as root needs CHOWN (audited, granted, in fchownat by /usr/bin/chown),
// recorded in the kernel's map; the command's exit status comes back.
TEST_F(RecordRuntime, ChownNeedsChownAndTheExitStatusPassesThrough) {
  fs::path f = dir_ / "target";
  std::ofstream(f) << "x";
  int rc = record("chown", "sh -c 'chown 1:1 " + f.string() + " && exit 7'");
  EXPECT_EQ(rc, 7) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("add"), json::array({"CHOWN"})) << r.dump();
  std::string evidence = r.at("evidence").at("CHOWN").at("evidence");
  EXPECT_NE(evidence.find("fchownat by /usr/bin/chown"), std::string::npos) << evidence;
  EXPECT_NE(stderr_text().find("aggregated in the kernel"), std::string::npos) << stderr_text();
  std::string k8s = advise("chown", "k8s");
  EXPECT_NE(k8s.find("    drop:\n      - ALL\n    add:\n      - CHOWN"), std::string::npos) << k8s;
}

// Only the command's tree is recorded: a chown elsewhere on the machine at the
// same time is not in the profile, a chown by a double-forked daemon of the
// command is.
TEST_F(RecordRuntime, OnlyTheCommandsTreeIsRecordedDaemonsIncluded) {
  fs::path f = dir_ / "target";
  std::ofstream(f) << "x";
  std::string outside = "(sleep 0.3; chown 2:2 " + f.string() + ") &";
  ASSERT_EQ(sh(outside), 0);
  // The daemon: a grandchild that outlives its parent, then renices itself.
  int rc = record("tree", "sh -c '(setsid sh -c \"sleep 0.2; nice -n -5 true\" &) ; sleep 1'");
  EXPECT_EQ(rc, 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("add"), json::array({"SYS_NICE"})) << r.dump();
}

// Recording the same name again merges: runs add up, capabilities unite.
TEST_F(RecordRuntime, RecordingAgainMergesRuns) {
  fs::path f = dir_ / "target";
  std::ofstream(f) << "x";
  ASSERT_EQ(record("grow", "chown 1:1 " + f.string()), 0) << stderr_text();
  ASSERT_EQ(record("grow", "nice -n -5 true"), 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("runs"), 2);
  EXPECT_EQ(r.at("add"), json::array({"CHOWN", "SYS_NICE"})) << r.dump();
  std::string list = capture(capscope_binary() + " profile list --db " + db_);
  EXPECT_NE(list.find("grow"), std::string::npos) << list;
  EXPECT_NE(list.find("CHOWN,SYS_NICE"), std::string::npos) << list;
}

// diff exits 3 when the newer profile needs a capability the older did not;
// an exported profile (JSON or YAML) imports back under another name.
TEST_F(RecordRuntime, DiffFlagsNewNeedsAndExportImportRoundTrips) {
  fs::path f = dir_ / "target";
  std::ofstream(f) << "x";
  ASSERT_EQ(record("v1", "chown 1:1 " + f.string()), 0) << stderr_text();
  ASSERT_EQ(record("v2", "sh -c 'chown 1:1 " + f.string() + "; nice -n -5 true'"), 0)
      << stderr_text();
  std::string bin = capscope_binary() + " profile ";
  std::string db = " --db " + db_;
  std::string diff = capture(bin + "diff v1 v2" + db + "; echo rc=$?");
  EXPECT_NE(diff.find("+ CAP_SYS_NICE"), std::string::npos) << diff;
  EXPECT_NE(diff.find("rc=3"), std::string::npos) << diff;
  EXPECT_EQ(sh(bin + "diff v2 v1" + db + " >/dev/null"), 0);
  std::string exported = (dir_ / "v2.json").string();
  ASSERT_EQ(sh(bin + "export v2 --out " + exported + db), 0);
  ASSERT_EQ(sh(bin + "import " + exported + " --name v2copy" + db + " >/dev/null"), 0);
  EXPECT_EQ(sh(bin + "diff v2 v2copy" + db + " >/dev/null"), 0);
  std::string as_yaml = (dir_ / "v2.out").string();  // no .yaml: import tells by content
  ASSERT_EQ(sh(bin + "export v2 --format yaml --out " + as_yaml + db), 0);
  ASSERT_EQ(sh(bin + "import " + as_yaml + " --name v2yaml" + db + " >/dev/null"), 0);
  std::string same = capture(bin + "diff v2 v2yaml" + db + "; echo rc=$?");
  EXPECT_NE(same.find("v2 and v2yaml need the same capabilities\nrc=0"), std::string::npos) << same;
  EXPECT_EQ(advise("v2copy", "docker"),
            "--cap-drop=ALL --cap-add=CHOWN --cap-add=SYS_NICE --security-opt=no-new-privileges");
}

// --pid follows a running process and what it forks, until it exits; a chown
// elsewhere at the same time is not in its profile. The process waits for a
// file before it acts: loading capscope takes seconds on an emulated guest.
TEST_F(RecordRuntime, PidFollowsTheProcessAndItsDescendantsOnly) {
  fs::path f = dir_ / "target", go = dir_ / "go";
  std::ofstream(f) << "x";
  std::string script = "while [ ! -e " + go.string() + " ]; do sleep 0.05; done; chown 1:1 " +
                       f.string() + "; (nice -n -3 true); sleep 0.2";
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::vector<std::string> args = {
      capscope_binary(),   "record", "--db", db_,        "--name",     "follow", "--pid",
      std::to_string(pid), "-o",     "json", "--report", report_file()};
  if (!test_backend().empty()) args.insert(args.end(), {"--backend", test_backend()});
  pid_t recorder = spawn(args, dir_ / "stderr");
  ASSERT_TRUE(wait_recording()) << stderr_text();
  ASSERT_EQ(sh("chown 2:2 " + f.string()), 0);  // outside the followed tree
  std::ofstream(go) << "go";
  int st = 0;
  waitpid(pid, &st, 0);  // reaped: now it is gone, and capscope stops
  ASSERT_EQ(waitpid(recorder, &st, 0), recorder);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("add"), json::array({"CHOWN", "SYS_NICE"})) << r.dump();
  ASSERT_TRUE(r.at("evidence").contains("CHOWN")) << r.dump();
  std::string chown = r.at("evidence").at("CHOWN").at("evidence");
  EXPECT_NE(chown.find("(1:1 "), std::string::npos) << chown;
  EXPECT_EQ(chown.find("2:2"), std::string::npos) << chown;
}

// --verify runs the command again with its bounding set cut to the advice (it
// must behave the same), then without each advised capability (each must break it).
TEST_F(RecordRuntime, VerifyConfinesToTheAdviceAndFindsEachCapabilityNeeded) {
  fs::path f = dir_ / "target";
  std::ofstream(f) << "x";
  int rc =
      record("verified", "sh -c 'chown 1:1 " + f.string() + " && nice -n -2 true'", "--verify");
  EXPECT_EQ(rc, 0) << stderr_text();
  std::string err = stderr_text();
  EXPECT_NE(err.find("verify: confined to CHOWN,SYS_NICE (bounding set, as root): exit 0 as "
                     "before, no new denials: the advice holds"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("verify: without CHOWN: breaks: exit 1 (was 0); CAP_CHOWN denied"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("verify: without SYS_NICE: breaks: CAP_SYS_NICE denied"), std::string::npos)
      << err;
  // The confined runs are checks of the advice, not recordings of the workload.
  EXPECT_EQ(report().at("runs"), 1);
}

// A store that another process locks while the command runs loses nothing:
// the run's profile goes to a file in the export format, which imports once the
// lock is gone. The command waits for a file so the lock is taken in time.
TEST_F(RecordRuntime, LockedStoreSavesTheRunAsideForImport) {
  fs::path f = dir_ / "target", go = dir_ / "go";
  std::ofstream(f) << "x";
  std::string script =
      "while [ ! -e " + go.string() + " ]; do sleep 0.05; done; chown 1:1 " + f.string();
  pid_t recorder =
      spawn({capscope_binary(), "record", "--db", db_, "--name", "aside", "--", "sh", "-c", script},
            dir_ / "stderr");
  ASSERT_TRUE(wait_recording()) << stderr_text();
  sqlite3* lock = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &lock), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(lock, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::ofstream(go) << "go";
  int st = 0;
  ASSERT_EQ(waitpid(recorder, &st, 0), recorder);
  sqlite3_exec(lock, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(lock);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
      << "the command's status, not the store's: " << stderr_text();
  std::string err = stderr_text();
  EXPECT_NE(err.find("is locked by another process"), std::string::npos) << err;
  const std::string saved = "this run's profile is saved in ";
  auto at = err.find(saved);
  ASSERT_NE(at, std::string::npos) << err;
  at += saved.size();
  std::string aside = err.substr(at, err.find(' ', at) - at);
  ASSERT_EQ(sh(capscope_binary() + " profile import " + aside + " --db " + db_ + " >/dev/null"), 0)
      << aside;
  fs::remove(aside);
  EXPECT_EQ(advise("aside", "docker"),
            "--cap-drop=ALL --cap-add=CHOWN --security-opt=no-new-privileges");
}

TEST_F(RecordRuntime, BadInputFailsWithOneLine) {
  std::string bin = capscope_binary();
  std::string unknown = capture(bin + " advise nope --db " + db_ + " 2>&1; echo rc=$?");
  EXPECT_NE(unknown.find("no profile named \"nope\""), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("rc=2"), std::string::npos) << unknown;
  fs::path corrupt = dir_ / "corrupt.db";
  std::ofstream(corrupt) << std::string(8192, 'x');
  std::string bad_db =
      capture(bin + " record --db " + corrupt.string() + " -- /bin/true 2>&1; echo rc=$?");
  EXPECT_NE(bad_db.find("corrupt"), std::string::npos) << bad_db;
  EXPECT_NE(bad_db.find("rc=1"), std::string::npos) << bad_db;
  std::string nothing = capture(bin + " record --db " + db_ + " 2>&1; echo rc=$?");
  EXPECT_NE(nothing.find("rc=2"), std::string::npos) << nothing;
}

}  // namespace

namespace {

// A probe and a need of CAP_SYS_ADMIN in turn (tests/helpers/cs_probe_turns.c),
// from one thread: the kernel's counts keep them apart, every need counted as
// audited under its syscall, no probe among the needs nor need among the probes.
TEST_F(RecordRuntime, ProbeAndNeedInTurnAreCountedApart) {
  const uint64_t n = 3000;
  ASSERT_EQ(record("turns", helpers_dir() + "/cs_probe_turns " + std::to_string(n)), 0)
      << stderr_text();
  json p = json::parse(capture(capscope_binary() + " profile export turns --db " + db_));
  std::map<std::string, uint64_t> audited, probes;
  for (const auto& u : p.at("uses")) {
    if (u.at("capability") != "CAP_SYS_ADMIN" || u.at("verdict") != "granted") continue;
    auto& into = u.at("audit").get<bool>() ? audited : probes;
    for (const auto& [sc, count] : u.at("syscalls").items()) into[sc] += count.get<uint64_t>();
  }
  EXPECT_EQ(audited["sethostname"], n) << p.dump();
  EXPECT_EQ(audited.count("mmap"), 0u) << p.dump();
  EXPECT_GE(probes["mmap"], n) << p.dump();
  EXPECT_EQ(probes.count("sethostname"), 0u) << p.dump();
  EXPECT_NE(stderr_text().find(" 0 lost"), std::string::npos) << stderr_text();
}

// Every check counted exactly once: two processes on two CPUs make N setuid(0)
// checks each while the recorder drains its per-CPU cache and map every
// second (banks flipping under them); the profile must hold exactly 2N
// granted CAP_SETUID needs, no more, no fewer.
TEST_F(RecordRuntime, AggregatedCountsAreExactAcrossDrains) {
  // About 2.5 s of loop wherever it runs (an emulated guest is 10x slower),
  // so the recorder drains twice or more meanwhile.
  double ns = std::stod(capture(helpers_dir() + "/cs_setuid_loop 100000"));
  uint64_t n =
      std::clamp<uint64_t>(static_cast<uint64_t>(2.5e9 / std::max(ns, 1.0)), 100'000, 1'500'000);
  std::string loop = helpers_dir() + "/cs_setuid_loop " + std::to_string(n) + " >/dev/null";
  ASSERT_EQ(record("loops", "sh -c '" + loop + " & " + loop + " & wait'"), 0) << stderr_text();
  json p = json::parse(capture(capscope_binary() + " profile export loops --db " + db_));
  uint64_t setuid = 0;
  for (const auto& u : p.at("uses"))
    if (u.at("capability") == "CAP_SETUID" && u.at("verdict") == "granted" && u.at("audit") == true)
      setuid += u.at("count").get<uint64_t>();
  EXPECT_EQ(setuid, 2 * n) << stderr_text();
  EXPECT_NE(stderr_text().find(" 0 lost"), std::string::npos) << stderr_text();
}

// record's memo of a CPU's last counted check stands in for the subject test
// while the same task repeats it: a task that leaves the recorded cgroup must
// stop being counted at once. One thread, pinned to one CPU, makes N checks in
// record's cgroup, moves itself into another and makes N more: exactly N.
TEST_F(RecordRuntime, ATaskThatLeavesTheCgroupIsNoLongerCounted) {
  std::string root = cgroup2_mount();
  if (root.empty()) GTEST_SKIP() << "no cgroup2 mount: record -- CMD needs one";
  fs::path other = fs::path(root) / ("capscope-hop-" + std::to_string(getpid()));
  fs::create_directories(other);
  const uint64_t n = 20000;
  int cpu = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)) - 1;
  int rc =
      record("hop", "taskset -c " + std::to_string(cpu) + " " + helpers_dir() + "/cs_cgroup_hop " +
                        std::to_string(n) + " " + (other / "cgroup.procs").string());
  rmdir(other.c_str());
  ASSERT_EQ(rc, 0) << stderr_text();
  json p = json::parse(capture(capscope_binary() + " profile export hop --db " + db_));
  uint64_t setuid = 0;
  for (const auto& u : p.at("uses"))
    if (u.at("capability") == "CAP_SETUID") setuid += u.at("count").get<uint64_t>();
  EXPECT_EQ(setuid, n) << stderr_text();
}

}  // namespace
