#include "enrich/runtime/engine_client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

namespace capscope {
namespace {

using nlohmann::json;

// An inspect answer is a few KiB and a list a few hundred bytes per container:
// anything far beyond that is not an engine talking, and must not fill memory.
constexpr size_t kMaxBody = size_t{16} << 20;
constexpr const char* kLibpodPrefix = "/v4.0.0/libpod";

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

// curl_global_init is not thread-safe on every libcurl; the clients may be made
// from several threads.
void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  size_t bytes = size * n;
  if (body->size() + bytes > kMaxBody) return 0;  // curl then fails with CURLE_WRITE_ERROR
  body->append(data, bytes);
  return bytes;
}

// Said before connecting: curl's "Couldn't connect" does not tell a missing
// path from a regular file from a dead socket.
std::string socket_problem(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISSOCK(st.st_mode)) return path + " is not a socket";
  return "";
}

std::string curl_problem(CURLcode rc, const char* errbuf, long timeout_ms) {
  std::string detail = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return "no answer within " + std::to_string(timeout_ms) + " ms";
    case CURLE_COULDNT_CONNECT:
      return "cannot connect (" + detail + ")";
    case CURLE_GOT_NOTHING:
      return "closed the connection without answering";
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
      return "closed the connection mid-answer (" + detail + ")";
    case CURLE_WRITE_ERROR:
      return "answer larger than " + std::to_string(kMaxBody >> 20) + " MiB";
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return "answer is not HTTP (" + detail + ")";
    default:
      return detail;
  }
}

// Ids come from cgroup paths, but a name or a stray '/' or '?' must not change the request.
std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Keeps an engine's text (error messages) to one short line in ours.
std::string one_line(std::string s) {
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

// ": <message>" of an engine's error answer ({"message": ...}), or "" when it has none.
std::string said_in(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("message") && j["message"].is_string()
             ? ": " + one_line(j["message"].get<std::string>())
             : "";
}

// What every request to an engine sets: the socket is the address (the host is never
// looked up), no signals (timeouts without SIGALRM, safe in threads), a bounded connect,
// and curl's own words about a failure into errbuf.
void prepare(CURL* c, const std::string& socket, const std::string& path, long timeout_ms,
             char* errbuf) {
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(c, CURLOPT_URL, ("http://localhost" + path).c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 1000L));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
}

const char* runtime_name(EngineFlavor flavor) {
  return flavor == EngineFlavor::Podman ? "podman" : "docker";
}

// Reads an answer's fields. An absent or null field reads as empty; a field of
// another type is noted (the first one) and the caller refuses the whole answer:
// a half-read ContainerInfo would be cached as if it were the truth.
class Fields {
 public:
  Fields(const json* j, std::string path, std::string* error)
      : j_(j), path_(std::move(path)), error_(error) {}

  [[nodiscard]] Fields at(const std::string& key) const {
    return {get(key, json::value_t::object), path_ + key + ".", error_};
  }
  [[nodiscard]] std::string str(const std::string& key) const {
    const json* v = get(key, json::value_t::string);
    return v != nullptr ? v->get_ref<const std::string&>() : std::string();
  }
  [[nodiscard]] bool flag(const std::string& key) const {
    const json* v = get(key, json::value_t::boolean);
    return v != nullptr && v->get<bool>();
  }
  [[nodiscard]] uint32_t u32(const std::string& key) const {
    const json* v = get(key, json::value_t::number_unsigned);
    if (v == nullptr) return 0;
    auto n = v->get<uint64_t>();
    if (n <= UINT32_MAX) return static_cast<uint32_t>(n);
    note(key, "a 32-bit number");
    return 0;
  }
  [[nodiscard]] Labels labels(const std::string& key) const;
  [[nodiscard]] std::optional<std::vector<std::string>> strings(const std::string& key) const;

 private:
  static bool is(const json& v, json::value_t want) {
    if (want == json::value_t::number_unsigned)  // json reads 0 and up as unsigned
      return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    return v.type() == want;
  }
  const json* get(const std::string& key, json::value_t want) const {
    if (j_ == nullptr) return nullptr;
    auto it = j_->find(key);
    if (it == j_->end() || it->is_null()) return nullptr;
    if (is(*it, want)) return &*it;
    note(key, type_name(want));
    return nullptr;
  }
  static const char* type_name(json::value_t t) {
    switch (t) {
      case json::value_t::object:
        return "an object";
      case json::value_t::string:
        return "a string";
      case json::value_t::boolean:
        return "a boolean";
      case json::value_t::array:
        return "an array";
      default:
        return "a non-negative integer";
    }
  }
  void note(const std::string& key, const std::string& want) const {
    if (error_->empty()) *error_ = "field " + path_ + key + " is not " + want;
  }

