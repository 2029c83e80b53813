#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "enrich/cgroup_path.h"

using namespace capscope;

namespace {

// Ids as the runtimes print them (64 lowercase hex digits).
const std::string kId = "cbbb7643c794be8442ecd5ffe36da2251f66e05a21a03afb6594fd7bcf70a2a8";
const std::string kId2 = "cfb961400ff25811d22d139a10f6a62efef53c2ecc11af47bc911a7f9a2ac1f7";
const std::string kPodUid = "a9dd6b2c-4e1f-4f7e-9d7a-3c1b2e8f5d60";
std::string underscored(std::string s) {
  for (auto& c : s)
    if (c == '-') c = '_';
  return s;
}

struct Expect {
  std::string runtime, id, pod_uid, qos;
};

void expect_ref(const std::string& path, const Expect& e) {
  SCOPED_TRACE(path);
  ContainerRef r = parse_container_cgroup(path);
  EXPECT_EQ(r.runtime, e.runtime);
  EXPECT_EQ(r.id, e.id);
  EXPECT_EQ(r.pod_uid, e.pod_uid);
  EXPECT_EQ(r.qos, e.qos);
}

TEST(CgroupPath, Docker) {
  expect_ref("/docker/" + kId, {"docker", kId, "", ""});
  expect_ref("/system.slice/docker-" + kId + ".scope", {"docker", kId, "", ""});
  // systemd running inside the container adds its own sub-cgroups.
  expect_ref("/system.slice/docker-" + kId + ".scope/init.scope", {"docker", kId, "", ""});
  expect_ref("/docker/" + kId + "/system.slice/cron.service", {"docker", kId, "", ""});
  // rootless docker
  expect_ref("/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + kId + ".scope",
             {"docker", kId, "", ""});
  // GitHub Actions job containers
  expect_ref("/actions_job/" + kId, {"docker", kId, "", ""});
}

TEST(CgroupPath, ContainerdPlain) {
  expect_ref("/default/" + kId, {"containerd", kId, "", ""});
  expect_ref("/buildkit/" + kId, {"containerd", kId, "", ""});
}

TEST(CgroupPath, KubernetesCgroupfs) {
  expect_ref("/kubepods/burstable/pod" + kPodUid + "/" + kId,
             {"containerd", kId, kPodUid, "burstable"});
  expect_ref("/kubepods/pod" + kPodUid + "/" + kId, {"containerd", kId, kPodUid, "guaranteed"});
  expect_ref("/kubepods/besteffort/pod" + kPodUid + "/" + kId,
             {"containerd", kId, kPodUid, "besteffort"});
  // kubelet --cgroup-root=/kubelet
  expect_ref("/kubelet/kubepods/besteffort/pod" + kPodUid + "/" + kId,
             {"containerd", kId, kPodUid, "besteffort"});
  // Static pods' uids are hashes, not UUIDs.
  expect_ref("/kubepods/burstable/pod0e2f1b9c5a6d4e8f7a3b2c1d0e9f8a7b/" + kId,
             {"containerd", kId, "0e2f1b9c5a6d4e8f7a3b2c1d0e9f8a7b", "burstable"});
}

TEST(CgroupPath, KubernetesSystemd) {
  std::string u = underscored(kPodUid);
  expect_ref("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u +
                 ".slice/cri-containerd-" + kId + ".scope",
             {"containerd", kId, kPodUid, "burstable"});
  expect_ref("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u +
                 ".slice/cri-containerd-" + kId + ".scope",
             {"containerd", kId, kPodUid, "besteffort"});
  expect_ref("/kubepods.slice/kubepods-pod" + u + ".slice/cri-containerd-" + kId + ".scope",
             {"containerd", kId, kPodUid, "guaranteed"});
  // cri-dockerd with the systemd driver
  expect_ref("/kubepods.slice/kubepods-pod" + u + ".slice/docker-" + kId + ".scope",
             {"docker", kId, kPodUid, "guaranteed"});
}

TEST(CgroupPath, KindNodeNestedInDocker) {
  // A kind pod seen from the host: the pod's container wins over the node's.
  std::string u = underscored(kPodUid);
  expect_ref("/system.slice/docker-" + kId2 +
                 ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                 "kubelet-kubepods-besteffort-pod" +
                 u + ".slice/cri-containerd-" + kId + ".scope",
             {"containerd", kId, kPodUid, "besteffort"});
}

TEST(CgroupPath, CriO) {
  std::string u = underscored(kPodUid);
  std::string slice =
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice/";
  expect_ref(slice + "crio-" + kId + ".scope", {"cri-o", kId, kPodUid, "burstable"});
  expect_ref("/kubepods/besteffort/pod" + kPodUid + "/crio-" + kId,
             {"cri-o", kId, kPodUid, "besteffort"});
  // conmon monitors the container from outside: not attributed to it...
  expect_ref(slice + "crio-conmon-" + kId + ".scope", {"", "", "", ""});
  expect_ref("/kubepods/pod" + kPodUid + "/crio-conmon-" + kId, {"", "", "", ""});
  // ...but classified, with the container it watches.
  CgroupMatch m = classify_cgroup(slice + "crio-conmon-" + kId + ".scope");
  EXPECT_EQ(m.kind, CgroupKind::Monitor);
  EXPECT_EQ(m.ref.runtime, "cri-o");
  EXPECT_EQ(m.ref.id, kId);
  EXPECT_EQ(m.ref.pod_uid, kPodUid);
}

TEST(CgroupPath, Podman) {
  // Measured on this project's machines (rootful podman, cgroupfs manager).
  expect_ref("/libpod_parent/libpod-" + kId, {"podman", kId, "", ""});
  expect_ref("/machine.slice/libpod-" + kId + ".scope", {"podman", kId, "", ""});
  expect_ref("/machine.slice/libpod-" + kId + ".scope/container", {"podman", kId, "", ""});
  expect_ref("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope",
             {"podman", kId, "", ""});
  expect_ref(
      "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope/container",
      {"podman", kId, "", ""});
  // A podman pod's own cgroup (cgroupfs) and its containers.
  expect_ref("/libpod_parent/" + kId2, {"", "", "", ""});
  expect_ref("/libpod_parent/" + kId2 + "/libpod-" + kId, {"podman", kId, "", ""});
}

TEST(CgroupPath, PodmanConmon) {
  expect_ref("/machine.slice/libpod-conmon-" + kId + ".scope", {"", "", "", ""});
  EXPECT_EQ(classify_cgroup("/machine.slice/libpod-conmon-" + kId + ".scope").kind,
            CgroupKind::Monitor);
  EXPECT_EQ(classify_cgroup("/machine.slice/libpod-conmon-" + kId + ".scope").ref.id, kId);
  // cgroupfs: every conmon shares <parent>/conmon, without an id.
  CgroupMatch m = classify_cgroup("/libpod_parent/conmon");
  EXPECT_EQ(m.kind, CgroupKind::Monitor);
  EXPECT_EQ(m.ref.runtime, "podman");
  EXPECT_TRUE(m.ref.id.empty());
  EXPECT_EQ(classify_cgroup("/libpod_parent/" + kId2 + "/conmon").kind, CgroupKind::Monitor);
}

TEST(CgroupPath, Lxc) {
  expect_ref("/lxc.payload.web01", {"lxc", "web01", "", ""});
  expect_ref("/lxc.payload.web01/init.scope", {"lxc", "web01", "", ""});
  expect_ref("/lxc/web01", {"lxc", "web01", "", ""});
  expect_ref("/lxc.monitor.web01", {"", "", "", ""});
  EXPECT_EQ(classify_cgroup("/lxc.monitor.web01").kind, CgroupKind::Monitor);
  // A docker container inside an LXC one reports the inner container.
  expect_ref("/lxc.payload.web01/system.slice/docker-" + kId + ".scope", {"docker", kId, "", ""});
}

TEST(CgroupPath, HostPathsAreEmpty) {
  for (const std::string& p : std::vector<std::string>{
           "/", "", "/init.scope", "/system.slice/containerd.service",
           "/system.slice/docker.service", "/user.slice/user-1000.slice/session-3.scope",
           "/kubepods.slice/kubepods-burstable.slice", "/kubepods/burstable/pod" + kPodUid,
           "/process_api/6daf880ff4104c5be2562aa59203faec", "/machine.slice/machine-qemu.scope",
           // not 64 hex digits
           "/docker/" + kId.substr(1), "/docker/" + kId + "0",
           "/system.slice/docker-" + kId.substr(0, 63) + "g.scope",
           // a bare id outside any layout a runtime uses
           "/system.slice/foo.service/" + kId, "/a/b/" + kId}) {
    SCOPED_TRACE(p);
    EXPECT_TRUE(parse_container_cgroup(p).empty());
    EXPECT_EQ(classify_cgroup(p).kind, CgroupKind::None);
  }
}

TEST(CgroupPath, Garbage) {
  for (std::string_view p : {"////", "docker-", "/kubepods/pod/", "/kubepods-pod.slice/x", "\n\n",
                             "/lxc.payload.", "kubepods--pod.slice"})
    EXPECT_TRUE(parse_container_cgroup(p).empty()) << p;
}

TEST(CgroupPath, IsContainerId) {
  EXPECT_TRUE(is_container_id(kId));
  EXPECT_FALSE(is_container_id(kId.substr(0, 12)));
  EXPECT_FALSE(is_container_id(""));
  EXPECT_FALSE(is_container_id(std::string(63, 'a') + "z"));
}

TEST(SelectCgroupPath, V2Only) {
  EXPECT_EQ(select_cgroup_path("0::/system.slice/docker-" + kId + ".scope\n"),
            "/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(select_cgroup_path("0::/user.slice/user-0.slice/session-1.scope\n"),
            "/user.slice/user-0.slice/session-1.scope");
}

TEST(SelectCgroupPath, HybridPodmanAsMeasured) {
  // /proc/PID/cgroup of a rootful podman container on this project's machines.
  std::string p = "/libpod_parent/libpod-" + kId;
  std::string text = "9:name=systemd:" + p + "\n8:pids:" + p + "\n7:blkio:" + p +
                     "\n6:freezer:" + p + "\n5:devices:" + p + "\n4:memory:" + p +
                     "\n3:cpuset:" + p + "\n2:cpuacct:" + p + "\n1:cpu:" + p + "\n0::" + p + "\n";
  EXPECT_EQ(select_cgroup_path(text), p);
  // And of its conmon: v1 controllers in /libpod_parent/conmon, v2 at the root.
  std::string conmon =
      "9:name=systemd:/\n8:pids:/libpod_parent/conmon\n4:memory:/libpod_parent/conmon\n0::/\n";
  EXPECT_EQ(select_cgroup_path(conmon), "/libpod_parent/conmon");
}

TEST(SelectCgroupPath, V1PrefersNamedControllers) {
  // v2 mounted but unused (everything at /): the v1 paths carry the id.
  std::string text = "12:cpuset:/docker/" + kId2 + "\n11:memory:/docker/" + kId +
                     "\n10:pids:/docker/" + kId + "\n1:name=systemd:/docker/" + kId + "\n0::/\n";
  EXPECT_EQ(select_cgroup_path(text), "/docker/" + kId);
  std::string cpu_only =
      "4:cpu,cpuacct:/kubepods/besteffort/pod" + kPodUid + "/" + kId + "\n3:blkio:/\n";
  EXPECT_EQ(select_cgroup_path(cpu_only), "/kubepods/besteffort/pod" + kPodUid + "/" + kId);
  // No preferred controller names a container: the first v1 line that does.
  std::string other = "5:blkio:/\n4:devices:/docker/" + kId + "\n3:freezer:/docker/" + kId2 + "\n";
  EXPECT_EQ(select_cgroup_path(other), "/docker/" + kId);
}

TEST(SelectCgroupPath, V2WinsWhenItNamesAContainer) {
  std::string text =
      "1:name=systemd:/docker/" + kId2 + "\n0::/system.slice/docker-" + kId + ".scope\n";
  EXPECT_EQ(select_cgroup_path(text), "/system.slice/docker-" + kId + ".scope");
}

TEST(SelectCgroupPath, FallsBack) {
  // Host process on a hybrid system: the v2 path, else the first path.
  EXPECT_EQ(select_cgroup_path("9:name=systemd:/init.scope\n1:cpu:/\n0::/init.scope\n"),
            "/init.scope");
  EXPECT_EQ(select_cgroup_path("9:name=systemd:/init.scope\n1:cpu:/\n"), "/init.scope");
  EXPECT_EQ(select_cgroup_path(""), "");
  EXPECT_EQ(select_cgroup_path("garbage\nmore:garbage\n"), "");
}

TEST(SelectCgroupPath, ToleratesOddLines) {
  // CRLF, a removed cgroup, and a path with ':' in it.
  EXPECT_EQ(select_cgroup_path("0::/docker/" + kId + " (deleted)\r\n"), "/docker/" + kId);
  EXPECT_EQ(select_cgroup_path("0::/a:b\n"), "/a:b");
}

}  // namespace

namespace {

// Each name the kernel may find a pending container's cgroup by is a name the
// cgroup classifier reads the same id from, under the parents each runtime uses.
TEST(CgroupPath, ContainerCgroupNamesAreTheClassifiersOwn) {
  const std::vector<std::string> parents = {
      "/libpod_parent/",
      "/machine.slice/",
      "/docker/",
      "/system.slice/",
      "/kubepods/besteffort/pod" + kPodUid + "/",
      "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscored(kPodUid) +
          ".slice/"};
  auto names = container_cgroup_names(kId);
  EXPECT_EQ(names.size(), 7U);
  for (const auto& name : names) {
    bool read = false;
    for (const auto& parent : parents)
      read = read || parse_container_cgroup(parent + name).id == kId;
    EXPECT_TRUE(read) << name << " is read as container " << kId << " under no parent";
    EXPECT_LT(name.size(), 128U) << name;  // CS_CGROUP_NAME_LEN
  }
  // A monitor's cgroup is not the container's.
  EXPECT_EQ(std::count(names.begin(), names.end(), "libpod-conmon-" + kId + ".scope"), 0);
}

}  // namespace
