#include <gtest/gtest.h>

#include <string>

#include "enrich/runtime/workload.h"

using namespace capscope;

namespace {

// A container in a Kubernetes pod, as a CRI runtime reports it: the kubelet's
// io.kubernetes.* sandbox labels plus the pod's own labels.
ContainerInfo k8s(const std::string& pod, const Labels& labels = {}) {
  ContainerInfo c;
  c.runtime = "containerd";
  c.pod_name = pod;
  c.pod_namespace = "default";
  c.pod_labels = labels;
  c.pod_labels["io.kubernetes.pod.name"] = pod;
  c.pod_labels["io.kubernetes.pod.namespace"] = "default";
  c.pod_labels["io.kubernetes.pod.uid"] = "0d3c2c4e-2f5e-4f3a-9c61-6c1f0c1e2a11";
  return c;
}

// "Kind name (from)", or "" when nothing was derived.
std::string derived(ContainerInfo c) {
  derive_workload(c);
  if (c.workload_kind.empty() && c.workload.empty() && c.workload_from.empty()) return "";
  return c.workload_kind + " " + c.workload + " (" + c.workload_from + ")";
}

}  // namespace

TEST(Workload, HintAnnotationNamesTheOwner) {
  auto c = k8s("web-5d8f6c9b7-x7k2p", {{"pod-template-hash", "5d8f6c9b7"}});
  c.pod_annotations[std::string(kWorkloadHintKey)] = "Rollout/checkout";
  EXPECT_EQ(derived(c), "Rollout checkout (owner)");  // wins over the labels
}

TEST(Workload, HintLabelOnAContainerOutsideKubernetes) {
  ContainerInfo c;
  c.runtime = "docker";
  c.labels[std::string(kWorkloadHintKey)] = "Compose/shop";
  EXPECT_EQ(derived(c), "Compose shop (owner)");
}

TEST(Workload, MalformedHintIsIgnored) {
  for (const char* hint : {"deployment/web", "Deployment/", "Deployment", "/web", "Deployment/a/b",
                           "Deploy-ment/web", "Deployment/we b"}) {
    auto c = k8s("web-0");
    c.pod_annotations[std::string(kWorkloadHintKey)] = hint;
    EXPECT_EQ(derived(c), "Pod web-0 (pod)") << hint;
  }
}

TEST(Workload, JobFromLabels) {
  EXPECT_EQ(derived(k8s("pi-x7k2p", {{"job-name", "pi"}, {"controller-uid", "u"}})),
            "Job pi (labels)");
  EXPECT_EQ(derived(k8s("pi-x7k2p", {{"batch.kubernetes.io/job-name", "pi"}})), "Job pi (labels)");
  // Indexed Job: the pod name carries the index, the label the Job's name.
  EXPECT_EQ(derived(k8s("work-3-x7k2p", {{"job-name", "work"}})), "Job work (labels)");
}

TEST(Workload, CronJobFromItsJobsName) {
  // 28948950 is 2025-01-15 10:30 UTC in minutes since the epoch.
  EXPECT_EQ(derived(k8s("backup-28948950-x7k2p", {{"job-name", "backup-28948950"}})),
            "CronJob backup (labels)");
  EXPECT_EQ(derived(k8s("db-backup-28948950-x7k2p", {{"job-name", "db-backup-28948950"}})),
            "CronJob db-backup (labels)");
}

TEST(Workload, JobsThatOnlyLookLikeCronJobs) {
  auto job = [](const std::string& name) {
    return derived(k8s(name + "-x7k2p", {{"job-name", name}}));
  };
  EXPECT_EQ(job("backup-20250115"), "Job backup-20250115 (labels)");      // a date: 2008 in minutes
  EXPECT_EQ(job("backup-1736937000"), "Job backup-1736937000 (labels)");  // seconds
  EXPECT_EQ(job("backup-2894895"), "Job backup-2894895 (labels)");        // 7 digits
  EXPECT_EQ(job("backup-68374080"), "Job backup-68374080 (labels)");      // 2100
  EXPECT_EQ(job("backup-2894895x"), "Job backup-2894895x (labels)");
  std::string long_name(53, 'a');  // a CronJob's name has at most 52 characters
  EXPECT_EQ(job(long_name + "-28948950"), "Job " + long_name + "-28948950 (labels)");
  EXPECT_EQ(job(std::string(52, 'a') + "-28948950"),
            "CronJob " + std::string(52, 'a') + " (labels)");
}

