// Which runtimes to ask: every one whose socket was named, and every one whose
// default socket exists. A named socket that is not there is still asked, so the
// resolver's one warning tells the user what is wrong with it.
#include <sys/stat.h>

#include "enrich/runtime/cri_client.h"
#include "enrich/runtime/engine_client.h"
#include "enrich/runtime/runtime_resolver.h"

namespace capscope {

namespace {

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// The socket to use: the named one, else the default when it exists, else none.
std::string pick(const std::string& named, const std::string& fallback) {
  if (!named.empty()) return named;
  return is_socket(fallback) ? fallback : std::string();
}

std::unique_ptr<RuntimeClient> engine(EngineFlavor flavor, const std::string& socket) {
  EngineClientOptions o;
  o.flavor = flavor;
  o.socket_path = socket;
  return std::make_unique<EngineClient>(o);
}

}  // namespace

std::vector<std::unique_ptr<RuntimeClient>> make_runtime_clients(const RuntimeSockets& s) {
  std::vector<std::unique_ptr<RuntimeClient>> out;
  if (auto p = pick(s.podman, EngineClient::default_socket(EngineFlavor::Podman)); !p.empty())
    out.push_back(engine(EngineFlavor::Podman, p));
  if (auto p = pick(s.docker, EngineClient::default_socket(EngineFlavor::Docker)); !p.empty())
    out.push_back(engine(EngineFlavor::Docker, p));
  if (auto p = pick(s.containerd, kContainerdCriSocket); !p.empty())
    out.push_back(std::make_unique<CriClient>(p, "containerd"));
  if (auto p = pick(s.crio, kCrioSocket); !p.empty())
    out.push_back(std::make_unique<CriClient>(p, "cri-o"));
  return out;
}

}  // namespace capscope