  const json* j_;
  std::string path_;
  std::string* error_;
};

Labels Fields::labels(const std::string& key) const {
  Labels out;
  const json* v = get(key, json::value_t::object);
  if (v == nullptr) return out;
  for (const auto& [k, val] : v->items()) {
    if (!val.is_string()) {
      std::string field = key;
      field += '.';
      field += k;
      note(field, "a string");
      return {};
    }
    out.emplace(k, val.get<std::string>());
  }
  return out;
}

std::optional<std::vector<std::string>> Fields::strings(const std::string& key) const {
  const json* v = get(key, json::value_t::array);
  if (v == nullptr) return std::nullopt;
  std::vector<std::string> out;
  for (const json& e : *v) {
    if (!e.is_string()) {
      note(key, "an array of strings");
      return std::nullopt;
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

// What both APIs spell the same way: State, HostConfig, Config.Labels.
void read_common(const Fields& top, ContainerInfo& info) {
  info.id = top.str("Id");
  Fields state = top.at("State");
  info.pid = state.u32("Pid");
  info.running = state.flag("Running");
  // An engine says "0001-01-01T00:00:00Z" for never started: unknown, not year 1.
  auto started = parse_rfc3339_ns(state.str("StartedAt"));
  info.started_at_ns = started && *started > 0 ? *started : 0;
  Fields host = top.at("HostConfig");
  info.cap_add = host.strings("CapAdd").value_or(std::vector<std::string>{});
  info.cap_drop = host.strings("CapDrop").value_or(std::vector<std::string>{});
  info.privileged = host.flag("Privileged");
  info.labels = top.at("Config").labels("Labels");
}

// Kubernetes' own keys, which a kubelet through cri-dockerd (labels) or CRI-O
// (annotations) puts on the container, win over the engine's names.
void apply_kubernetes_keys(const Labels& keys, ContainerInfo& info) {
  auto take = [&keys](const char* key, std::string& out) {
    auto it = keys.find(key);
    if (it != keys.end() && !it->second.empty()) out = it->second;
  };
  take("io.kubernetes.container.name", info.name);
  take("io.kubernetes.pod.name", info.pod_name);
  take("io.kubernetes.pod.namespace", info.pod_namespace);
  take("io.kubernetes.pod.uid", info.pod_uid);
}

// Podman's annotations on every container, as opposed to the ones kube play
// copies from the Pod manifest's metadata.annotations.
bool podman_own_annotation(const std::string& key) {
  for (const char* prefix : {"io.podman.annotations.", "io.kubernetes.cri-o.",
                             "io.container.manager", "org.opencontainers."})
    if (key.rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace

EngineClient::EngineClient(EngineClientOptions options) : options_(std::move(options)) {
  if (options_.socket_path.empty()) options_.socket_path = default_socket(options_.flavor);
  curl_init_once();
}

std::string EngineClient::default_socket(EngineFlavor flavor) {
  return flavor == EngineFlavor::Podman ? "/run/podman/podman.sock" : "/var/run/docker.sock";
}

std::string EngineClient::runtime() const { return runtime_name(options_.flavor); }

// Docker's paths stay unversioned: the daemon then speaks its newest API, and
// recent daemons refuse old pinned versions.
std::string EngineClient::api_prefix() const {
  return options_.flavor == EngineFlavor::Podman ? kLibpodPrefix : "";
}

void EngineClient::fail(const std::string& problem) const {
  throw RuntimeError(RuntimeError::Kind::Unavailable,
                     runtime() + " API at " + options_.socket_path + ": " + problem);
}

EngineClient::Response EngineClient::get(const std::string& path) const {
  if (std::string p = socket_problem(options_.socket_path); !p.empty()) {
    fail(p + (options_.flavor == EngineFlavor::Podman
                  ? " (start the service with `podman system service` or pass --podman-socket)"
                  : " (is dockerd running? or pass --docker-socket)"));
  }
  CurlHandle curl(curl_easy_init());
  if (!curl) fail("curl_easy_init failed");
  Response r;
  char errbuf[CURL_ERROR_SIZE] = {};
  long timeout_ms = static_cast<long>(options_.timeout.count());
  CURL* c = curl.get();
  prepare(c, options_.socket_path, path, timeout_ms, errbuf);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) fail("GET " + path + ": " + curl_problem(rc, errbuf, timeout_ms));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

json EngineClient::fetch(const std::string& path, RuntimeError::Kind on_404) const {
  Response r = get(path);
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (r.status < 200 || r.status > 299) {
    std::string what =
        "GET " + path + " answered HTTP " + std::to_string(r.status) + said_in(r.body);
    if (r.status == 404 && on_404 == RuntimeError::Kind::NotFound)
      throw RuntimeError(RuntimeError::Kind::NotFound, runtime() + ": " + what);
    fail(what);
  }
  if (j.is_discarded()) fail("GET " + path + ": answer is not JSON");
  return j;
}

std::string EngineClient::version() {
  json j = fetch(api_prefix() + "/version", RuntimeError::Kind::Unavailable);
  std::string error;
  std::string v = j.is_object() ? Fields(&j, "", &error).str("Version") : "";
  if (v.empty()) fail("GET /version: answer has no Version string");
  return v;
}

std::vector<std::string> EngineClient::list_running() {
  std::string path = api_prefix() + "/containers/json";  // running ones unless all=true
  json j = fetch(path, RuntimeError::Kind::Unavailable);
  if (!j.is_array()) fail("GET " + path + ": answer is not a JSON array");
  std::vector<std::string> ids;
  for (const json& c : j) {
    if (!c.is_object() || !c.contains("Id") || !c["Id"].is_string())
      fail("GET " + path + ": an entry has no Id string");
    ids.push_back(c["Id"].get<std::string>());
  }
  return ids;
}

ContainerInfo EngineClient::inspect(std::string_view id) {
  std::string path = api_prefix() + "/containers/" + url_escape(id) + "/json";
  json j = fetch(path, RuntimeError::Kind::NotFound);
  if (!j.is_object()) fail("GET " + path + ": answer is not a JSON object");
  std::string error;
  Fields top(&j, "", &error);
  ContainerInfo info;
  read_common(top, info);
  info.runtime = runtime();
  std::string name = top.str("Name");
  info.name = !name.empty() && name[0] == '/' ? name.substr(1) : name;
  Labels annotations;
  if (options_.flavor == EngineFlavor::Podman) {
    info.image = top.str("ImageName");
    info.image_id = top.str("Image");
    info.effective_caps = top.strings("EffectiveCaps");
    info.pod_id = top.str("Pod");
    annotations = top.at("Config").labels("Annotations");
  } else {
    info.image = top.at("Config").str("Image");  // top-level Image is the id
    info.image_id = top.str("Image");
  }
  if (!error.empty()) fail("GET " + path + ": " + error);
  if (info.id.empty()) fail("GET " + path + ": answer has no Id");
  if (!info.pod_id.empty()) add_podman_pod(info, annotations);
  apply_kubernetes_keys(annotations, info);
  apply_kubernetes_keys(info.labels, info);
  return info;
}

// The pod's name and labels are only in the pod's own inspect. A pod from
// `podman kube play` (podman 4.3 gives it exit policy "stop", `pod create`
// "continue") names its containers "<pod>-<container>" and copies the
// manifest's labels and annotations onto each container; it keeps neither the
// manifest's namespace nor a Kubernetes container name, so both are inferred here.
void EngineClient::add_podman_pod(ContainerInfo& info, const Labels& annotations) const {
  std::string path = std::string(kLibpodPrefix) + "/pods/" + url_escape(info.pod_id) + "/json";
  json j;
  try {
    j = fetch(path, RuntimeError::Kind::NotFound);
  } catch (const RuntimeError& e) {
    if (e.kind() == RuntimeError::Kind::NotFound)
      return;  // removed since: the container's own fields stand
    throw;
  }
  if (!j.is_object()) fail("GET " + path + ": answer is not a JSON object");
  std::string error;
  Fields pod(&j, "", &error);
  info.pod_name = pod.str("Name");
  info.pod_labels = pod.labels("Labels");
  bool kube_played = pod.str("ExitPolicy") == "stop";
  if (!error.empty()) fail("GET " + path + ": " + error);
  if (!kube_played) return;
  std::string prefix = info.pod_name + "-";
  if (!info.pod_name.empty() && info.name.size() > prefix.size() && info.name.rfind(prefix, 0) == 0)
    info.name = info.name.substr(prefix.size());
  for (const auto& [k, v] : annotations)
    if (!podman_own_annotation(k)) info.pod_annotations.emplace(k, v);
}

namespace {

// A create event is a few hundred bytes; a line beyond this is not an engine talking.
constexpr size_t kMaxEventLine = size_t{1} << 20;

// Keys an engine puts among an event's attributes besides the container's labels.
bool engine_attribute(std::string_view key, EngineFlavor flavor) {
  if (key == "name" || key == "image") return true;
  return flavor == EngineFlavor::Podman && (key == "podId" || key == "containerExitCode");
}

std::string string_at(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The state of one event stream, for curl's write callback.
struct EventStream {
  const RuntimeClient::CreatedFn* on_created = nullptr;
  EngineFlavor flavor = EngineFlavor::Docker;
  CURL* curl = nullptr;
  long status = 0;
  std::string pending;  // the start of a line not yet ended
  std::string error_body;
  bool too_long = false;
};

size_t on_event_bytes(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<EventStream*>(user);
  size_t bytes = size * n;
  if (s->status == 0) curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
  if (s->status != 200) {  // an error answer: kept (short) for the message
    size_t room = size_t{4096} - std::min(size_t{4096}, s->error_body.size());
    s->error_body.append(data, std::min(bytes, room));
    return bytes;
  }
  s->pending.append(data, bytes);
  size_t start = 0;
  for (size_t nl = 0; (nl = s->pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    auto created =
        created_from_event(std::string_view(s->pending).substr(start, nl - start), s->flavor);
    if (created) (*s->on_created)(std::move(*created));
  }
  s->pending.erase(0, start);
  if (s->pending.size() <= kMaxEventLine) return bytes;
  s->too_long = true;
  return 0;  // curl then fails with CURLE_WRITE_ERROR
}

// An easy handle inside a multi handle, taken out and both freed in curl's order.
struct MultiTransfer {
  CURLM* multi = curl_multi_init();
  CURL* easy = curl_easy_init();
  MultiTransfer() {
    if (multi != nullptr && easy != nullptr) curl_multi_add_handle(multi, easy);
  }
  ~MultiTransfer() {
    if (multi != nullptr && easy != nullptr) curl_multi_remove_handle(multi, easy);
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
  MultiTransfer(const MultiTransfer&) = delete;
  MultiTransfer& operator=(const MultiTransfer&) = delete;
};

}  // namespace

std::optional<CreatedContainer> created_from_event(std::string_view line, EngineFlavor flavor) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || string_at(j, "Type") != "container" || string_at(j, "Action") != "create")
    return std::nullopt;
  auto actor = j.find("Actor");
  if (actor == j.end() || !actor->is_object()) return std::nullopt;
  CreatedContainer c;
  ContainerInfo& info = c.info;
  info.id = string_at(*actor, "ID");
  if (info.id.empty()) return std::nullopt;
  info.runtime = runtime_name(flavor);
  auto attributes = actor->find("Attributes");
  if (attributes != actor->end() && attributes->is_object()) {
    for (const auto& [key, value] : attributes->items())
      if (value.is_string() && !engine_attribute(key, flavor))
        info.labels.emplace(key, value.get<std::string>());
    info.name = string_at(*attributes, "name");
    if (!info.name.empty() && info.name[0] == '/') info.name.erase(0, 1);
    info.image = string_at(*attributes, "image");
    if (flavor == EngineFlavor::Podman) info.pod_id = string_at(*attributes, "podId");
  }
  // A podman pod's name and labels come from the pod's inspect, and a kube-played
  // container's Kubernetes name from its annotations: not in the event.
  c.complete = !info.name.empty() && info.pod_id.empty();
  apply_kubernetes_keys(info.labels, info);
  return c;
}

bool EngineClient::follow_creates(const CreatedFn& on_created, const StoppedFn& stopped) {
  std::string path = api_prefix() + "/events?" +
                     (options_.flavor == EngineFlavor::Podman ? "stream=true&" : "") +
                     "filters=" + url_escape(R"({"type":["container"],"event":["create"]})");
  if (std::string p = socket_problem(options_.socket_path); !p.empty()) fail(p);
  MultiTransfer t;
  if (t.multi == nullptr || t.easy == nullptr) fail("curl_multi_init failed");
  EventStream s;
  s.on_created = &on_created;
  s.flavor = options_.flavor;
  s.curl = t.easy;
  char errbuf[CURL_ERROR_SIZE] = {};
  long timeout_ms = static_cast<long>(options_.timeout.count());
  prepare(t.easy, options_.socket_path, path, timeout_ms, errbuf);
  curl_easy_setopt(t.easy, CURLOPT_WRITEFUNCTION, on_event_bytes);
  curl_easy_setopt(t.easy, CURLOPT_WRITEDATA, &s);
  // No overall timeout: a quiet stream is an engine with nothing to say.
  for (int running = 1; running != 0;) {
    if (stopped()) return true;
    if (CURLMcode mc = curl_multi_perform(t.multi, &running); mc != CURLM_OK)
      fail("GET " + path + ": " + curl_multi_strerror(mc));
    if (running != 0) curl_multi_poll(t.multi, nullptr, 0, 100, nullptr);
  }
  CURLcode rc = CURLE_OK;
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(t.multi, &left))
    if (m->msg == CURLMSG_DONE) rc = m->data.result;
  if (s.too_long) fail("GET " + path + ": an event line longer than 1 MiB");
  if (rc != CURLE_OK) fail("GET " + path + ": " + curl_problem(rc, errbuf, timeout_ms));
  if (s.status != 200)
    fail("GET " + path + " answered HTTP " + std::to_string(s.status) + said_in(s.error_body));
  fail("GET " + path + ": the event stream ended");
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

unsigned days_in_month(unsigned y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at `pos`, advancing it.
std::optional<unsigned> digits(std::string_view s, size_t& pos, size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  pos += n;
  return v;
}

bool expect(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  pos++;
  return true;
}

// ".123456789": up to nine digits count, further ones (finer than a ns) are dropped.
std::optional<int64_t> fraction_ns(std::string_view s, size_t& pos) {
  if (pos >= s.size() || s[pos] != '.') return 0;
  pos++;
  int64_t ns = 0;
  size_t n = 0;
  for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; pos++, n++)
    if (n < 9) ns = ns * 10 + (s[pos] - '0');
  if (n == 0) return std::nullopt;
  for (; n < 9; n++) ns *= 10;
  return ns;
}

// "Z" or "+HH:MM" / "-HH:MM", as seconds east of UTC; must end the text.
std::optional<int64_t> zone_offset_s(std::string_view s, size_t& pos) {
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    pos++;
    return pos == s.size() ? std::optional<int64_t>(0) : std::nullopt;
  }
  if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) return std::nullopt;
  int64_t sign = s[pos++] == '-' ? -1 : 1;
  auto hh = digits(s, pos, 2);
  if (!hh || !expect(s, pos, ':')) return std::nullopt;
  auto mm = digits(s, pos, 2);
  if (!mm || *hh > 23 || *mm > 59 || pos != s.size()) return std::nullopt;
  return sign * (*hh * 3600 + *mm * 60);
}

}  // namespace

std::optional<int64_t> parse_rfc3339_ns(std::string_view s) {
  size_t pos = 0;
  auto y = digits(s, pos, 4);
  if (!y || !expect(s, pos, '-')) return std::nullopt;
  auto mo = digits(s, pos, 2);
  if (!mo || !expect(s, pos, '-')) return std::nullopt;
  auto d = digits(s, pos, 2);
  if (!d || pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
    return std::nullopt;
  pos++;
  auto h = digits(s, pos, 2);
  if (!h || !expect(s, pos, ':')) return std::nullopt;
  auto mi = digits(s, pos, 2);
  if (!mi || !expect(s, pos, ':')) return std::nullopt;
  auto sec = digits(s, pos, 2);  // 60: a leap second, as RFC 3339 allows
  if (!sec || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *sec > 60)
    return std::nullopt;
  auto frac = fraction_ns(s, pos);
  auto zone = zone_offset_s(s, pos);
  if (!frac || !zone || *d > days_in_month(*y, *mo)) return std::nullopt;
  int64_t secs = days_from_civil(*y, *mo, *d) * 86400 + *h * 3600 + *mi * 60 + *sec - *zone;
  // Nanoseconds since 1970 fit int64 only for 1677..2262; Go's zero time
  // (year 1) and anything else outside is "no time", not an overflow.
  constexpr int64_t kMaxSecs = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  if (secs < -kMaxSecs || secs > kMaxSecs) return std::nullopt;
  return secs * 1'000'000'000 + *frac;
}

}  // namespace capscope