TEST(Workload, StatefulSetFromLabels) {
  auto sts = [](const std::string& pod, Labels extra = {}) {
    extra["statefulset.kubernetes.io/pod-name"] = pod;
    extra["controller-revision-hash"] = "web-6b9c8d7f5c";
    return derived(k8s(pod, extra));
  };
  EXPECT_EQ(sts("web-0"), "StatefulSet web (labels)");
  EXPECT_EQ(sts("db-main-12"), "StatefulSet db-main (labels)");
  EXPECT_EQ(sts("web-3", {{"apps.kubernetes.io/pod-index", "3"}}), "StatefulSet web (labels)");
  // Lookalikes: the labels say StatefulSet, the name is not "<set>-<ordinal>".
  EXPECT_EQ(sts("web-3", {{"apps.kubernetes.io/pod-index", "4"}}), "Pod web-3 (pod)");
  EXPECT_EQ(sts("web-01"), "Pod web-01 (pod)");
  EXPECT_EQ(sts("web-x"), "Pod web-x (pod)");
  EXPECT_EQ(sts("web"), "Pod web (pod)");
  // Without controller-revision-hash the pod-name label alone is not enough.
  EXPECT_EQ(derived(k8s("web-0", {{"statefulset.kubernetes.io/pod-name", "web-0"}})),
            "Pod web-0 (pod)");
}

TEST(Workload, DaemonSetFromLabels) {
  Labels ds{{"controller-revision-hash", "6d5bc8d7b9"}, {"pod-template-generation", "1"}};
  EXPECT_EQ(derived(k8s("fluentd-x7k2p", ds)), "DaemonSet fluentd (labels)");
  EXPECT_EQ(derived(k8s("kube-proxy-2b4zq", ds)), "DaemonSet kube-proxy (labels)");
  // Not a generated name: vowels are never in the random suffix.
  EXPECT_EQ(derived(k8s("fluentd-abcde", ds)), "Pod fluentd-abcde (pod)");
  EXPECT_EQ(derived(k8s("fluentd-x7k2", ds)), "Pod fluentd-x7k2 (pod)");
  // 63 characters: generateName may have cut the DaemonSet's name.
  std::string capped = std::string(57, 'a') + "-x7k2p";
  ASSERT_EQ(capped.size(), 63u);
  EXPECT_EQ(derived(k8s(capped, ds)), "Pod " + capped + " (pod)");
}

TEST(Workload, DeploymentFromLabels) {
  Labels rs{{"pod-template-hash", "5d8f6c9b7"}, {"app", "web"}};
  EXPECT_EQ(derived(k8s("web-5d8f6c9b7-x7k2p", rs)), "Deployment web (labels)");
  EXPECT_EQ(derived(k8s("my-web-app-5d8f6c9b7-x7k2p", rs)), "Deployment my-web-app (labels)");
  // The hash label does not match the name: not read.
  EXPECT_EQ(derived(k8s("web-7f9c4d5b8-x7k2p", rs)), "Pod web-7f9c4d5b8-x7k2p (pod)");
  EXPECT_EQ(derived(k8s("web-5d8f6c9b7", rs)), "Pod web-5d8f6c9b7 (pod)");
}

TEST(Workload, DeploymentAtTheNameLengthCap) {
  Labels rs{{"pod-template-hash", "5d8f6c9b7"}};
  // ReplicaSet "<48>-5d8f6c9b7" is 58 characters: generateName keeps it and
  // drops the '-' it would have added.
  std::string deploy(48, 'd');
  std::string pod = deploy + "-5d8f6c9b7" + "x7k2p";
  ASSERT_EQ(pod.size(), 63u);
  EXPECT_EQ(derived(k8s(pod, rs)), "Deployment " + deploy + " (labels)");
  // 47 characters: "<rs>-" is exactly 58, nothing cut.
  std::string pod47 = std::string(47, 'd') + "-5d8f6c9b7-x7k2p";
  EXPECT_EQ(derived(k8s(pod47, rs)), "Deployment " + std::string(47, 'd') + " (labels)");
  // Longer: the hash itself was cut, the Deployment's name cannot be told.
  std::string cut = (std::string(52, 'd') + "-5d8f6c9b7").substr(0, 58) + "x7k2p";
  EXPECT_EQ(derived(k8s(cut, rs)), "Pod " + cut + " (pod)");
}

