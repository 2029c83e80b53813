#include "agent/policy_manager.h"

namespace capscope::agent {

namespace {

// The capture's policy maps (BpfCapture's policy calls, bpf/capable_common.bpf.h).
class KernelPolicyTarget final : public PolicyTarget {
 public:
  explicit KernelPolicyTarget(capture::BpfCapture& cap) : cap_(cap) {}
  bool set_policies(const std::vector<policy::CompiledPolicy>& set, std::string* error) override {
    return cap_.set_policies(set, error);
  }
  bool set_cgroup_policies(uint64_t cgroup_id, uint64_t slot_bits) override {
    return cap_.set_cgroup_policies(cgroup_id, slot_bits);
  }
  void forget_cgroup(uint64_t cgroup_id) override { cap_.forget_cgroup_policies(cgroup_id); }
  uint64_t expect_container(const ContainerInfo& container) override {
    return cap_.expect_container(container);
  }
  size_t expire_expected(std::chrono::seconds age) override { return cap_.expire_expected(age); }
  [[nodiscard]] std::vector<uint64_t> policy_hits() const override { return cap_.policy_hits(); }
  [[nodiscard]] int slot_of(const CapCheck& c) const override { return c.policy_slot; }

 private:
  capture::BpfCapture& cap_;
};

}  // namespace

std::unique_ptr<PolicyTarget> kernel_policy_target(capture::BpfCapture& cap) {
  return std::make_unique<KernelPolicyTarget>(cap);
}

}  // namespace capscope::agent
