// The YAML forms: the generic JSON <-> YAML converter (types and tricky
// strings survive), the profile export in YAML (round trip, golden shape,
// errors with file, line and field), and import telling JSON from YAML.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "advice/advice.h"
#include "advice/current_spec.h"
#include "profile/profile.h"
#include "profile/profile_json.h"
#include "profile/profile_yaml.h"
#include "util/json_yaml.h"
#include "util/yaml_tree.h"

using namespace capscope;
using nlohmann::json;
using nlohmann::ordered_json;
using profile::Profile;

namespace {

namespace fs = std::filesystem;

constexpr int kChown = 0, kSysAdmin = 21, kSysNice = 23, kNetBind = 10;
constexpr uint64_t kAbove2To53 = (1ULL << 53) + 1;  // a double cannot hold it
constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();

// Strings a careless YAML writer or reader turns into something else.
const std::vector<std::string>& tricky_strings() {
  static const std::vector<std::string> kStrings = {"-g \"daemon off;\"",
                                                    "'single'",
                                                    "a: b",
                                                    "a:b",
                                                    "#comment",
                                                    "x # y",
                                                    "",
                                                    " lead",
                                                    "trail ",
                                                    "yes",
                                                    "No",
                                                    "on",
                                                    "y",
                                                    "123",
                                                    "-20",
                                                    "+1",
                                                    "0x1F",
                                                    "0o17",
                                                    "1e3",
                                                    ".5",
                                                    ".inf",
                                                    "-.inf",
                                                    ".nan",
                                                    "1:1 /tmp/f",
                                                    "null",
                                                    "~",
                                                    "Null",
                                                    "true",
                                                    "FALSE",
                                                    "- dash",
                                                    "-",
                                                    "? q",
                                                    "[a]",
                                                    "{a: 1}",
                                                    "*alias",
                                                    "&anchor",
                                                    "!tag",
                                                    "%d",
                                                    "@at",
                                                    "`tick`",
                                                    "|",
                                                    ">",
                                                    "l1\nl2",
                                                    "tab\there",
                                                    "back\\slash",
                                                    "ünïcødé ✓",
                                                    "ctl\x01",
                                                    "  two  "};
  return kStrings;
}

util::YamlLines lines_of(const std::string& yaml) {
  util::YamlLines lines;
  util::YamlProblem problem;
  EXPECT_TRUE(util::yaml_to_json(yaml, &lines, &problem)) << problem.message;
  return lines;
}

json read_yaml(const std::string& yaml) {
  util::YamlProblem problem;
  auto j = util::yaml_to_json(yaml, nullptr, &problem);
  EXPECT_TRUE(j) << "line " << problem.line << ": " << problem.message << "\n" << yaml;
  return j.value_or(json());
}

// The same profile as web() in profile_test.cpp, whose advice the golden
// files under tests/fixtures/advice show.
Profile web() {
  Profile p;
  p.name = "web";
  p.subject = "command: nginx";
  p.runs = 1;
  p.recorded_ns = 2'500'000'000;
  auto add = [&](int cap, bool granted, bool audit, uint64_t count, const char* syscall,
                 const char* binary, const char* args) {
    profile::Observation o;
    o.key = {cap, granted, audit};
    o.count = count;
    o.first_ns = 1000;
    o.last_ns = 2000;
    o.syscall = syscall;
    o.binary = binary;
    o.args = args;
    p.add(o);
  };
  add(kChown, true, true, 3, "fchownat", "/usr/bin/chown", "1:1 /tmp/f");
  add(kSysAdmin, true, false, 40, "mmap", "/usr/sbin/nginx", "");
  add(kSysNice, false, true, 2, "setpriority", "/usr/bin/nice", "-n -20 true");
  return p;
}

// Every string field tricky, times past 2^53, zero counts, full held sets.
Profile tricky() {
  Profile p;
  p.name = "yes";
  p.subject = "command: nginx -g \"daemon off;\" # 'quoted' : ünï";
  p.runs = 0;
  p.recorded_ns = 0;
  p.first_run_ns = kAbove2To53;
  p.last_run_ns = kMaxU64;
  p.held.caps.effective = (1ULL << kChown) | (1ULL << 40);
  p.held.caps.bounding = (1ULL << 41) - 1;
  p.held.ran_as_root = true;
  p.held.no_new_privs = true;
  profile::UseStats s;
  s.count = 0;
  s.first_ns = kAbove2To53;
  s.last_ns = kMaxU64 - 1;
  for (const auto& t : tricky_strings()) {
    s.syscalls[t.empty() ? "empty" : t] = 0;
    s.binaries["/bin/" + t] = {kAbove2To53, t};
  }
  s.binaries["yes"] = {0, "123"};
  p.uses[{kNetBind, true, true}] = s;
  p.uses[{kSysNice, false, false}] = {1, 0, 0, {{"null", 1}}, {{"123", {1, "null"}}}};
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

std::string import_error(const std::string& yaml) {
  std::string error;
  EXPECT_FALSE(profile::from_export_yaml(yaml, "p.yaml", &error)) << yaml;
  return error;
}

// A small valid profile in YAML; line numbers below count from its first line.
const char* kSmallProfile =
    "capscope_profile: 1\n"           // 1
    "name: x\n"                       // 2
    "runs: 1\n"                       // 3
    "held:\n"                         // 4
    "  effective: [CAP_CHOWN]\n"      // 5
    "uses:\n"                         // 6
    "  - capability: CAP_CHOWN\n"     // 7
    "    verdict: granted\n"          // 8
    "    audit: true\n"               // 9
    "    count: 1\n"                  // 10
    "    first_seen_ns: 5\n"          // 11
    "    binaries:\n"                 // 12
    "      - path: /usr/bin/chown\n"  // 13
    "        count: 1\n";             // 14

std::string with(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST(JsonYaml, ScalarTypesRoundTrip) {
  ordered_json j = {{"unsigned", kMaxU64},
                    {"above_2_53", kAbove2To53},
                    {"negative", std::numeric_limits<int64_t>::min()},
                    {"zero", 0U},
                    {"float", 0.1},
                    {"whole_float", 1.0},
                    {"big_float", 1e300},
                    {"negative_float", -2.5},
                    {"yes_bool", true},
                    {"no_bool", false},
                    {"nothing", nullptr},
                    {"empty_list", ordered_json::array()},
                    {"empty_map", ordered_json::object()},
                    {"nested", {{"list", {1, "1", true, "true", nullptr, "null"}}}}};
  json back = read_yaml(util::json_to_yaml(j));
  EXPECT_EQ(back, json::parse(j.dump()));
  EXPECT_TRUE(back["unsigned"].is_number_unsigned());
  EXPECT_EQ(back["above_2_53"].get<uint64_t>(), kAbove2To53);
  EXPECT_TRUE(back["whole_float"].is_number_float());
  EXPECT_TRUE(back["nested"]["list"][1].is_string());
}

TEST(JsonYaml, TrickyStringsComeBackAsStrings) {
  ordered_json j = ordered_json::object();
  ordered_json list = ordered_json::array();
  for (const auto& s : tricky_strings()) {
    j["k" + std::to_string(list.size())] = s;
    list.push_back(s);
  }
  j["as_keys"] = ordered_json::object();
  for (const auto& s : tricky_strings()) j["as_keys"][s] = s;
  j["list"] = list;
  std::string yaml = util::json_to_yaml(j);
  EXPECT_EQ(read_yaml(yaml), json::parse(j.dump())) << yaml;
}

TEST(JsonYaml, QuotesWhatAReaderWouldTakeForAnotherType) {
  std::string yaml = util::json_to_yaml(
      {{"a", "yes"}, {"b", "123"}, {"c", "null"}, {"d", ""}, {"e", "1:1 /tmp/f"}, {"f", "on"}});
  EXPECT_EQ(yaml, "a: \"yes\"\nb: \"123\"\nc: \"null\"\nd: \"\"\ne: \"1:1 /tmp/f\"\nf: \"on\"\n");
  // Ordinary strings stay plain.
  EXPECT_EQ(util::json_to_yaml({{"path", "/usr/bin/chown"}, {"args", "-n -20 true"}}),
            "path: /usr/bin/chown\nargs: -n -20 true\n");
}

TEST(JsonYaml, PlainScalarsFollowTheCoreSchema) {
  json j = read_yaml(
      "dec: 42\nneg: -7\nplus: +3\nhex: 0x1F\noct: 0o17\nflt: 1.5\nexp: 1e3\ninf: -.inf\n"
      "t: True\nnul: ~\nempty:\nyes_word: yes\nquoted: '12'\ndquoted: \"true\"\n"
      "tagged: !!str 12\ntagged_int: !!int \"12\"\nhuge: 18446744073709551616\n");
  EXPECT_EQ(j["dec"], 42U);
  EXPECT_TRUE(j["dec"].is_number_unsigned());
  EXPECT_EQ(j["neg"], -7);
  EXPECT_EQ(j["plus"], 3U);
  EXPECT_EQ(j["hex"], 31U);
  EXPECT_EQ(j["oct"], 15U);
  EXPECT_EQ(j["flt"], 1.5);
  EXPECT_TRUE(j["exp"].is_number_float());
  EXPECT_EQ(j["inf"], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(j["t"], true);
  EXPECT_TRUE(j["nul"].is_null());
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_EQ(j["yes_word"], "yes");  // YAML 1.2: a string
  EXPECT_EQ(j["quoted"], "12");
  EXPECT_EQ(j["dquoted"], "true");
  EXPECT_EQ(j["tagged"], "12");
  EXPECT_EQ(j["tagged_int"], 12U);
  EXPECT_TRUE(j["huge"].is_number_float());
}

TEST(JsonYaml, ProblemsNameTheLine) {
  util::YamlProblem problem;
  EXPECT_FALSE(util::yaml_to_json("a: 1\nb: [1, 2\nc: 3\n", nullptr, &problem));
  EXPECT_EQ(problem.line, 3);
  EXPECT_FALSE(util::yaml_to_json("a: 1\nb: 2\na: 3\n", nullptr, &problem));
  EXPECT_EQ(problem.line, 3);
  EXPECT_NE(problem.message.find("duplicate key \"a\""), std::string::npos) << problem.message;
  EXPECT_FALSE(util::yaml_to_json("a: 1\nb: !!int x\n", nullptr, &problem));
  EXPECT_EQ(problem.line, 2);
  EXPECT_NE(problem.message.find("\"x\" is not a int"), std::string::npos) << problem.message;
  EXPECT_FALSE(util::yaml_to_json("a: !custom x\n", nullptr, &problem));
  EXPECT_NE(problem.message.find("unsupported tag !custom"), std::string::npos) << problem.message;
  EXPECT_FALSE(util::yaml_to_json("? [a]\n: 1\n", nullptr, &problem));
  EXPECT_NE(problem.message.find("key"), std::string::npos) << problem.message;
}

// Aliases of aliases: ten levels of ten would be ten billion values.
TEST(JsonYaml, AliasExpansionIsBounded) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 10; ++i) {
    text += fmt::format("a{}: &a{} [", i, i);
    for (int j = 0; j < 10; ++j) text += fmt::format("{}*a{}", j ? ", " : "", i - 1);
    text += "]\n";
  }
  util::YamlProblem problem;
  EXPECT_FALSE(util::yaml_to_json(text, nullptr, &problem));
  EXPECT_NE(problem.message.find("too many values"), std::string::npos) << problem.message;
}

TEST(JsonYaml, LinesOfValuesAndTheirNearestParent) {
  util::YamlLines lines = lines_of(kSmallProfile);
  EXPECT_EQ(util::line_of(lines, ""), 1);
  EXPECT_EQ(util::line_of(lines, "/runs"), 3);
  EXPECT_EQ(util::line_of(lines, "/held/effective/0"), 5);
  EXPECT_EQ(util::line_of(lines, "/uses/0"), 7);
  EXPECT_EQ(util::line_of(lines, "/uses/0/count"), 10);
  EXPECT_EQ(util::line_of(lines, "/uses/0/binaries/0/count"), 14);
  EXPECT_EQ(util::line_of(lines, "/uses/0/missing"), 7);  // the object it is missing from
}

TEST(ProfileYaml, RoundTripsExactly) {
  Profile p = tricky();
  std::string yaml = profile::to_export_yaml(p);
  std::string error;
  auto back = profile::from_export_yaml(yaml, "p.yaml", &error);
  ASSERT_TRUE(back) << error << "\n" << yaml;
  EXPECT_EQ(profile::to_export_json(*back), profile::to_export_json(p));
  EXPECT_EQ(back->name, "yes");
  EXPECT_EQ(back->first_run_ns, kAbove2To53);
  EXPECT_EQ(back->last_run_ns, kMaxU64);
  const auto& use = back->uses.at({kNetBind, true, true});
  EXPECT_EQ(use.count, 0U);
  EXPECT_EQ(use.binaries.at("yes").sample_args, "123");
  EXPECT_EQ(use.binaries.at("/bin/-g \"daemon off;\"").sample_args, "-g \"daemon off;\"");
  EXPECT_EQ(use.binaries.at("/bin/-g \"daemon off;\"").count, kAbove2To53);
}

TEST(ProfileYaml, GoldenShape) {
  expect_golden("web.profile.yaml", profile::to_export_yaml(web()));
}

// record -o yaml: the JSON report (the advice, with its add and drop lists)
// through the same converter.
TEST(ProfileYaml, ReportYamlIsTheJsonReport) {
  Profile p = web();
  std::string report = advice::render(advice::advise(p), p, advice::Format::Json);
  std::string yaml = util::json_to_yaml(ordered_json::parse(report));
  EXPECT_EQ(read_yaml(yaml), json::parse(report));
  expect_golden("web.report.yaml", yaml);
}

TEST(ProfileYaml, CarriesTheSameDocumentAsJson) {
  Profile p = tricky();
  std::string yaml = profile::to_export_yaml(p);
  EXPECT_EQ(read_yaml(yaml), json::parse(profile::to_export_json(p).dump()));
}

TEST(ProfileYaml, JsonAndYamlImportsAreEqual) {
  Profile p = tricky();
  std::string error;
  auto from_json = profile::from_export_text(profile::to_export_json(p).dump(2), "p.json", &error);
  ASSERT_TRUE(from_json) << error;
  auto from_yaml = profile::from_export_text(profile::to_export_yaml(p), "p.yaml", &error);
  ASSERT_TRUE(from_yaml) << error;
  EXPECT_EQ(profile::to_export_json(*from_json), profile::to_export_json(*from_yaml));
  // A YAML flow mapping starts with '{' too, and is not JSON.
  auto flow = profile::from_export_text("{capscope_profile: 1, name: f, runs: 1, uses: []}",
                                        "p.yaml", &error);
  ASSERT_TRUE(flow) << error;
  EXPECT_EQ(flow->name, "f");
}

TEST(ProfileYaml, ErrorsNameFileLineAndField) {
  EXPECT_EQ(import_error(with(kSmallProfile, "capability: CAP_CHOWN", "capability: CAP_NOPE")),
            "p.yaml:7: uses[0]: unknown capability \"CAP_NOPE\"");
  EXPECT_EQ(import_error(with(kSmallProfile, "effective: [CAP_CHOWN]", "effective: [CAP_NOPE]")),
            "p.yaml:5: held.effective: unknown capability \"CAP_NOPE\"");
  EXPECT_EQ(import_error(with(kSmallProfile, "capscope_profile: 1", "capscope_profile: 2")),
            "p.yaml:1: profile format version 2 is not one this capscope reads (1)");
  EXPECT_EQ(import_error(with(kSmallProfile, "    count: 1\n", "")),
            "p.yaml:7: uses[0]: missing field \"count\"");
  EXPECT_EQ(import_error(with(kSmallProfile, "count: 1\n    first", "count: \"1\"\n    first")),
            "p.yaml:10: uses[0]: field \"count\" has the wrong type");
  EXPECT_EQ(import_error(with(kSmallProfile, "first_seen_ns: 5", "first_seen_ns: soon")),
            "p.yaml:11: uses[0]: field \"first_seen_ns\" has the wrong type");
  EXPECT_EQ(import_error(with(kSmallProfile, "        count: 1", "        count: -1")),
            "p.yaml:14: uses[0].binaries[0]: field \"count\" has the wrong type");
  EXPECT_EQ(import_error(with(kSmallProfile, "audit: true", "audit: yes")),
            "p.yaml:9: uses[0]: field \"audit\" has the wrong type");
  EXPECT_EQ(import_error("- 1\n"), "p.yaml:1: not a capscope profile (expected a YAML mapping)");
  EXPECT_EQ(import_error("a: [1\nb: 2\n"), "p.yaml:2: not YAML: end of sequence flow not found");
}

TEST(ProfileYaml, SmallProfileImports) {
  std::string error;
  auto p = profile::from_export_yaml(kSmallProfile, "p.yaml", &error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->needed(), (std::vector<int>{kChown}));
  EXPECT_EQ(p->uses.at({kChown, true, true}).first_ns, 5U);
}

// The JSON import shares these checks: an optional field of the wrong type is
// an error naming it (it used to escape as a json::type_error).
TEST(ProfileExport, IntegersOutOfRangeAreErrorsNotWrapped) {
  std::string error;
  auto big_version = nlohmann::json::parse(
      R"({"capscope_profile": 4294967297, "name": "x", "runs": 1, "uses": []})");
  EXPECT_FALSE(profile::from_export_json(big_version, &error));
  EXPECT_NE(error.find("capscope_profile"), std::string::npos) << error;
  auto big_uid = nlohmann::json::parse(
      R"({"capscope_profile": 1, "name": "x", "runs": 1, "uses": [],
          "privileged_binaries": [{"path": "/b", "owner_uid": 4294967297}]})");
  EXPECT_FALSE(profile::from_export_json(big_uid, &error));
  EXPECT_NE(error.find("owner_uid"), std::string::npos) << error;
}

TEST(ProfileExport, OptionalFieldOfTheWrongTypeIsAnError) {
  std::string error;
  EXPECT_FALSE(profile::from_export_text(
      R"({"capscope_profile": 1, "name": "x", "runs": 1, "uses": [{"capability": "CAP_CHOWN",
          "verdict": "granted", "audit": true, "count": 1, "first_seen_ns": "soon"}]})",
      "p.json", &error));
  EXPECT_EQ(error, "p.json: uses[0]: field \"first_seen_ns\" has the wrong type");
}

// Debian 12's yaml-cpp loops forever in its loaders on these (util/yaml_tree.h): each
// reader of YAML answers with an error instead, at once.
TEST(YamlReaders, InputsThatLoopYamlCppAreErrors) {
  for (std::string looping : {"&a,", ",\n", "!t,"}) {
    util::YamlProblem problem;
    EXPECT_FALSE(util::yaml_to_json(looping, nullptr, &problem)) << looping;
    EXPECT_NE(problem.message.find("cannot go on"), std::string::npos) << problem.message;

    std::string error;
    EXPECT_FALSE(advice::parse_current_spec(looping, "spec.yaml", {}, &error)) << looping;
    EXPECT_NE(error.find("not valid YAML"), std::string::npos) << error;
  }
  EXPECT_EQ(util::yaml_cpp_would_hang("a: [1, 2]\nb: {c: d}\n"), "");
  EXPECT_EQ(util::yaml_cpp_would_hang("a: [1, 2\n"), "") << "a plain error is the loader's";
}
