#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "advice/advice.h"
#include "profile/profile.h"
#include "profile/profile_json.h"
#include "store/profile_store.h"

using namespace capscope;
using profile::Observation;
using profile::Profile;

namespace {

namespace fs = std::filesystem;

constexpr int kChown = 0, kSysAdmin = 21, kSysNice = 23, kNetBind = 10, kSysModule = 16,
              kNetRaw = 13;

Observation obs(int cap, bool granted, bool audit, uint64_t count, std::string syscall,
                std::string binary, std::string args = "") {
  Observation o;
  o.key = {cap, granted, audit};
  o.count = count;
  o.first_ns = 1000;
  o.last_ns = 2000;
  o.syscall = std::move(syscall);
  o.binary = std::move(binary);
  o.args = std::move(args);
  return o;
}

Profile web() {
  Profile p;
  p.name = "web";
  p.subject = "command: nginx";
  p.runs = 1;
  p.recorded_ns = 2'500'000'000;
  p.add(obs(kChown, true, true, 3, "fchownat", "/usr/bin/chown", "1:1 /tmp/f"));
  p.add(obs(kSysAdmin, true, false, 40, "mmap", "/usr/sbin/nginx"));
  p.add(obs(kSysNice, false, true, 2, "setpriority", "/usr/bin/nice", "-n -20 true"));
  // ping ran with its file capability but did not need to raise it: it ran as root.
  profile::PrivilegedBinary ping;
  ping.file.caps = FileCaps{1ULL << kNetRaw, 0, true, 0};
  ping.execs = 2;
  p.privileged_binaries["/usr/bin/ping"] = ping;
  return p;
}

// A web server run as a non-root user that needed to bind a low port.
Profile non_root_server() {
  Profile p;
  p.name = "srv";
  p.runs = 1;
  p.held.ran_as_user = true;
  p.add(obs(kNetBind, true, true, 1, "bind", "/usr/bin/srv"));
  return p;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compares with tests/fixtures/advice/<name>; CAPSCOPE_UPDATE_GOLDEN=1 rewrites it.
void expect_golden(const std::string& name, const std::string& got) {
  fs::path file = fs::path(CAPSCOPE_FIXTURES) / "advice" / name;
  if (std::getenv("CAPSCOPE_UPDATE_GOLDEN") != nullptr) std::ofstream(file) << got;
  EXPECT_EQ(got, read_file(file)) << "golden " << file;
}

TEST(Profile, NeedsAreAuditedChecksGrantedOrDenied) {
  Profile p = web();
  EXPECT_EQ(p.needed(), (std::vector<int>{kChown, kSysNice}));
  EXPECT_EQ(p.denied_needs(), (std::vector<int>{kSysNice}));
  EXPECT_EQ(p.probes_only(), (std::vector<int>{kSysAdmin}));
}

TEST(Profile, ProbeOfANeededCapabilityIsNotAlsoListedAsProbeOnly) {
  Profile p = web();
  p.add(obs(kChown, true, false, 1, "mmap", "/usr/sbin/nginx"));
  EXPECT_EQ(p.probes_only(), (std::vector<int>{kSysAdmin}));
}

TEST(Profile, MergeUnitesCapabilitiesAndSumsCounts) {
  Profile a = web();
  Profile b;
  b.name = "web";
  b.runs = 1;
  b.recorded_ns = 500'000'000;
  b.add(obs(kChown, true, true, 2, "chown", "/usr/bin/chown", "0:0 /x"));
  b.add(obs(kNetBind, true, true, 1, "bind", "/usr/sbin/nginx"));
  a.merge(b);
  EXPECT_EQ(a.runs, 2u);
  EXPECT_EQ(a.recorded_ns, 3'000'000'000u);
  EXPECT_EQ(a.needed(), (std::vector<int>{kChown, kNetBind, kSysNice}));
  const auto& chown = a.uses.at({kChown, true, true});
  EXPECT_EQ(chown.count, 5u);
  EXPECT_EQ(chown.syscalls.at("fchownat"), 3u);
  EXPECT_EQ(chown.syscalls.at("chown"), 2u);
  EXPECT_EQ(chown.binaries.at("/usr/bin/chown").count, 5u);
  EXPECT_EQ(chown.binaries.at("/usr/bin/chown").sample_args, "1:1 /tmp/f");  // the first kept
}

TEST(Advice, PssLevels) {
  EXPECT_EQ(advice::pss_level_for({}), advice::PssLevel::Restricted);
  EXPECT_EQ(advice::pss_level_for({kNetBind}), advice::PssLevel::Restricted);
  EXPECT_EQ(advice::pss_level_for({kNetBind, kChown}), advice::PssLevel::Baseline);
  EXPECT_EQ(advice::pss_level_for({kChown, kSysModule}), advice::PssLevel::Privileged);
}

TEST(Advice, ProbesAreNeverAdded) {
  Profile p;
  p.name = "true";
  p.runs = 1;
  p.add(obs(kSysAdmin, true, false, 8, "mmap", "/usr/bin/true"));
  auto a = advice::advise(p);
  EXPECT_TRUE(a.add.empty());
  EXPECT_EQ(a.probes, (std::vector<int>{kSysAdmin}));
  EXPECT_EQ(advice::render(a, p, advice::Format::Docker),
            "--cap-drop=ALL --security-opt=no-new-privileges\n");
}

// A set-user-ID binary that raised the euid of a process: no_new_privs would
// break it, so the advice keeps escalation allowed and names the binary.
TEST(Advice, ARaisingExecKeepsEscalationAllowed) {
  Profile p = web();
  profile::PrivilegedBinary su;
  su.file.setuid = true;
  su.execs = 3;
  su.raised = 2;
  p.privileged_binaries["/usr/bin/su"] = su;
  auto a = advice::advise(p);
  EXPECT_FALSE(a.escalation.can_forbid());
  EXPECT_NE(a.escalation.evidence.find("/usr/bin/su raised its privileges through exec 2 times "
                                       "(set-user-ID uid 0)"),
            std::string::npos)
      << a.escalation.evidence;
  std::string k8s = advice::render(a, p, advice::Format::K8s);
  EXPECT_NE(k8s.find("  allowPrivilegeEscalation: true\n"), std::string::npos) << k8s;
  EXPECT_EQ(advice::render(a, p, advice::Format::Docker).find("no-new-privileges"),
            std::string::npos);
  EXPECT_EQ(advice::render(a, p, advice::Format::Systemd).find("NoNewPrivileges"),
            std::string::npos);
}

TEST(Advice, NoRaisingExecLetsEscalationBeForbidden) {
  auto a = advice::advise(web());
  EXPECT_TRUE(a.escalation.can_forbid()) << a.escalation.evidence;
  EXPECT_NE(advice::render(a, web(), advice::Format::K8s).find("allowPrivilegeEscalation: false"),
            std::string::npos);
}

// Non-root: Kubernetes sets no ambient capabilities, so add: alone would do
// nothing; the advice gives file capabilities (or the port sysctl) instead.
TEST(Advice, NonRootWorkloadsGetWhatActuallyWorks) {
  Profile p = non_root_server();
  auto a = advice::advise(p);
  ASSERT_EQ(a.add.size(), 1u);
  EXPECT_TRUE(a.escalation.needs_file_caps);
  EXPECT_FALSE(a.escalation.can_forbid());
  // "restricted" requires allowPrivilegeEscalation: false: this needs "baseline".
  EXPECT_EQ(a.pss, advice::PssLevel::Baseline);
  std::string plan = fmt::format("{}", fmt::join(a.non_root_plan, "\n"));
  EXPECT_NE(plan.find("  setcap cap_net_bind_service+ep /usr/bin/srv"), std::string::npos) << plan;
  EXPECT_NE(plan.find("net.ipv4.ip_unprivileged_port_start"), std::string::npos) << plan;
  std::string k8s = advice::render(a, p, advice::Format::K8s);
  EXPECT_NE(k8s.find("# it ran as a non-root user"), std::string::npos) << k8s;
  EXPECT_NE(k8s.find("allowPrivilegeEscalation: true"), std::string::npos) << k8s;
  // systemd's ambient set needs no file capabilities, so no_new_privs is fine there.
  std::string unit = advice::render(a, p, advice::Format::Systemd);
  EXPECT_NE(unit.find("AmbientCapabilities=CAP_NET_BIND_SERVICE\nNoNewPrivileges=yes\n"),
            std::string::npos)
      << unit;
}

TEST(Advice, NonRootBinaryThatAlreadyCarriesItsCapabilitiesIsSaidSo) {
  Profile p = non_root_server();
  p.add(obs(kChown, true, true, 1, "chown", "/usr/bin/srv"));
  profile::PrivilegedBinary srv;
  srv.file.caps = FileCaps{(1ULL << kNetBind) | (1ULL << kChown), 0, true, 0};
  srv.execs = srv.raised = 1;
  p.privileged_binaries["/usr/bin/srv"] = srv;
  auto a = advice::advise(p);
  std::string plan = fmt::format("{}", fmt::join(a.non_root_plan, "\n"));
  EXPECT_NE(plan.find("/usr/bin/srv already carries cap_chown,cap_net_bind_service+ep"),
            std::string::npos)
      << plan;
  EXPECT_EQ(plan.find("ip_unprivileged_port_start"), std::string::npos) << plan;  // two caps
  EXPECT_TRUE(a.escalation.raised_by_exec);
}

TEST(Advice, DeniedNeedsSayTheWorkloadTriedAndFailed) {
  auto a = advice::advise(web());
  ASSERT_EQ(a.add.size(), 2u);
  EXPECT_FALSE(a.add[0].denied);
  EXPECT_TRUE(a.add[1].denied);
  EXPECT_NE(a.add[1].evidence.find("setpriority by /usr/bin/nice"), std::string::npos);
  EXPECT_NE(a.add[1].evidence.find("tried and failed"), std::string::npos);
}

TEST(Advice, Formats) {
  Profile p = web();
  auto a = advice::advise(p);
  expect_golden("web.k8s.yaml", advice::render(a, p, advice::Format::K8s));
  expect_golden("web.docker.txt", advice::render(a, p, advice::Format::Docker));
  expect_golden("web.json", advice::render(a, p, advice::Format::Json));
  expect_golden("web.txt", advice::render(a, p, advice::Format::Text));
  expect_golden("web.compose.yaml", advice::render(a, p, advice::Format::Compose));
  expect_golden("web.systemd.conf", advice::render(a, p, advice::Format::Systemd));
  expect_golden("web.setcap.sh", advice::render(a, p, advice::Format::Setcap));
}

TEST(Advice, ParseFormat) {
  advice::Format f{};
  EXPECT_TRUE(advice::parse_format("kubernetes", &f));
  EXPECT_EQ(f, advice::Format::K8s);
  EXPECT_TRUE(advice::parse_format("podman", &f));
  EXPECT_EQ(f, advice::Format::Docker);
  EXPECT_FALSE(advice::parse_format("xml", &f));
}

TEST(ProfileExport, RoundTrips) {
  Profile p = web();
  p.held.caps.effective = (1ULL << kChown) | (1ULL << 34);
  p.held.ran_as_user = true;
  std::string error;
  auto back =
      profile::from_export_json(nlohmann::json::parse(profile::to_export_json(p).dump()), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->name, "web");
  EXPECT_EQ(back->runs, 1u);
  EXPECT_EQ(back->held.caps.effective, p.held.caps.effective);
  EXPECT_TRUE(back->held.ran_as_user);
  ASSERT_EQ(back->uses.size(), p.uses.size());
  for (const auto& [k, s] : p.uses) {
    const auto& b = back->uses.at(k);
    EXPECT_EQ(b.count, s.count);
    EXPECT_EQ(b.syscalls, s.syscalls);
    EXPECT_EQ(b.binaries.size(), s.binaries.size());
  }
}

TEST(ProfileExport, PrivilegedBinariesRoundTrip) {
  Profile p = web();
  profile::PrivilegedBinary su;
  su.file = {true, false, 0, 0, FileCaps{1ULL << kChown, 1ULL << kSysNice, false, 1000}};
  su.execs = 4;
  su.raised = 3;
  su.held_back = 1;
  p.privileged_binaries["/usr/bin/su"] = su;
  std::string error;
  auto back =
      profile::from_export_json(nlohmann::json::parse(profile::to_export_json(p).dump()), &error);
  ASSERT_TRUE(back) << error;
  ASSERT_EQ(back->privileged_binaries.size(), 2u);
  const auto& b = back->privileged_binaries.at("/usr/bin/su");
  EXPECT_TRUE(b.file.setuid);
  ASSERT_TRUE(b.file.caps);
  EXPECT_EQ(b.file.caps->permitted, 1ULL << kChown);
  EXPECT_EQ(b.file.caps->inheritable, 1ULL << kSysNice);
  EXPECT_EQ(b.file.caps->rootid, 1000u);
  EXPECT_EQ(b.execs, 4u);
  EXPECT_EQ(b.raised, 3u);
  EXPECT_EQ(b.held_back, 1u);
  EXPECT_FALSE(back->privileged_binaries.at("/usr/bin/ping").file.setuid);
}

TEST(ProfileExport, ErrorsNameTheField) {
  std::string error;
  using nlohmann::json;
  EXPECT_FALSE(profile::from_export_json(json::parse("[1]"), &error));
  EXPECT_NE(error.find("not a capscope profile"), std::string::npos) << error;
  EXPECT_FALSE(profile::from_export_json(json::parse(R"({"capscope_profile": 9})"), &error));
  EXPECT_NE(error.find("version 9"), std::string::npos) << error;
  auto bad_cap = json::parse(R"({"capscope_profile":1,"name":"x","runs":1,"uses":[
      {"capability":"CAP_CHOWN","verdict":"granted","audit":true,"count":1},
      {"capability":"CAP_NOPE","verdict":"granted","audit":true,"count":1}]})");
  EXPECT_FALSE(profile::from_export_json(bad_cap, &error));
  EXPECT_NE(error.find("uses[1]: unknown capability \"CAP_NOPE\""), std::string::npos) << error;
  auto no_count = json::parse(R"({"capscope_profile":1,"name":"x","runs":1,"uses":[
      {"capability":"CAP_CHOWN","verdict":"granted","audit":true}]})");
  EXPECT_FALSE(profile::from_export_json(no_count, &error));
  EXPECT_NE(error.find("uses[0]: missing field \"count\""), std::string::npos) << error;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("capscope-store-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StoreTest, SaveLoadMergesRuns) {
  std::string error;
  auto db = store::ProfileStore::open((dir_ / "p.db").string(), &error);
  ASSERT_TRUE(db) << error;
  ASSERT_TRUE(db->merge_save(web(), &error)) << error;
  ASSERT_TRUE(db->merge_save(web(), &error)) << error;
  auto p = db->load("web", &error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->runs, 2u);
  EXPECT_EQ(p->subject, "command: nginx");
  EXPECT_EQ(p->uses.at({kChown, true, true}).count, 6u);
  EXPECT_EQ(p->uses.at({kSysNice, false, true}).binaries.at("/usr/bin/nice").sample_args,
            "-n -20 true");
  EXPECT_EQ(p->needed(), web().needed());
  ASSERT_EQ(p->privileged_binaries.size(), 1u);
  const auto& ping = p->privileged_binaries.at("/usr/bin/ping");
  EXPECT_EQ(ping.execs, 4u);  // two runs of two
  ASSERT_TRUE(ping.file.caps);
  EXPECT_EQ(ping.file.caps->permitted, 1ULL << kNetRaw);
  EXPECT_TRUE(ping.file.caps->effective);
  auto all = db->list(&error);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].needed, (std::vector<int>{kChown, kSysNice}));
  EXPECT_TRUE(db->remove("web", &error)) << error;
  EXPECT_FALSE(db->load("web", &error).has_value());
  EXPECT_TRUE(error.empty()) << error;
}

