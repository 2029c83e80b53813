// The metrics registry: the exact text exposition format (0.0.4), escaping, bounded
// label cardinality, gauges read at scrape time, concurrent use; the agent's families;
// parsing --metrics-address.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metrics/agent_metrics.h"
#include "metrics/listen_address.h"
#include "metrics/registry.h"

using namespace capscope::metrics;

namespace {

// The registry's render() without its trailing overflow family, for exact comparisons
// of the families a test made.
std::string without_overflow(const std::string& text) {
  return text.substr(0, text.find("# HELP " + std::string(kOverflowFamily)));
}

// The value of the sample line that starts with `series` ("name{...}"), or "" if none.
std::string sample(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series + ' ', pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      size_t start = pos + series.size() + 1;
      return text.substr(start, text.find('\n', start) - start);
    }
    pos += series.size();
  }
  return "";
}

}  // namespace

TEST(MetricsRegistry, RendersTheTextFormatExactly) {
  Registry r;
  Family& requests = r.counter_family("demo_requests_total", "Requests served.", {"code", "path"});
  requests.counter({"200", "/metrics"}).inc(3);
  requests.counter({"404", "/"}).inc();
  requests.counter({"200", "/healthz"}).inc(2);
  Gauge temp = r.gauge("demo_temperature", "A gauge without labels.");
  temp.set(21.5);
  r.counter("demo_unused_total", "Exposed as 0 before its first use.");

  EXPECT_EQ(without_overflow(r.render()),
            "# HELP demo_requests_total Requests served.\n"
            "# TYPE demo_requests_total counter\n"
            "demo_requests_total{code=\"200\",path=\"/healthz\"} 2\n"
            "demo_requests_total{code=\"200\",path=\"/metrics\"} 3\n"
            "demo_requests_total{code=\"404\",path=\"/\"} 1\n"
            "# HELP demo_temperature A gauge without labels.\n"
            "# TYPE demo_temperature gauge\n"
            "demo_temperature 21.5\n"
            "# HELP demo_unused_total Exposed as 0 before its first use.\n"
            "# TYPE demo_unused_total counter\n"
            "demo_unused_total 0\n");
}

TEST(MetricsRegistry, OverflowFamilyComesLastWithASeriesPerLabelledFamily) {
  Registry r;
  r.counter_family("a_total", "A.", {"x"});
  r.counter("b_total", "No labels: cannot overflow, so no overflow series.");
  std::string text = r.render();
  size_t overflow = text.find("# HELP capscope_metrics_series_overflow_total ");
  ASSERT_NE(overflow, std::string::npos) << text;
  EXPECT_GT(overflow, text.find("# TYPE b_total counter"));
  EXPECT_EQ(text.substr(text.find("# TYPE capscope_metrics_series_overflow_total")),
            "# TYPE capscope_metrics_series_overflow_total counter\n"
            "capscope_metrics_series_overflow_total{family=\"a_total\"} 0\n");
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value(R"(C:\dir "x")"
                               "\nnext"),
            R"(C:\\dir \"x\"\nnext)");
  EXPECT_EQ(escape_label_value("plain-ascii_é"), "plain-ascii_é");
  EXPECT_EQ(escape_help("a \\ b \"quoted\"\nline"), "a \\\\ b \"quoted\"\\nline");

  Registry r;
  r.gauge_family("demo_info", "Help with \\ and\nnewline.", {"name"}).gauge({"a\"b\\c\nd"}).set(1);
  EXPECT_EQ(without_overflow(r.render()),
            "# HELP demo_info Help with \\\\ and\\nnewline.\n"
            "# TYPE demo_info gauge\n"
            "demo_info{name=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRegistry, FormatsValuesAsPrometheusParsesThem) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(-2.5), "-2.5");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  // Shortest form that reads back to the same double.
  EXPECT_EQ(std::stod(format_value(1.0 / 3)), 1.0 / 3);
  EXPECT_EQ(std::stod(format_value(123456789012.0)), 123456789012.0);
}

TEST(MetricsRegistry, FoldsLabelSetsBeyondTheBoundIntoOther) {
  Registry r;
  Family& f = r.counter_family("demo_pods_total", "Per pod.", {"namespace", "pod"}, 2);
  f.counter({"ns", "a"}).inc();
  f.counter({"ns", "b"}).inc();
  Counter c = f.counter({"ns", "c"});
  Counter d = f.counter({"ns", "d"});
  c.inc(5);
  d.inc(7);
  f.counter({"ns", "a"}).inc(10);  // an existing series still gets its own counts

  EXPECT_EQ(f.series_count(), 3u) << "two real series and _other_";
  std::string text = r.render();
  EXPECT_EQ(sample(text, R"(demo_pods_total{namespace="ns",pod="a"})"), "11");
  EXPECT_EQ(sample(text, R"(demo_pods_total{namespace="ns",pod="b"})"), "1");
  EXPECT_EQ(sample(text, R"(demo_pods_total{namespace="_other_",pod="_other_"})"), "12");
  EXPECT_EQ(sample(text, R"(demo_pods_total{namespace="ns",pod="c"})"), "");
  EXPECT_EQ(sample(text, R"(capscope_metrics_series_overflow_total{family="demo_pods_total"})"),
            "2");
}

