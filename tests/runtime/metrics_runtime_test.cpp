// The metrics endpoint as a real HTTP server: what it serves, how it fails to bind,
// and Debian's own Prometheus server scraping it (the series, their values and escaped
// labels as Prometheus parsed them, `up`), plus `promtool check metrics`. No root
// needed; it lives here because it runs real servers.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "helpers.h"
#include "metrics/agent_metrics.h"
#include "metrics/http_server.h"
#include "metrics/registry.h"

using namespace capscope::metrics;
using capscope::runtime_test::capture;
using capscope::runtime_test::read_file;
using capscope::runtime_test::spawn;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct HttpResponse {
  long status = 0;  // 0: no response (error says why)
  std::string body;
  std::string content_type;
  std::string error;
};

size_t append_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

// One GET on `curl` (reused handles keep their connection alive).
HttpResponse http_get(CURL* curl, const std::string& url) {
  HttpResponse r;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    r.error = curl_easy_strerror(rc);
    return r;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  const char* type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) r.content_type = type;
  return r;
}

HttpResponse http_get(const std::string& url) {
  CurlPtr curl(curl_easy_init());
  return http_get(curl.get(), url);
}

std::string url_escape(const std::string& s) {
  CurlPtr curl(curl_easy_init());
  char* e = curl_easy_escape(curl.get(), s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  return out;
}

// A port nobody listens on now (the kernel's choice for port 0), for Prometheus.
uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "capscope-metrics-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  while (lines-- > 0 && pos > 0) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos);
}

