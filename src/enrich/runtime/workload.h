// Which workload owns a container's pod, from what the node knows: the pod's
// name, labels and annotations as the runtime reports them. There is no API
// server to ask for ownerReferences, so each answer says how it was known
// (workload_from), and a name is only read where Kubernetes' naming leaves no
// doubt. First match wins:
//
//  "owner"   the pod annotation (or, outside Kubernetes, the container label)
//            capscope.io/workload: "Kind/name", e.g. "Deployment/web": for
//            users who want to be exact (custom controllers, Argo Rollouts...).
//            A malformed value is ignored.
//  "labels"  what Kubernetes' controllers put on their pods:
//            job-name (or batch.kubernetes.io/job-name) -> Job, or CronJob when
//              the Job is named "<cronjob>-<scheduled minute since the epoch>"
//              (8 digits, 2016..2100, cronjob name <= 52 characters);
//            statefulset.kubernetes.io/pod-name + controller-revision-hash
//              -> StatefulSet: the pod name "<set>-<ordinal>" less its ordinal;
//            pod-template-generation -> DaemonSet: pod "<daemonset>-<5 random>";
//            pod-template-hash H -> Deployment: pod "<deployment>-<H>-<5 random>".
//  "name"    only when the runtime gave no pod labels (so none of the above
//            could show), from the shape of a generated pod name:
//              "<x>-<minute>-<5 random>" -> CronJob x;
//              "<x>-<hash>-<5 random>", hash a pod-template-hash (a 32-bit
//                number, 7 to 10 digits, written in "456789bcdf") -> Deployment x;
//              "<x>-<5 random>" -> kind "DaemonSet|Job|ReplicaSet": one of those
//                (or a ReplicationController), the name cannot tell which.
//  "pod"     any other pod: kind "Pod", the pod's own name (also every podman
//            pod, which has no Kubernetes namespace and no controller).
// Outside any pod, with no hint, all three stay empty.
//
// "5 random" is Kubernetes' generateName suffix: 5 of "bcdfghjklmnpqrstvwxz2456789".
// Generated names are cut to 63 characters, so a 63-character pod name may have
// lost the end of its controller's name: such names are not read (a Deployment's
// still is when its hash label shows where the name ends).
#pragma once

#include <string_view>

#include "enrich/runtime/container_info.h"

namespace capscope {

// Annotation (pod) or label (container) that names the workload outright.
inline constexpr std::string_view kWorkloadHintKey = "capscope.io/workload";

// Sets info.workload, workload_kind and workload_from from the rest of info
// (clearing them first). Pure: no I/O, no clock.
void derive_workload(ContainerInfo& info);

}  // namespace capscope
