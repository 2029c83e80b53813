{{/* The chart's name, or nameOverride. */}}
{{- define "capscope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name when it holds the chart's name. */}}
{{- define "capscope.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "capscope.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "capscope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "capscope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "capscope.labels" -}}
{{ include "capscope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "capscope.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "capscope.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "capscope.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The port of agent.metrics-address (HOST:PORT), or "" when it is off. */}}
{{- define "capscope.metricsPort" -}}
{{- $addr := toString (index .Values.agent "metrics-address") -}}
{{- if $addr -}}
{{- regexReplaceAll "^.*:" $addr "" -}}
{{- end -}}
{{- end -}}

{{/* A file path from a value, "unix://" taken off (server-address, sockets). */}}
{{- define "capscope.path" -}}
{{- trimPrefix "unix://" (toString .) -}}
{{- end -}}

{{/* A key of .Values.agent, or the agent's default for it when it is "". */}}
{{- define "capscope.agentValue" -}}
{{- $defaults := dict "db" "/var/lib/capscope/capscope.db" "server-address" "unix:///var/run/capscope/capscope.sock" "policy-dir" "/etc/capscope/policies" "containerd-socket" "/run/containerd/containerd.sock" "crio-socket" "/var/run/crio/crio.sock" "podman-socket" "/run/podman/podman.sock" "docker-socket" "/var/run/docker.sock" -}}
{{- default (index $defaults .key) (index .root.Values.agent .key) | toString -}}
{{- end -}}

{{/*
The runtime socket directories to mount, as YAML (volume name -> directory): the
directory of the socket the agent will use, for each runtime enabled.
*/}}
{{- define "capscope.socketDirs" -}}
{{- $dirs := dict -}}
{{- range $runtime := list "containerd" "crio" "podman" -}}
{{- if index $.Values.runtimeSockets $runtime -}}
{{- $socket := include "capscope.agentValue" (dict "root" $ "key" (printf "%s-socket" $runtime)) -}}
{{- $_ := set $dirs (printf "%s-socket" $runtime) (dir (include "capscope.path" $socket)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $dirs -}}
{{- end -}}

{{/* The agent's configuration file: the keys of .Values.agent that are set. */}}
{{- define "capscope.config" -}}
{{- $config := dict -}}
{{- range $key, $value := .Values.agent -}}
{{- if kindIs "slice" $value -}}
{{- if $value -}}
{{- $_ := set $config $key $value -}}
{{- end -}}
{{- else if not (and (kindIs "string" $value) (eq $value "")) -}}
{{- $_ := set $config $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