TEST(MetricsRegistry, RejectsMisuseAsProgrammingErrors) {
  Registry r;
  EXPECT_THROW(r.counter_family("demo_requests", "No _total."), std::invalid_argument);
  EXPECT_THROW(r.gauge_family("9starts_with_digit", "x"), std::invalid_argument);
  EXPECT_THROW(r.gauge_family("demo_g", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.gauge_family("demo_g", "x", {"a-b"}), std::invalid_argument);
  EXPECT_THROW(r.gauge_family("demo_g", "x", {"a", "a"}), std::invalid_argument);
  Family& f = r.counter_family("demo_total", "x", {"a", "b"});
  EXPECT_THROW(r.counter_family("demo_total", "again"), std::invalid_argument);
  EXPECT_THROW(f.counter({"only-one"}), std::invalid_argument);
  EXPECT_THROW(f.gauge({"a", "b"}), std::invalid_argument) << "a counter family";
  EXPECT_THROW(r.counter_family("capscope_metrics_series_overflow_total", "x"),
               std::invalid_argument);
}

TEST(MetricsRegistry, GaugeFunctionsAreReadAtScrapeTime) {
  Registry r;
  Gauge g = r.gauge("demo_cache_size", "x");
  int calls = 0;
  g.set(3);
  g.set_function([&] { return static_cast<double>(++calls * 100); });
  EXPECT_EQ(sample(r.render(), "demo_cache_size"), "100");
  EXPECT_EQ(sample(r.render(), "demo_cache_size"), "200");
  g.set_function([]() -> double { throw std::runtime_error("source gone"); });
  EXPECT_EQ(sample(r.render(), "demo_cache_size"), "NaN");
  g.set_function(nullptr);
  EXPECT_EQ(sample(r.render(), "demo_cache_size"), "3") << "back to the set value";
  g.add(0.5);
  EXPECT_EQ(g.value(), 3.5);
}

TEST(MetricsRegistry, AdvanceToMirrorsAMonotonicTotal) {
  Registry r;
  Counter c = r.counter("demo_lost_total", "x");
  c.advance_to(10);
  c.advance_to(4);  // the source restarted: the counter must not go down
  EXPECT_EQ(c.value(), 10u);
  c.inc(2);
  c.advance_to(20);
  EXPECT_EQ(c.value(), 20u);
}

TEST(MetricsRegistry, DefaultHandlesDoNothing) {
  Counter c;
  Gauge g;
  c.inc();
  c.advance_to(5);
  g.set(1);
  g.set_function([] { return 1.0; });
  EXPECT_EQ(c.value(), 0u);
  EXPECT_EQ(g.value(), 0.0);
}

TEST(MetricsRegistry, ConcurrentIncrementsLookupsAndScrapesLoseNothing) {
  Registry r;
  Family& f = r.counter_family("demo_hits_total", "x", {"worker", "n"}, 50);
  Counter shared = r.counter("demo_shared_total", "x");
  constexpr int kThreads = 8;
  constexpr int kIncrements = 20000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) EXPECT_NE(r.render().find("demo_hits_total"), std::string::npos);
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::string worker = std::to_string(t);
      for (int i = 0; i < kIncrements; ++i) {
        shared.inc();
        // 8 workers x 10 values = 80 label sets against a bound of 50: some fold.
        f.counter({worker, std::to_string(i % 10)}).inc();
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();

  EXPECT_EQ(shared.value(), static_cast<uint64_t>(kThreads) * kIncrements);
  std::string text = r.render();
  uint64_t total = 0;
  size_t series = 0;
  for (size_t pos = text.find("\ndemo_hits_total{"); pos != std::string::npos;
       pos = text.find("\ndemo_hits_total{", pos + 1)) {
    size_t space = text.find(' ', pos);
    total += std::stoull(text.substr(space + 1, text.find('\n', space) - space - 1));
    ++series;
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kThreads) * kIncrements) << "every increment counted";
  EXPECT_EQ(series, 51u) << "the bound plus _other_";
  EXPECT_EQ(f.series_count(), 51u);
}

