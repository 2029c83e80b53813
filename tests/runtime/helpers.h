// Shared by the runtime test files: run commands, find the binaries under
// test, and the backend the suite runs against.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace capscope::runtime_test {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string skip_reason() {
  if (geteuid() != 0) return "runtime tests need root";
  if (!fs::exists("/sys/kernel/btf/vmlinux")) return "kernel has no BTF";
  return "";
}

// Runs a shell command, returns its exit status.
inline int sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Runs a shell command, returns its standard output without the final newline.
inline std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The mount point of the unified (v2) cgroup hierarchy, empty if none
// (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid layout).
inline std::string cgroup2_mount() {
  return capture("awk '$3 == \"cgroup2\" { print $2; exit }' /proc/mounts");
}

// Where the binaries are: where this build put them, unless the environment says
// otherwise (tests/qemu/run.sh copies them to /capscope in its guest).
inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != 0 ? v : fallback;
}
inline std::string capscope_binary() { return env_or("CAPSCOPE_TEST_BINARY", CAPSCOPE_BINARY); }
inline std::string helpers_dir() {
  return env_or("CAPSCOPE_TEST_HELPERS_DIR", CAPSCOPE_HELPERS_DIR);
}

// The backend under test: CAPSCOPE_TEST_BACKEND (tests/qemu/run.sh sets it in the
// guest), or empty for capscope's own choice.
inline std::string test_backend() {
  const char* b = std::getenv("CAPSCOPE_TEST_BACKEND");
  return b != nullptr ? b : "";
}

// Starts args[0] (a path) with args, its standard error into err_file; returns its pid.
inline pid_t spawn(std::vector<std::string> args, const fs::path& err_file) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// A busybox image for podman, built from Debian's busybox-static by
// scripts/busybox-image.sh (no registry is reachable from the test machines).
inline constexpr const char* kBusyboxImage = "localhost/capscope-busybox";

// Empty, or why podman cannot run the test containers. Podman, runc and busybox-static
// are part of the test set-up (scripts/install-deps.sh): their absence is a failure.
inline std::string podman_problem() {
  if (sh("command -v podman >/dev/null && command -v runc >/dev/null") != 0)
    return "podman and runc are not installed: run scripts/install-deps.sh";
  std::string build = std::string("bash ") + CAPSCOPE_SOURCE_DIR + "/scripts/busybox-image.sh " +
                      kBusyboxImage + " >/dev/null 2>&1";
  if (sh(build) != 0) return "scripts/busybox-image.sh could not build the busybox image";
  return "";
}

// `podman system service` on a socket of the test's own, stopped on destruction.
class PodmanService {
 public:
  // Empty, or why the service did not come up.
  std::string start(const fs::path& dir) {
    socket_ = (dir / "podman.sock").string();
    fs::path err = dir / "podman-service.err";
    pid_ = spawn({"/usr/bin/podman", "system", "service", "--time=0", "unix://" + socket_}, err);
    for (int i = 0; i < 100 && !is_socket(); ++i) usleep(100'000);
    return is_socket() ? "" : "podman system service did not start: " + read_file(err);
  }
  ~PodmanService() { stop(); }
  // Ends the service and removes its socket: clients find no runtime there.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    unlink(socket_.c_str());
  }
  [[nodiscard]] const std::string& socket() const { return socket_; }

 private:
  [[nodiscard]] bool is_socket() const {
    struct stat st {};
    return stat(socket_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }
  std::string socket_;
  pid_t pid_ = -1;
};

}  // namespace capscope::runtime_test