// Debian's Prometheus server, scraping one target every second; killed on destruction
// whatever happened in the test.
class PrometheusServer {
 public:
  PrometheusServer(const fs::path& binary, const fs::path& dir) : binary_(binary), dir_(dir) {}
  ~PrometheusServer() { kill_and_wait(); }
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  void start(const std::string& target) {
    std::ofstream(dir_ / "prometheus.yml") << "global:\n"
                                              "  scrape_interval: 1s\n"
                                              "  evaluation_interval: 1s\n"
                                              "scrape_configs:\n"
                                              "  - job_name: capscope\n"
                                              "    static_configs:\n"
                                              "      - targets: ['"
                                           << target << "']\n";
    port_ = free_port();
    pid_ = spawn({binary_.string(), "--config.file=" + (dir_ / "prometheus.yml").string(),
                  "--storage.tsdb.path=" + (dir_ / "data").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
                 log_path());
  }

  // The instant-query result vector for `promql` (empty when none yet or on error).
  nlohmann::json query(const std::string& promql) const {
    HttpResponse r = http_get(api() + "/api/v1/query?query=" + url_escape(promql));
    if (r.status != 200) return nlohmann::json::array();
    auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (doc.is_discarded() || doc.value("status", "") != "success") return nlohmann::json::array();
    return doc["data"]["result"];
  }

  // Polls `promql` until it has a result, `timeout` passes or Prometheus dies.
  nlohmann::json wait_for(const std::string& promql, std::chrono::seconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline && running()) {
      nlohmann::json result = query(promql);
      if (!result.empty()) return result;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return nlohmann::json::array();
  }

  bool running() {
    if (pid_ <= 0) return false;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }
  // What to show when a wait fails: the target's scrape state (a parse error of our
  // output shows up there, not in the log) and the end of Prometheus's log.
  [[nodiscard]] std::string diagnostics() const {
    std::string out = "\n--- prometheus targets ---\n";
    HttpResponse targets = http_get(api() + "/api/v1/targets");
    auto doc = nlohmann::json::parse(targets.body, nullptr, false);
    if (!doc.is_discarded() && doc.contains("data")) {
      for (const auto& t : doc["data"]["activeTargets"])
        out += t.value("scrapeUrl", "?") + " health=" + t.value("health", "?") +
               " lastError=" + t.value("lastError", "") + "\n";
    } else {
      out += "(no answer: " + targets.error + ")\n";
    }
    return out + "--- prometheus log (last lines) ---\n" + tail(read_file(log_path()), 25);
  }

 private:
  [[nodiscard]] fs::path log_path() const { return dir_ / "prometheus.log"; }
  [[nodiscard]] std::string api() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void kill_and_wait() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {  // 10 s to shut its TSDB down cleanly
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  fs::path binary_;
  fs::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

std::string find_program(const std::string& name) {
  return capture("command -v " + name + " 2>/dev/null");
}

// The value of an instant-query sample, as Prometheus prints it ("7").
std::string value_of(const nlohmann::json& sample) { return sample["value"][1].get<std::string>(); }

}  // namespace

TEST(MetricsServer, ServesMetricsHealthAndNothingElse) {
  Registry registry;
  registry.counter_family("demo_total", "Demo.", {"k"}).counter({"v"}).inc(5);
  MetricsServer server(registry);
  ASSERT_EQ(server.start("127.0.0.1:0"), "");
  ASSERT_NE(server.port(), 0) << "port 0 gives the port the kernel chose";
  EXPECT_EQ(server.address(), "127.0.0.1:" + std::to_string(server.port()));
  std::string base = "http://" + server.address();

  HttpResponse metrics = http_get(base + "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics.body, registry.render());
  EXPECT_NE(metrics.body.find("demo_total{k=\"v\"} 5\n"), std::string::npos) << metrics.body;
  EXPECT_EQ(server.scrapes(), 1u);

  HttpResponse health = http_get(base + "/healthz");
  EXPECT_EQ(health.status, 200) << health.error;
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(http_get(base + "/").status, 404);
  EXPECT_EQ(http_get(base + "/metrics/x").status, 404);

  server.stop();
  server.stop();  // twice is fine
  HttpResponse after = http_get(base + "/metrics");
  EXPECT_EQ(after.status, 0) << "nothing listens after stop()";
}

TEST(MetricsServer, HealthCheckFailureIs503WithTheReason) {
  Registry registry;
  MetricsServer server(registry);
  server.set_health_check([] { return std::string("ring buffer reader stalled"); });
  ASSERT_EQ(server.start("[::1]:0"), "");
  EXPECT_EQ(server.address(), "[::1]:" + std::to_string(server.port()));
  HttpResponse health = http_get("http://" + server.address() + "/healthz");
  EXPECT_EQ(health.status, 503) << health.error;
  EXPECT_EQ(health.body, "ring buffer reader stalled\n");
}

TEST(MetricsServer, BusyPortNamesTheAddressAndTheFix) {
  Registry registry;
  MetricsServer first(registry);
  ASSERT_EQ(first.start("127.0.0.1:0"), "");
  MetricsServer second(registry);
  EXPECT_EQ(second.start(first.address()),
            first.address() +
                ": address already in use: another agent running? pass "
                "--metrics-address");
  // The first is unaffected.
  EXPECT_EQ(http_get("http://" + first.address() + "/healthz").status, 200);
}

TEST(MetricsServer, BadAddressesFailWithOneLine) {
  Registry registry;
  MetricsServer server(registry);
  std::string error = server.start("localhost");
  EXPECT_EQ(error,
            "'localhost': no port: expected HOST:PORT, e.g. "
            "127.0.0.1:2113 or [::1]:2113");
  // TEST-NET-1 (RFC 5737) is on no interface of a test machine.
  error = server.start("192.0.2.1:0");
  EXPECT_EQ(error,
            "192.0.2.1:0: address not available on this host: pass --metrics-address "
            "with a local address");
  // A failed start leaves the server startable.
  EXPECT_EQ(server.start("127.0.0.1:0"), "");
}

TEST(MetricsServer, StopsPromptlyAfterAScrapeFromAKeepAliveClient) {
  Registry registry;
  auto server = std::make_unique<MetricsServer>(registry);
  ASSERT_EQ(server->start("127.0.0.1:0"), "");
  CurlPtr curl(curl_easy_init());  // asks for keep-alive and keeps its handle open
  ASSERT_EQ(http_get(curl.get(), "http://" + server->address() + "/metrics").status, 200);
  auto begin = Clock::now();
  server.reset();  // the destructor stops and joins
  EXPECT_LT(Clock::now() - begin, std::chrono::seconds(1));
}

TEST(MetricsServer, StopWaitsBoundedForAClientThatSendsNothing) {
  Registry registry;
  auto server = std::make_unique<MetricsServer>(registry);
  ASSERT_EQ(server->start("127.0.0.1:0"), "");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a worker waits on it
  auto begin = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - begin, std::chrono::seconds(4)) << "the 2 s client timeout bounds it";
  close(fd);
}

// Restores SIGPIPE's disposition on destruction.
class SigpipeDisposition {
 public:
  explicit SigpipeDisposition(sighandler_t h) : previous_(signal(SIGPIPE, h)) {}
  ~SigpipeDisposition() { signal(SIGPIPE, previous_); }
  SigpipeDisposition(const SigpipeDisposition&) = delete;
  SigpipeDisposition& operator=(const SigpipeDisposition&) = delete;

 private:
  sighandler_t previous_;
};

TEST(MetricsServer, SurvivesScrapersThatHangUpMidResponse) {
  // A body larger than the socket buffers hold (the client's receive buffer is made
  // small), so the server is in the middle of the body when the client resets the
  // connection. SIGPIPE is at its default (cpp-httplib set it to ignored; the agent may
  // not keep that), so a write on the dead socket that raised it would end the process.
  // The server must drop the connection and go on serving.
  Registry registry;
  Family& big = registry.counter_family("demo_big_total", "x", {"i"}, 150000);
  for (int i = 0; i < 150000; ++i) big.counter({std::to_string(i)}).inc();
  MetricsServer server(registry);
  ASSERT_EQ(server.start("127.0.0.1:0"), "");
  SigpipeDisposition kills(SIG_DFL);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 3; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    char first[16];
    ASSERT_GT(read(fd, first, sizeof(first)), 0);  // the response has begun
    // Let the server fill the buffers and block in the middle of the body.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    linger reset{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(fd);
  }
  HttpResponse after = http_get("http://" + server.address() + "/healthz");
  EXPECT_EQ(after.status, 200) << after.error;
}

TEST(MetricsServer, ScrapedByARealPrometheusServer) {
  std::string prometheus = find_program("prometheus");
  if (prometheus.empty())
    GTEST_SKIP() << "Debian's prometheus package is not installed (scripts/install-deps.sh)";

  AgentMetrics metrics(/*max_check_series=*/4);
  metrics.count_check(21, true, "", "", 7);  // CAP_SYS_ADMIN denied on the host
  metrics.count_check(12, false, "shop", "deployment/we\"ird\\name", 2);
  metrics.count_check(13, false, "shop", "deployment/api");
  // The 4th series reaches the bound; the 5th label set is folded into _other_.
  metrics.count_check(7, false, "shop", "deployment/api");
  metrics.count_check(7, false, "shop", "deployment/late");
  metrics.events_exported.inc(3);
  metrics.process_cache_size.set_function([] { return 123.0; });

  MetricsServer server(metrics.registry());
  ASSERT_EQ(server.start("127.0.0.1:0"), "");
  TempDir dir;
  ASSERT_FALSE(dir.path().empty()) << "mkdtemp failed";
  PrometheusServer prom(prometheus, dir.path());
  prom.start(server.address());

  // `up` appears with the first scrape: 1 if Prometheus parsed all of it, 0 if not.
  auto timeout = std::chrono::seconds(30);
  nlohmann::json up = prom.wait_for(R"(up{job="capscope"})", timeout);
  ASSERT_EQ(up.size(), 1u) << "Prometheus never scraped us" << prom.diagnostics();
  ASSERT_EQ(value_of(up[0]), "1") << "Prometheus could not use our scrape" << prom.diagnostics();

  nlohmann::json checks = prom.wait_for(
      R"(capscope_checks_total{capability="CAP_SYS_ADMIN",verdict="denied"})", timeout);
  ASSERT_EQ(checks.size(), 1u) << "Prometheus never returned our series" << prom.diagnostics();
  EXPECT_EQ(value_of(checks[0]), "7");
  // Empty label values are absent labels to Prometheus.
  EXPECT_FALSE(checks[0]["metric"].contains("namespace")) << checks.dump();
  EXPECT_EQ(checks[0]["metric"]["job"], "capscope");

  nlohmann::json escaped = prom.query(R"(capscope_checks_total{capability="CAP_NET_ADMIN"})");
  ASSERT_EQ(escaped.size(), 1u) << escaped.dump();
  EXPECT_EQ(escaped[0]["metric"]["workload"], "deployment/we\"ird\\name");
  EXPECT_EQ(value_of(escaped[0]), "2");

  nlohmann::json other = prom.query(R"(capscope_checks_total{workload="_other_"})");
  ASSERT_EQ(other.size(), 1u) << other.dump();
  EXPECT_EQ(value_of(other[0]), "1");
  nlohmann::json overflow =
      prom.query(R"(capscope_metrics_series_overflow_total{family="capscope_checks_total"})");
  ASSERT_EQ(overflow.size(), 1u) << overflow.dump();
  EXPECT_EQ(value_of(overflow[0]), "1");

  nlohmann::json exported = prom.query(R"(capscope_events_total{kind="exported"})");
  ASSERT_EQ(exported.size(), 1u) << exported.dump();
  EXPECT_EQ(value_of(exported[0]), "3");
  nlohmann::json cache = prom.query("capscope_process_cache_size");
  ASSERT_EQ(cache.size(), 1u) << cache.dump();
  EXPECT_EQ(value_of(cache[0]), "123");
  EXPECT_GE(server.scrapes(), 1u);
}

TEST(MetricsServer, PromtoolFindsNoProblemInAScrape) {
  std::string prometheus = find_program("prometheus");
  if (prometheus.empty())
    GTEST_SKIP() << "Debian's prometheus package is not installed (scripts/install-deps.sh)";
  std::string promtool = find_program("promtool");
  ASSERT_FALSE(promtool.empty()) << "prometheus is installed but promtool is not";

  AgentMetrics metrics;
  metrics.count_check(21, true, "kube-system", "daemonset/agent");
  metrics.policy_hits("no-raw", "Post").inc();
  metrics.ringbuf_lag_bytes.set(512);
  MetricsServer server(metrics.registry());
  ASSERT_EQ(server.start("127.0.0.1:0"), "");
  HttpResponse scrape = http_get("http://" + server.address() + "/metrics");
  ASSERT_EQ(scrape.status, 200) << scrape.error;

  TempDir dir;
  fs::path file = dir.path() / "scrape.txt";
  std::ofstream(file) << scrape.body;
  std::string out = capture(promtool + " check metrics < " + file.string() + " 2>&1; echo rc=$?");
  EXPECT_EQ(out, "rc=0") << "promtool check metrics:\n" << out;
}
