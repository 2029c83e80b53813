// The OCI hook's input: the state a runtime writes on the hook's stdin (fixtures are
// what podman 4.3 with runc 1.1 wrote here, and what containerd's and CRI-O's
// annotations look like), and the identity a Kubernetes runtime's annotations give.
#include "enrich/runtime/oci_state.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace capscope {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(CAPSCOPE_FIXTURES) + "/runtime/oci-state/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(OciState, PodmansCreateRuntimeStateParses) {
  std::string error;
  auto s = parse_oci_state(fixture("podman-createRuntime.json"), &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->id, "e53a61d3e54ba16923ea548216a794b986ae69bae769134b2b4ea404410ff62d");
  EXPECT_EQ(s->status, "creating");
  EXPECT_EQ(s->pid, 24953u);
  EXPECT_EQ(s->bundle,
            "/var/lib/containers/storage/overlay-containers/"
            "e53a61d3e54ba16923ea548216a794b986ae69bae769134b2b4ea404410ff62d/userdata");
  EXPECT_EQ(s->annotations.at("io.container.manager"), "libpod");
  EXPECT_FALSE(is_sandbox(s->annotations));
  EXPECT_FALSE(identity_from_annotations(s->id, s->annotations))
      << "podman puts no name in its annotations";
}

TEST(OciState, KubernetesRuntimesNameTheContainerAndPodInTheirAnnotations) {
  std::string error;
  auto containerd = parse_oci_state(fixture("containerd-cri.json"), &error);
  ASSERT_TRUE(containerd) << error;
  auto c = identity_from_annotations(containerd->id, containerd->annotations);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->runtime, "containerd");
  EXPECT_EQ(c->name, "nginx");
  EXPECT_EQ(c->pod_name, "web-7d4b9c8f5d-x2x4q");
  EXPECT_EQ(c->pod_namespace, "shop");
  EXPECT_EQ(c->pod_uid, "0f4c2a8e-6b1d-4e4f-9a51-2f0c7f1d9b33");
  EXPECT_TRUE(c->pod_labels.empty()) << "pod labels are not in a container's annotations";

  auto crio = parse_oci_state(fixture("crio.json"), &error);
  ASSERT_TRUE(crio) << error;
  auto o = identity_from_annotations(crio->id, crio->annotations);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->runtime, "cri-o");
  EXPECT_EQ(o->name, "coredns");
  EXPECT_EQ(o->pod_name, "coredns-5d78c9869d-8kq2r");
  EXPECT_EQ(o->pod_namespace, "kube-system");

  auto pause = parse_oci_state(fixture("containerd-sandbox.json"), &error);
  ASSERT_TRUE(pause) << error;
  EXPECT_TRUE(is_sandbox(pause->annotations));
}

TEST(OciState, WhatAHookCannotActOnIsAOneLineErrorNamingTheField) {
  const std::string id(64, 'a');
  struct Case {
    std::string text, expected;
  } cases[] = {
      {"", "not a JSON object"},
      {"[1]", "not a JSON object"},
      {R"({"pid": 5})", "no \"id\""},
      {R"({"id": 7, "pid": 5})", "\"id\" is not a string"},
      {R"({"id": "../x", "pid": 5})", "not a container id"},
      {R"({"id": "a\nb", "pid": 5})", "not a container id"},
      {R"({"id": ")" + id + R"("})", "no \"pid\": run the hook at createRuntime"},
      {R"({"id": ")" + id + R"(", "status": "stopped", "pid": 0})", "no \"pid\""},
      {R"({"id": ")" + id + R"(", "pid": -3})", "no \"pid\""},
      {R"({"id": ")" + id + R"(", "pid": 5, "annotations": [1]})", "not an object"},
      {R"({"id": ")" + id + R"(", "pid": 5, "annotations": {"a": 1}})",
       "annotation \"a\" is not a string"},
      {std::string(kMaxOciStateBytes + 1, ' '), "over"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_oci_state(c.text, &error)) << c.text.substr(0, 60);
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.text.substr(0, 60) << ": " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace capscope