TEST(Workload, NamesAreReadOnlyWithoutPodLabels) {
  // No pod labels from the runtime (only the kubelet's own): the name's shape.
  EXPECT_EQ(derived(k8s("web-5d8f6c9b7-x7k2p")), "Deployment web (name)");
  EXPECT_EQ(derived(k8s("web-7c5d4f8b96-x7k2p")), "Deployment web (name)");  // 10 characters
  EXPECT_EQ(derived(k8s("backup-28948950-x7k2p")), "CronJob backup (name)");
  EXPECT_EQ(derived(k8s("fluentd-x7k2p")), "DaemonSet|Job|ReplicaSet fluentd (name)");
  // With the pod's labels known, the controllers' labels would be there: a
  // Deployment-shaped name without pod-template-hash is some other owner's.
  EXPECT_EQ(derived(k8s("web-5d8f6c9b7-x7k2p", {{"app", "web"}})), "Pod web-5d8f6c9b7-x7k2p (pod)");
  EXPECT_EQ(derived(k8s("fluentd-x7k2p", {{"app", "fluentd"}})), "Pod fluentd-x7k2p (pod)");
}

TEST(Workload, NameLookalikesAreNotDerived) {
  // 1 and 3 are not in Kubernetes' random alphabet, nor vowels.
  EXPECT_EQ(derived(k8s("my-app-12345")), "Pod my-app-12345 (pod)");
  EXPECT_EQ(derived(k8s("my-app-hello")), "Pod my-app-hello (pod)");
  EXPECT_EQ(derived(k8s("my-app-x7k2")), "Pod my-app-x7k2 (pod)");
  EXPECT_EQ(derived(k8s("web-0")), "Pod web-0 (pod)");
  EXPECT_EQ(derived(k8s("x7k2p")), "Pod x7k2p (pod)");
  EXPECT_EQ(derived(k8s("-x7k2p")), "Pod -x7k2p (pod)");
  // Hash-shaped but not a pod-template-hash: a leading zero ('4'), a number
  // over 2^32-1, letters outside "456789bcdf", too short. The name is still
  // generated, so only "<x>-<5 random>" is said.
  EXPECT_EQ(derived(k8s("web-4d8f6c9b7-x7k2p")), "DaemonSet|Job|ReplicaSet web-4d8f6c9b7 (name)");
  EXPECT_EQ(derived(k8s("web-cccccccccc-x7k2p")), "DaemonSet|Job|ReplicaSet web-cccccccccc (name)");
  EXPECT_EQ(derived(k8s("web-bcdfghjk-x7k2p")), "DaemonSet|Job|ReplicaSet web-bcdfghjk (name)");
  EXPECT_EQ(derived(k8s("web-59bd6c-x7k2p")), "DaemonSet|Job|ReplicaSet web-59bd6c (name)");
  // A date is not a CronJob's minute.
  EXPECT_EQ(derived(k8s("report-20250115-x7k2p")),
            "DaemonSet|Job|ReplicaSet report-20250115 (name)");
  // At the 63-character cap the base may be cut: not read.
  std::string capped = std::string(57, 'a') + "-x7k2p";
  EXPECT_EQ(derived(k8s(capped)), "Pod " + capped + " (pod)");
}

TEST(Workload, BarePodIsItsOwnWorkload) {
  EXPECT_EQ(derived(k8s("debug", {{"run", "debug"}})), "Pod debug (pod)");
}

TEST(Workload, PodmanPodIsAPod) {
  ContainerInfo c;
  c.runtime = "podman";
  c.pod_name = "web-x7k2p";  // looks generated, but podman has no controllers
  c.pod_id = "abc";
  c.pod_labels = {{"pod-template-hash", "x"}};
  EXPECT_EQ(derived(c), "Pod web-x7k2p (pod)");
}

TEST(Workload, OutsideAPodNothingIsDerived) {
  ContainerInfo c;
  c.runtime = "docker";
  c.name = "web";
  c.labels = {{"com.docker.compose.service", "web"}};
  EXPECT_EQ(derived(c), "");
  // Stale values from an earlier derivation are cleared.
  c.workload = "old";
  c.workload_kind = "Deployment";
  c.workload_from = "labels";
  derive_workload(c);
  EXPECT_TRUE(c.workload.empty() && c.workload_kind.empty() && c.workload_from.empty());
}
