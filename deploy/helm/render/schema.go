package main

// The part of the Kubernetes API (core/v1, apps/v1) that capscope's manifests use,
// field for field as the API names them. Documents are decoded with unknown fields
// refused, so a misspelt or misplaced field fails the check; a field the manifests
// start to use must be added here first (with its API name and type).

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

type objectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type namespaceObject struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
}

type serviceAccountObject struct {
	typeMeta
	Metadata                     objectMeta             `json:"metadata"`
	AutomountServiceAccountToken *bool                  `json:"automountServiceAccountToken,omitempty"`
	ImagePullSecrets             []localObjectReference `json:"imagePullSecrets,omitempty"`
}

type configMapObject struct {
	typeMeta
	Metadata   objectMeta        `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string]string `json:"binaryData,omitempty"`
	Immutable  *bool             `json:"immutable,omitempty"`
}

type daemonSetObject struct {
	typeMeta
	Metadata objectMeta    `json:"metadata"`
	Spec     daemonSetSpec `json:"spec"`
}

type daemonSetSpec struct {
	Selector             labelSelector    `json:"selector"`
	Template             podTemplateSpec  `json:"template"`
	UpdateStrategy       *daemonSetUpdate `json:"updateStrategy,omitempty"`
	MinReadySeconds      *int32           `json:"minReadySeconds,omitempty"`
	RevisionHistoryLimit *int32           `json:"revisionHistoryLimit,omitempty"`
}

type labelSelector struct {
	MatchLabels      map[string]string  `json:"matchLabels,omitempty"`
	MatchExpressions []labelSelectorReq `json:"matchExpressions,omitempty"`
}

type labelSelectorReq struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

type daemonSetUpdate struct {
	Type          string `json:"type,omitempty"`
	RollingUpdate *struct {
		MaxUnavailable *intOrString `json:"maxUnavailable,omitempty"`
		MaxSurge       *intOrString `json:"maxSurge,omitempty"`
	} `json:"rollingUpdate,omitempty"`
}

type podTemplateSpec struct {
	Metadata objectMeta `json:"metadata"`
	Spec     podSpec    `json:"spec"`
}

type podSpec struct {
	ServiceAccountName            string                 `json:"serviceAccountName,omitempty"`
	AutomountServiceAccountToken  *bool                  `json:"automountServiceAccountToken,omitempty"`
	HostPID                       bool                   `json:"hostPID,omitempty"`
	HostNetwork                   bool                   `json:"hostNetwork,omitempty"`
	HostIPC                       bool                   `json:"hostIPC,omitempty"`
	DNSPolicy                     string                 `json:"dnsPolicy,omitempty"`
	PriorityClassName             string                 `json:"priorityClassName,omitempty"`
	NodeSelector                  map[string]string      `json:"nodeSelector,omitempty"`
	Affinity                      json.RawMessage        `json:"affinity,omitempty"`
	Tolerations                   []toleration           `json:"tolerations,omitempty"`
	TerminationGracePeriodSeconds *int64                 `json:"terminationGracePeriodSeconds,omitempty"`
	ImagePullSecrets              []localObjectReference `json:"imagePullSecrets,omitempty"`
	SecurityContext               *podSecurityContext    `json:"securityContext,omitempty"`
	Containers                    []container            `json:"containers"`
	InitContainers                []container            `json:"initContainers,omitempty"`
	Volumes                       []volume               `json:"volumes,omitempty"`
}

type localObjectReference struct {
	Name string `json:"name"`
}

type toleration struct {
	Key               string `json:"key,omitempty"`
	Operator          string `json:"operator,omitempty"`
	Value             string `json:"value,omitempty"`
	Effect            string `json:"effect,omitempty"`
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

type podSecurityContext struct {
	RunAsUser       *int64      `json:"runAsUser,omitempty"`
	RunAsGroup      *int64      `json:"runAsGroup,omitempty"`
	RunAsNonRoot    *bool       `json:"runAsNonRoot,omitempty"`
	FSGroup         *int64      `json:"fsGroup,omitempty"`
	SeccompProfile  *profileRef `json:"seccompProfile,omitempty"`
	AppArmorProfile *profileRef `json:"appArmorProfile,omitempty"`
}

type container struct {
	Name            string                `json:"name"`
	Image           string                `json:"image"`
	ImagePullPolicy string                `json:"imagePullPolicy,omitempty"`
	Command         []string              `json:"command,omitempty"`
	Args            []string              `json:"args,omitempty"`
	Env             []envVar              `json:"env,omitempty"`
	Ports           []containerPort       `json:"ports,omitempty"`
	SecurityContext *securityContext      `json:"securityContext,omitempty"`
	Resources       *resourceRequirements `json:"resources,omitempty"`
	StartupProbe    *probe                `json:"startupProbe,omitempty"`
	LivenessProbe   *probe                `json:"livenessProbe,omitempty"`
	ReadinessProbe  *probe                `json:"readinessProbe,omitempty"`
	VolumeMounts    []volumeMount         `json:"volumeMounts,omitempty"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	ValueFrom *struct {
		FieldRef *struct {
			APIVersion string `json:"apiVersion,omitempty"`
			FieldPath  string `json:"fieldPath"`
		} `json:"fieldRef,omitempty"`
		ResourceFieldRef *struct {
			ContainerName string `json:"containerName,omitempty"`
			Resource      string `json:"resource"`
			Divisor       string `json:"divisor,omitempty"`
		} `json:"resourceFieldRef,omitempty"`
	} `json:"valueFrom,omitempty"`
}

type containerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	HostPort      int32  `json:"hostPort,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
}

type securityContext struct {
	Privileged               *bool       `json:"privileged,omitempty"`
	RunAsUser                *int64      `json:"runAsUser,omitempty"`
	RunAsGroup               *int64      `json:"runAsGroup,omitempty"`
	RunAsNonRoot             *bool       `json:"runAsNonRoot,omitempty"`
	AllowPrivilegeEscalation *bool       `json:"allowPrivilegeEscalation,omitempty"`
	ReadOnlyRootFilesystem   *bool       `json:"readOnlyRootFilesystem,omitempty"`
	Capabilities             *capsSpec   `json:"capabilities,omitempty"`
	SeccompProfile           *profileRef `json:"seccompProfile,omitempty"`
	AppArmorProfile          *profileRef `json:"appArmorProfile,omitempty"`
	ProcMount                string      `json:"procMount,omitempty"`
}

type capsSpec struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// seccompProfile and appArmorProfile share their shape.
type profileRef struct {
	Type             string `json:"type"`
	LocalhostProfile string `json:"localhostProfile,omitempty"`
}

type resourceRequirements struct {
	Requests map[string]quantity `json:"requests,omitempty"`
	Limits   map[string]quantity `json:"limits,omitempty"`
}

type probe struct {
	HTTPGet *struct {
		Path   string      `json:"path,omitempty"`
		Port   intOrString `json:"port"`
		Host   string      `json:"host,omitempty"`
		Scheme string      `json:"scheme,omitempty"`
	} `json:"httpGet,omitempty"`
	TCPSocket *struct {
		Port intOrString `json:"port"`
		Host string      `json:"host,omitempty"`
	} `json:"tcpSocket,omitempty"`
	Exec *struct {
		Command []string `json:"command,omitempty"`
	} `json:"exec,omitempty"`
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int32 `json:"periodSeconds,omitempty"`
	TimeoutSeconds      int32 `json:"timeoutSeconds,omitempty"`
	SuccessThreshold    int32 `json:"successThreshold,omitempty"`
	FailureThreshold    int32 `json:"failureThreshold,omitempty"`
}

type volumeMount struct {
	Name             string `json:"name"`
	MountPath        string `json:"mountPath"`
	ReadOnly         bool   `json:"readOnly,omitempty"`
	SubPath          string `json:"subPath,omitempty"`
	MountPropagation string `json:"mountPropagation,omitempty"`
}

type volume struct {
	Name     string `json:"name"`
	HostPath *struct {
		Path string `json:"path"`
		Type string `json:"type,omitempty"`
	} `json:"hostPath,omitempty"`
	ConfigMap *struct {
		Name        string      `json:"name"`
		Items       []keyToPath `json:"items,omitempty"`
		DefaultMode *int32      `json:"defaultMode,omitempty"`
		Optional    *bool       `json:"optional,omitempty"`
	} `json:"configMap,omitempty"`
	EmptyDir *struct {
		Medium    string    `json:"medium,omitempty"`
		SizeLimit *quantity `json:"sizeLimit,omitempty"`
	} `json:"emptyDir,omitempty"`
}

type keyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode,omitempty"`
}

// intOrString is a port number or a port name (the API's IntOrString).
type intOrString struct {
	IsString bool
	Int      int32
	Str      string
}

func (v *intOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsString = true
		return json.Unmarshal(b, &v.Str)
	}
	return json.Unmarshal(b, &v.Int)
}

func (v intOrString) String() string {
	if v.IsString {
		return v.Str
	}
	return strconv.Itoa(int(v.Int))
}

// quantity is a resource quantity: "128Mi", "50m", or a plain number.
type quantity string

// The API's quantity syntax: a signed decimal number and an optional suffix
// (binary Ki..Ei, decimal m, k, M..E, or an exponent e3/E3).
var quantityRE = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`)

func (q *quantity) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		s = n.String()
	}
	if !quantityRE.MatchString(s) {
		return fmt.Errorf("%q is not a quantity (e.g. 128Mi, 50m, 1)", s)
	}
	*q = quantity(s)
	return nil
}
