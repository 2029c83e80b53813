// The container-runtime flags trace and record share: where the runtimes'
// sockets are, and which containers (by namespace, pod, name or id, labels) a
// command is about.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "enrich/runtime/runtime_resolver.h"
#include "filter/container_filter.h"

namespace capscope::cli {

struct RuntimeCliOptions {
  RuntimeSockets sockets;
  bool none = false;  // --no-runtimes: cgroup ids only
};

struct IdentityCliOptions {
  std::vector<std::string> namespaces, pods, containers;
  std::string selector;
};

void add_runtime_options(CLI::App* app, RuntimeCliOptions& o);
// --namespace, --pod, --selector; and --container unless `with_container` is false
// (record has its own --container).
void add_identity_options(CLI::App* app, IdentityCliOptions& o, bool with_container = true);

// The resolver over the runtimes found (or named); one with no clients under --no-runtimes.
std::unique_ptr<RuntimeResolver> make_resolver(const RuntimeCliOptions& o);

// The selection, or nullopt with a one-line error (a selector that does not parse).
std::optional<filter::ContainerSelection> build_selection(const IdentityCliOptions& o,
                                                          std::string* error);

}  // namespace capscope::cli
