// JSON lines shaped like Tetragon's process_kprobe event for cap_capable, so tools that
// read Tetragon's export read ours; what Tetragon lacks sits in one "capscope" object
// inside process_kprobe, where readers that ignore unknown fields never see it.
// docs/EVENTS.md documents every field.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "output/writer.h"
#include "util/clock.h"

namespace capscope::output {

struct JsonOptions {
  // Tetragon's process.cap block (capability names) and capscope's process_caps
  // (bounding and ambient sets), as Tetragon's --enable-process-cred adds them:
  // off by default, because a root process's lists alone are 1.6 KB an event.
  bool process_caps = false;
  // Tetragon's process.ns block, as its --enable-process-ns adds it: off by default
  // (its ten namespaces are a quarter of an event).
  bool process_ns = false;
};

// Appends one event as a single-line JSON object, without the newline.
void append_json_event(Buffer& out, const EnrichedCheck& e, const JsonOptions& opts = {});

// Tetragon's `pod` member (with its leading comma) for a process in `c`, with what the
// runtime said (`info`, may be null): namespace, name, container name, image, start
// time, pod_labels, workload and workload_kind. Written for a container in a pod (a pod
// uid in the cgroup path, or a pod the runtime names); for every process on the host
// or in a plain container, nothing at all.
void append_pod(Buffer& out, const ContainerRef& c, const ContainerInfo* info = nullptr,
                uint32_t ns_pid = 0);

class JsonWriter final : public BufferedWriter {
 public:
  JsonWriter(Sink& out, JsonOptions opts) : BufferedWriter(out), opts_(opts) {}
  void write(const EnrichedCheck& e) override;

 private:
  // Serialized process blocks (all but their "tid") of recently seen processes, in a
  // small direct-mapped cache: checks come in bursts from a few interleaved processes.
  // Holding the pointer keeps the (immutable) ProcessInfo alive, so its address cannot
  // be reused by another process while the entry stands.
  struct ProcessSlot {
    ProcessPtr process;
    ContainerInfoPtr container;  // the runtime's answer the text was made with
    NsInodes host_ns{};
    std::string text;
  };
  static constexpr size_t kProcessSlots = 16;
  using ProcessCache = std::array<ProcessSlot, kProcessSlots>;
  std::string_view process_head(const ProcessPtr& p, const ContainerInfoPtr& container,
                                const NsInodes* host_ns, ProcessCache& cache) const;

  JsonOptions opts_;
  util::Rfc3339Formatter clock_;
  ProcessCache processes_;
  ProcessCache parents_;
};

}  // namespace capscope::output
