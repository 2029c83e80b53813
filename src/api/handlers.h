// The calls of the CapscopeAgent service (proto/capscope/v1/capscope.proto)
// apart from their transport: request in, response or status out, against a
// Backend. The gRPC service (server.cpp) is a thin layer over these, and the
// fuzzer (fuzz/api_fuzz.cpp) drives them with arbitrary requests.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>

#include "api/backend.h"
#include "capscope/v1/capscope.pb.h"

namespace capscope::api {

inline constexpr const char* kApiVersion = "v1";

grpc::Status list_profiles(Backend& b, const v1::ListProfilesRequest& req,
                           v1::ListProfilesResponse* resp);
grpc::Status get_profile(Backend& b, const v1::GetProfileRequest& req, v1::Profile* resp);
grpc::Status advise(Backend& b, const v1::AdviseRequest& req, v1::AdviseResponse* resp);
grpc::Status add_policy(Backend& b, const v1::AddPolicyRequest& req, v1::AddPolicyResponse* resp);
grpc::Status delete_policy(Backend& b, const v1::DeletePolicyRequest& req,
                           v1::DeletePolicyResponse* resp);
grpc::Status list_policies(Backend& b, const v1::ListPoliciesRequest& req,
                           v1::ListPoliciesResponse* resp);
grpc::Status get_health(Backend& b, const v1::GetHealthRequest& req, v1::GetHealthResponse* resp);
// `wait`: what the call's deadline leaves the agent to wait for the runtime.
grpc::Status announce_container(Backend& b, const v1::AnnounceContainerRequest& req,
                                std::chrono::milliseconds wait,
                                v1::AnnounceContainerResponse* resp);
grpc::Status get_version(const v1::GetVersionRequest& req, v1::GetVersionResponse* resp);

// The summary fields of a profile, as ListProfiles and GetProfile give them.
void fill_summary(const profile::Profile& p, v1::ProfileSummary* out);

}  // namespace capscope::api
