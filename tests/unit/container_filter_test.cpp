// Identity filters: what is decided from the cgroup's id alone, what waits for the
// runtime, and how the criteria combine (AND across flags, OR within one).
#include "filter/container_filter.h"

#include <gtest/gtest.h>

namespace capscope::filter {
namespace {

const std::string kId = "3f2a9c0e8b7f6a5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0e9";

ContainerRef ref() {
  ContainerRef r;
  r.runtime = "containerd";
  r.id = kId;
  return r;
}

ContainerInfo xwing() {
  ContainerInfo i;
  i.id = kId;
  i.name = "spaceship";
  i.pod_id = "sandbox1";
  i.pod_name = "xwing";
  i.pod_namespace = "default";
  i.pod_labels = {{"app", "xwing"}, {"org", "alliance"}};
  i.labels = {{"tier", "front"}};
  return i;
}

TEST(ContainerFilter, NoSelectionKeepsEverything) {
  ContainerFilter f{ContainerSelection{}};
  EXPECT_FALSE(f.active());
  EXPECT_EQ(f.decide(ContainerRef{}, nullptr), Decision::Keep);
}

TEST(ContainerFilter, HostProcessesAreInNoPod) {
  ContainerSelection s;
  s.pods = {"xwing"};
  EXPECT_EQ(ContainerFilter(s).decide(ContainerRef{}, nullptr), Decision::Drop);
}

TEST(ContainerFilter, WaitsForTheRuntimeUnlessTheIdDecides) {
  ContainerSelection by_pod;
  by_pod.pods = {"xwing"};
  EXPECT_EQ(ContainerFilter(by_pod).decide(ref(), nullptr), Decision::Wait);
  ContainerSelection by_id;
  by_id.containers = {kId.substr(0, 12)};
  EXPECT_EQ(ContainerFilter(by_id).decide(ref(), nullptr), Decision::Keep);
  ContainerSelection by_name;
  by_name.containers = {"spaceship"};
  EXPECT_EQ(ContainerFilter(by_name).decide(ref(), nullptr), Decision::Wait);
  auto info = xwing();
  EXPECT_EQ(ContainerFilter(by_name).decide(ref(), &info), Decision::Keep);
}

TEST(ContainerFilter, PodByNameOrNamespaceSlashName) {
  auto info = xwing();
  ContainerSelection s;
  s.pods = {"default/xwing"};
  EXPECT_TRUE(ContainerFilter(s).matches(info));
  s.pods = {"kube-system/xwing"};
  EXPECT_FALSE(ContainerFilter(s).matches(info));
  s.pods = {"tiefighter", "xwing"};  // OR within one flag
  EXPECT_TRUE(ContainerFilter(s).matches(info));
}

TEST(ContainerFilter, CriteriaCombineWithAnd) {
  auto info = xwing();
  ContainerSelection s;
  s.namespaces = {"default"};
  s.selector = LabelSelector::parse("org=alliance");
  EXPECT_TRUE(ContainerFilter(s).matches(info));
  s.selector = LabelSelector::parse("org=empire");
  EXPECT_FALSE(ContainerFilter(s).matches(info));
  s.selector = LabelSelector::parse("org=alliance");
  s.namespaces = {"prod"};
  EXPECT_FALSE(ContainerFilter(s).matches(info));
}

TEST(ContainerFilter, SelectorUsesPodLabelsInAPodAndContainerLabelsOutside) {
  auto info = xwing();
  ContainerSelection s;
  s.selector = LabelSelector::parse("tier=front");
  EXPECT_FALSE(ContainerFilter(s).matches(info)) << "in a pod, the pod's labels";
  info.pod_id.clear();
  info.pod_name.clear();
  EXPECT_TRUE(ContainerFilter(s).matches(info)) << "a plain container's own labels";
}

TEST(ContainerFilter, ShortIdPrefixesAreNotIds) {
  auto info = xwing();
  ContainerSelection s;
  s.containers = {"3f"};  // too short to be meant as an id
  EXPECT_FALSE(ContainerFilter(s).matches(info));
  EXPECT_EQ(s.describe(), "container 3f");
}

}  // namespace
}  // namespace capscope::filter
