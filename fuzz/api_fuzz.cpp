// libFuzzer: the agent's API request handling (src/api). The input is decoded
// as each request message in turn, as the server would receive it, and handed
// to the handler the server runs (GetEvents: the request -> EventQuery
// conversion and its checks), against a backend that answers everything. Any
// crash, sanitizer report or hang is a bug; errors are answers, not failures.
#include <cstddef>
#include <cstdint>

#include "api/event_query.h"
#include "api/handlers.h"
#include "enrich/runtime/oci_state.h"

namespace {

using namespace capscope;

profile::Profile sample_profile(const std::string& name) {
  profile::Profile p;
  p.name = name;
  p.subject = "command: fuzz";
  p.runs = 1;
  profile::Observation o;
  o.key = {10, true, true};  // CAP_NET_BIND_SERVICE, granted, audited
  o.count = 1;
  o.syscall = "bind";
  o.binary = "/usr/sbin/nginx";
  p.add(o);
  o.key = {21, true, false};  // CAP_SYS_ADMIN, probe
  o.syscall = "mmap";
  p.add(o);
  return p;
}

// Every profile exists, every policy loads: the handlers' own paths run to the end.
class AnsweringBackend final : public api::Backend {
 public:
  std::unique_ptr<api::EventStream> subscribe(const api::EventQuery&, std::string* error) override {
    *error = "not streaming in the fuzzer";
    return nullptr;
  }
  std::optional<std::vector<profile::Profile>> list_profiles(std::string*) override {
    return std::vector<profile::Profile>{sample_profile("web")};
  }
  std::optional<profile::Profile> get_profile(const std::string& name, std::string*) override {
    if (name == "missing") return std::nullopt;
    return sample_profile(name);
  }
  std::optional<api::PolicyInfo> add_policy(const std::string& yaml, std::string*) override {
    return api::PolicyInfo{"p", "api", 1, {"Post"}, 0, yaml};
  }
  bool delete_policy(const std::string& name, std::string*) override { return name == "p"; }
  std::vector<api::PolicyInfo> list_policies() override { return {}; }
  api::Health health() override { return {}; }
  std::optional<api::AnnounceResult> announce_container(const api::ContainerAnnouncement& a, bool*,
                                                        std::string*) override {
    return api::AnnounceResult{a.state.id, false, 1, "/", {}};
  }
};

template <typename Request, typename Fn>
void decode_and_run(const uint8_t* data, size_t size, Fn&& handle) {
  Request request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  handle(request);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Most inputs have strings that are not UTF-8, and protobuf logs each refusal.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1U << 20)) return 0;
  static AnsweringBackend backend;
  decode_and_run<v1::GetEventsRequest>(data, size, [](const v1::GetEventsRequest& r) {
    std::string error;
    auto q = api::to_event_query(r, &error);
    // A query or a reason: never both, never neither.
    if (q.has_value() == !error.empty()) __builtin_trap();
  });
  decode_and_run<v1::AdviseRequest>(data, size, [](const v1::AdviseRequest& r) {
    v1::AdviseResponse resp;
    api::advise(backend, r, &resp);
  });
  decode_and_run<v1::GetProfileRequest>(data, size, [](const v1::GetProfileRequest& r) {
    v1::Profile resp;
    api::get_profile(backend, r, &resp);
  });
  decode_and_run<v1::AddPolicyRequest>(data, size, [](const v1::AddPolicyRequest& r) {
    v1::AddPolicyResponse resp;
    api::add_policy(backend, r, &resp);
  });
  decode_and_run<v1::AnnounceContainerRequest>(
      data, size, [](const v1::AnnounceContainerRequest& r) {
        v1::AnnounceContainerResponse resp;
        api::announce_container(backend, r, std::chrono::milliseconds(0), &resp);
      });
  // The hook's stdin: the OCI state as a runtime writes it.
  {
    std::string error;
    auto state =
        parse_oci_state(std::string_view(reinterpret_cast<const char*>(data), size), &error);
    if (state.has_value() == !error.empty()) __builtin_trap();
    if (state) identity_from_annotations(state->id, state->annotations);
  }
  decode_and_run<v1::DeletePolicyRequest>(data, size, [](const v1::DeletePolicyRequest& r) {
    v1::DeletePolicyResponse resp;
    api::delete_policy(backend, r, &resp);
  });
  return 0;
}