TEST_F(StoreTest, UnknownProfileIsNotAnError) {
  std::string error;
  auto db = store::ProfileStore::open((dir_ / "p.db").string(), &error);
  ASSERT_TRUE(db) << error;
  EXPECT_FALSE(db->load("nope", &error).has_value());
  EXPECT_TRUE(error.empty()) << error;
  EXPECT_FALSE(db->remove("nope", &error));
}

TEST_F(StoreTest, CorruptFileSaysSo) {
  fs::path f = dir_ / "corrupt.db";
  std::ofstream(f) << std::string(8192, 'x');
  std::string error;
  auto db = store::ProfileStore::open(f.string(), &error);
  EXPECT_FALSE(db);
  EXPECT_NE(error.find("not a capscope database or is corrupt"), std::string::npos) << error;
  EXPECT_NE(error.find("--db"), std::string::npos) << error;
}

TEST_F(StoreTest, LockedDatabaseSaysSoAndKeepsItsState) {
  std::string error;
  std::string path = (dir_ / "p.db").string();
  auto a = store::ProfileStore::open(path, &error);
  auto b = store::ProfileStore::open(path, &error);
  ASSERT_TRUE(a && b) << error;
  ASSERT_TRUE(a->merge_save(web(), &error)) << error;
  // Another writer holds the write lock for longer than the busy timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_FALSE(b->merge_save(web(), &error));
  EXPECT_NE(error.find("locked"), std::string::npos) << error;
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  auto p = a->load("web", &error);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->runs, 1u);
}

}  // namespace