TEST(AgentMetrics, ExposesEveryFamilyWithItsFixedSeries) {
  AgentMetrics m;
  std::string text = m.registry().render();
  for (const char* family :
       {"capscope_checks_total counter", "capscope_events_total counter",
        "capscope_events_lost_total counter", "capscope_process_cache_size gauge",
        "capscope_container_cache_size gauge", "capscope_profiles gauge",
        "capscope_policy_hits_total counter", "capscope_ringbuf_lag_bytes gauge",
        "capscope_store_flushes_total counter", "capscope_build_info gauge"})
    EXPECT_NE(text.find(std::string("# TYPE ") + family + "\n"), std::string::npos) << family;
  for (const char* kind : {"exported", "subscribers", "dropped_filter"})
    EXPECT_EQ(sample(text, std::string("capscope_events_total{kind=\"") + kind + "\"}"), "0");
  for (const char* where : {"ringbuf", "export", "subscriber"})
    EXPECT_EQ(sample(text, std::string("capscope_events_lost_total{where=\"") + where + "\"}"),
              "0");
  EXPECT_EQ(sample(text, "capscope_build_info{version=\"" CAPSCOPE_VERSION "\"}"), "1");
  EXPECT_EQ(sample(text, "capscope_store_flushes_total{result=\"error\"}"), "0");
}

TEST(AgentMetrics, CountsChecksByCapabilityVerdictNamespaceAndWorkload) {
  AgentMetrics m;
  m.count_check(21, true, "", "");  // CAP_SYS_ADMIN denied on the host
  m.count_check(21, true, "", "", 2);
  m.count_check(12, false, "shop", "deployment/web");
  m.events_exported.inc(4);
  m.lost_ringbuf.advance_to(9);
  m.policy_hits("no-raw-sockets", "Sigkill").inc();
  m.process_cache_size.set(1234);
  m.ringbuf_lag_bytes.set_function([] { return 4096.0; });
  m.store_flushes_ok.inc();

  std::string text = m.registry().render();
  EXPECT_EQ(sample(text, R"(capscope_checks_total{capability="CAP_SYS_ADMIN",verdict="denied",)"
                         R"(namespace="",workload=""})"),
            "3");
  EXPECT_EQ(sample(text, R"(capscope_checks_total{capability="CAP_NET_ADMIN",verdict="granted",)"
                         R"(namespace="shop",workload="deployment/web"})"),
            "1");
  EXPECT_EQ(sample(text, R"(capscope_events_total{kind="exported"})"), "4");
  EXPECT_EQ(sample(text, R"(capscope_events_lost_total{where="ringbuf"})"), "9");
  EXPECT_EQ(sample(text, R"(capscope_policy_hits_total{policy="no-raw-sockets",action="Sigkill"})"),
            "1");
  EXPECT_EQ(sample(text, "capscope_process_cache_size"), "1234");
  EXPECT_EQ(sample(text, "capscope_ringbuf_lag_bytes"), "4096");
  EXPECT_EQ(sample(text, R"(capscope_store_flushes_total{result="ok"})"), "1");
}

TEST(AgentMetrics, CheckHandlesAreCachedAndFoldsCountedOncePerLabelSet) {
  AgentMetrics m(/*max_check_series=*/2);
  Counter first = m.check_counter(0, false, "a", "w");
  m.count_check(0, false, "a", "w");
  EXPECT_EQ(first.value(), 1u) << "the cached handle is the same series";
  m.count_check(0, false, "b", "w");
  for (int i = 0; i < 5; ++i) m.count_check(0, false, "c", "w");  // folded, looked up once
  m.count_check(0, false, "d", "w");                              // folded
  std::string text = m.registry().render();
  EXPECT_EQ(sample(text, R"(capscope_checks_total{capability="_other_",verdict="_other_",)"
                         R"(namespace="_other_",workload="_other_"})"),
            "6");
  EXPECT_EQ(
      sample(text, R"(capscope_metrics_series_overflow_total{family="capscope_checks_total"})"),
      "2");
}

TEST(MetricsAddress, ParsesHostAndPort) {
  std::string error;
  auto a = parse_listen_address("127.0.0.1:2113", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 2113);
  a = parse_listen_address("[::1]:0", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  a = parse_listen_address(":9000", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->host, "0.0.0.0");
  a = parse_listen_address("localhost:65535", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(format_listen_address("::1", 2113), "[::1]:2113");
  EXPECT_EQ(format_listen_address("127.0.0.1", 80), "127.0.0.1:80");
  a = parse_listen_address(kDefaultMetricsAddress, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(format_listen_address(a->host, a->port), kDefaultMetricsAddress);
}

TEST(MetricsAddress, BadAddressesGiveOneLineErrors) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c :
       {Case{"", "empty"}, Case{"127.0.0.1", "no port"}, Case{"127.0.0.1:http", "port 'http'"},
        Case{"host:65536", "port '65536'"}, Case{"host:", "port ''"}, Case{"::1:2113", "brackets"},
        Case{"[::1]2113", "']:PORT'"}, Case{"[]:2113", "empty IPv6"}}) {
    std::string error;
    EXPECT_FALSE(parse_listen_address(c.text, &error)) << c.text;
    EXPECT_NE(error.find(c.why), std::string::npos) << c.text << ": " << error;
    EXPECT_EQ(error.rfind(std::string("'") + c.text + "': ", 0), 0u) << error;
    EXPECT_NE(error.find("expected HOST:PORT"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}
