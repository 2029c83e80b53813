#include "cli/runtime_options.h"

#include <fmt/format.h>

#include <stdexcept>

namespace capscope::cli {

void add_runtime_options(CLI::App* app, RuntimeCliOptions& o) {
  const char* group = "Container runtimes";
  app->add_option("--podman-socket", o.sockets.podman,
                  "Podman API socket (default /run/podman/podman.sock, if it exists)")
      ->group(group);
  app->add_option("--docker-socket", o.sockets.docker,
                  "Docker Engine API socket (default /var/run/docker.sock, if it exists)")
      ->group(group);
  app->add_option("--containerd-socket", o.sockets.containerd,
                  "containerd CRI socket (default /run/containerd/containerd.sock, if it exists)")
      ->group(group);
  app->add_option("--crio-socket", o.sockets.crio,
                  "CRI-O socket (default /var/run/crio/crio.sock, if it exists)")
      ->group(group);
  app->add_flag("--no-runtimes", o.none, "Ask no runtime: name containers by cgroup id only")
      ->group(group);
}

void add_identity_options(CLI::App* app, IdentityCliOptions& o, bool with_container) {
  const char* group = "Containers and pods";
  app->add_option("--namespace", o.namespaces, "Only pods in these Kubernetes namespaces")
      ->delimiter(',')
      ->group(group);
  app->add_option("--pod", o.pods, "Only these pods (NAME or NAMESPACE/NAME)")
      ->delimiter(',')
      ->group(group);
  if (with_container)
    app->add_option("--container", o.containers, "Only these containers (name, id or id prefix)")
        ->delimiter(',')
        ->group(group);
  app->add_option("-l,--selector", o.selector,
                  "Only pods whose labels match (Kubernetes syntax: a=b,c!=d,e in (x,y),!f)")
      ->group(group);
}

std::unique_ptr<RuntimeResolver> make_resolver(const RuntimeCliOptions& o) {
  if (o.none)
    return std::make_unique<RuntimeResolver>(std::vector<std::unique_ptr<RuntimeClient>>{});
  return std::make_unique<RuntimeResolver>(make_runtime_clients(o.sockets));
}

std::optional<filter::ContainerSelection> build_selection(const IdentityCliOptions& o,
                                                          std::string* error) {
  filter::ContainerSelection sel;
  sel.namespaces = o.namespaces;
  sel.pods = o.pods;
  sel.containers = o.containers;
  if (!o.selector.empty()) {
    try {
      sel.selector = LabelSelector::parse(o.selector);
    } catch (const std::invalid_argument& e) {
      *error = fmt::format("--selector: {}", e.what());
      return std::nullopt;
    }
  }
  return sel;
}

}  // namespace capscope::cli
