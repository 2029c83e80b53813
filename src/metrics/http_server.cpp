#include "metrics/http_server.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

// Debian's libcpp-httplib is compiled with these (see cpp-httplib.pc); the header's
// Request struct changes layout with them, so they must match the library's.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#endif
#include <httplib.h>

namespace capscope::metrics {

namespace {

// Scrapes are rare and small: two workers keep the agent's thread count and memory low
// (cpp-httplib's default is one per core, at least eight).
constexpr size_t kWorkerThreads = 2;
constexpr auto kStartTimeout = std::chrono::seconds(5);
constexpr auto kClientTimeout = std::chrono::seconds(2);

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// Resolves like cpp-httplib does (passive, any family), to name a bad host before binding.
AddrInfoPtr resolve(const ListenAddress& a, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  std::string port = std::to_string(a.port);
  int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0) {
    *error = "cannot resolve host '" + a.host + "' (" + gai_strerror(rc) +
             "): pass --metrics-address with an IP address";
    return nullptr;
  }
  return AddrInfoPtr(result);
}

void reuse_address(int fd) {
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second
  // agent would share the port silently instead of failing to bind.
  int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

std::string cause_of(int err) {
  switch (err) {
    case EADDRINUSE:
      return "address already in use: another agent running? pass --metrics-address";
    case EACCES:
      return "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE): pass "
             "--metrics-address with another port";
    case EADDRNOTAVAIL:
      return "address not available on this host: pass --metrics-address with a local address";
    default:
      return std::string(std::strerror(err)) + ": pass --metrics-address";
  }
}

// cpp-httplib reports a failed bind as a bare false; binding the same address again
// ourselves recovers the errno that says why.
std::string diagnose_bind_failure(const addrinfo& ai) {
  int fd = socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return cause_of(errno);
  reuse_address(fd);
  int err = 0;
  if (bind(fd, ai.ai_addr, ai.ai_addrlen) != 0 || listen(fd, 1) != 0) err = errno;
  close(fd);
  return err != 0 ? cause_of(err) : "could not listen (the address is free now: retry)";
}

}  // namespace

struct MetricsServer::Impl {
  explicit Impl(const Registry& r) : registry(r) {}

  void install_handlers() {
    server.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
    server.set_socket_options(reuse_address);
    // One request per connection: scrapes come seconds apart, so keep-alive would only
    // park a worker on an idle connection, and an idle kept-alive connection holds up
    // stop() for the whole keep-alive timeout.
    server.set_keep_alive_max_count(1);
    // Bound how long stop() can wait for a client that connected and sent nothing (the
    // worker first waits for its request up to the keep-alive timeout, then reads it).
    server.set_keep_alive_timeout(kClientTimeout.count());
    server.set_read_timeout(kClientTimeout);
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(registry.render(), std::string(kExpositionContentType));
      scrapes.fetch_add(1, std::memory_order_relaxed);
    });
    server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      std::string problem = health ? health() : "";
      res.status = problem.empty() ? 200 : 503;
      res.set_content(problem.empty() ? "ok\n" : problem + "\n", "text/plain; charset=utf-8");
    });
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
          res.status = 500;
          res.set_content("internal error\n", "text/plain; charset=utf-8");
        });
  }

  // The accept loop runs on `thread`. Wait until it does, so start() returns a server
  // that answers (or says it could not).
  bool wait_until_running() const {
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (!server.is_running() && !loop_done.load()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return !loop_done.load();
  }

  // httplib's stop() does nothing until the loop has marked itself running, so a stop
  // right after start could be lost: repeat it until the loop has returned.
  void stop_and_join() {
    while (!loop_done.load()) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    thread.join();
  }

  const Registry& registry;
  httplib::Server server;
  std::thread thread;
  std::function<std::string()> health;
  std::atomic<uint64_t> scrapes{0};
  std::atomic<bool> loop_done{false};
  std::string address;
  uint16_t port = 0;
  bool started = false;
};

MetricsServer::MetricsServer(const Registry& registry) : impl_(std::make_unique<Impl>(registry)) {
  impl_->install_handlers();
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::set_health_check(std::function<std::string()> check) {
  impl_->health = std::move(check);
}

std::string MetricsServer::start(std::string_view address) {
  std::string error;
  auto parsed = parse_listen_address(address, &error);
  if (!parsed) return error;
  std::string shown = format_listen_address(parsed->host, parsed->port);
  if (impl_->started) return shown + ": the metrics server was already started";
  AddrInfoPtr resolved = resolve(*parsed, &error);
  if (!resolved) return shown + ": " + error;

  int port = parsed->port == 0
                 ? impl_->server.bind_to_any_port(parsed->host)
                 : (impl_->server.bind_to_port(parsed->host, parsed->port) ? parsed->port : -1);
  if (port <= 0) return shown + ": " + diagnose_bind_failure(*resolved);

  impl_->started = true;
  impl_->port = static_cast<uint16_t>(port);
  impl_->address = format_listen_address(parsed->host, impl_->port);
  start_serving_thread();
  if (!impl_->wait_until_running()) {
    stop();
    return impl_->address + ": the metrics server did not start serving";
  }
  return "";
}

void MetricsServer::start_serving_thread() {
  // The server's threads (this one and the workers it starts, which inherit its mask)
  // take no signals: the agent's SIGTERM/SIGHUP go to the agent's own threads, and a
  // scraper that hangs up mid-response gives EPIPE instead of a SIGPIPE, whatever the
  // process's disposition (cpp-httplib ignores SIGPIPE process-wide, but the agent may
  // not keep it so).
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  impl_->thread = std::thread([impl = impl_.get()] {
    impl->server.listen_after_bind();
    impl->loop_done.store(true);
  });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void MetricsServer::stop() {
  if (impl_->thread.joinable()) impl_->stop_and_join();
}

std::string MetricsServer::address() const { return impl_->address; }
uint16_t MetricsServer::port() const { return impl_->port; }
uint64_t MetricsServer::scrapes() const { return impl_->scrapes.load(std::memory_order_relaxed); }

}  // namespace capscope::metrics
