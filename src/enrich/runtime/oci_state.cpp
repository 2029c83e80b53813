#include "enrich/runtime/oci_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <nlohmann/json.hpp>

namespace capscope {

namespace {

using json = nlohmann::json;

// runc's rule for a container id, which the others follow: letters, digits, "_+-.".
bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '+' || c == '-' ||
           c == '.';
  });
}

// A string member, "" when absent; *error when present and not a string.
std::string string_member(const json& doc, const char* key, std::string* error) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return "";
  if (!it->is_string()) {
    *error = fmt::format("the OCI state's \"{}\" is not a string", key);
    return "";
  }
  return it->get<std::string>();
}

bool read_annotations(const json& doc, Labels* out, std::string* error) {
  auto it = doc.find("annotations");
  if (it == doc.end() || it->is_null()) return true;
  if (!it->is_object()) {
    *error = "the OCI state's \"annotations\" is not an object";
    return false;
  }
  for (const auto& [key, value] : it->items()) {
    if (!value.is_string()) {
      *error = fmt::format("the OCI state's annotation \"{}\" is not a string", key);
      return false;
    }
    (*out)[key] = value.get<std::string>();
  }
  return true;
}

std::string annotation(const Labels& a, std::string_view key) {
  auto it = a.find(std::string(key));
  return it == a.end() ? "" : it->second;
}

}  // namespace

std::optional<OciState> parse_oci_state(std::string_view text, std::string* error) {
  if (text.size() > kMaxOciStateBytes) {
    *error = fmt::format("the OCI state is over {} bytes: not a runtime's", kMaxOciStateBytes);
    return std::nullopt;
  }
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    *error =
        "the OCI state on stdin is not a JSON object: run capscope oci-hook as a runtime "
        "hook, which is given the container's state there";
    return std::nullopt;
  }
  OciState s;
  s.id = string_member(doc, "id", error);
  s.status = string_member(doc, "status", error);
  s.bundle = string_member(doc, "bundle", error);
  if (!error->empty()) return std::nullopt;
  auto pid = doc.find("pid");
  if (pid != doc.end() && pid->is_number_integer() && pid->get<int64_t>() > 0 &&
      pid->get<int64_t>() <= INT32_MAX)
    s.pid = pid->get<uint32_t>();
  if (!read_annotations(doc, &s.annotations, error) || !check_oci_state(s, error))
    return std::nullopt;
  return s;
}

bool check_oci_state(const OciState& s, std::string* error) {
  if (!valid_id(s.id)) {
    // Not echoed: a bad id may hold anything, a newline too.
    *error = s.id.empty() ? "the OCI state has no \"id\""
                          : "the OCI state's \"id\" is not a container id (letters, digits, "
                            "'_+-.', at most 1024)";
    return false;
  }
  if (s.pid == 0 || s.pid > INT32_MAX) {
    *error = fmt::format(
        "the OCI state of container {} has no \"pid\": run the hook at createRuntime (or "
        "prestart), when the container's process exists",
        s.id);
    return false;
  }
  return true;
}

bool is_sandbox(const Labels& annotations) {
  return annotation(annotations, "io.kubernetes.cri.container-type") == "sandbox" ||
         annotation(annotations, "io.kubernetes.cri-o.ContainerType") == "sandbox";
}

std::optional<ContainerInfo> identity_from_annotations(std::string_view id,
                                                       const Labels& annotations) {
  struct Keys {
    const char* runtime;
    const char* name;
    const char* pod;
    const char* ns;
    const char* uid;
    const char* sandbox;
  };
  static constexpr Keys kKnown[] = {
      {"containerd", "io.kubernetes.cri.container-name", "io.kubernetes.cri.sandbox-name",
       "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-uid",
       "io.kubernetes.cri.sandbox-id"},
      {"cri-o", "io.kubernetes.container.name", "io.kubernetes.pod.name",
       "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid", "io.kubernetes.cri-o.SandboxID"},
  };
  for (const Keys& k : kKnown) {
    std::string name = annotation(annotations, k.name);
    std::string pod = annotation(annotations, k.pod);
    if (name.empty() || pod.empty()) continue;
    ContainerInfo info;
    info.id = std::string(id);
    info.runtime = k.runtime;
    info.name = std::move(name);
    info.pod_name = std::move(pod);
    info.pod_namespace = annotation(annotations, k.ns);
    info.pod_uid = annotation(annotations, k.uid);
    info.pod_id = annotation(annotations, k.sandbox);
    return info;
  }
  return std::nullopt;
}

}  // namespace capscope
