{{/* The chart name. */}}
{{- define "sous.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name. */}}
{{- define "sous.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "sous.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "sous.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the host pods. */}}
{{- define "sous.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sous.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the host runs as. */}}
{{- define "sous.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sous.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when the hosts elect a leader: always when asked, else with more than one replica. */}}
{{- define "sous.leaderElect" -}}
{{- $mode := toString .Values.leaderElection.enabled }}
{{- if eq $mode "true" }}true
{{- else if eq $mode "false" }}
{{- if gt (int .Values.replicas) 1 }}
{{- fail "leaderElection.enabled=false needs replicas: 1 (two hosts would fight over the same children)" }}
{{- end }}
{{- else }}
{{- fail (printf "leaderElection.enabled must be true or false, not %q" $mode) }}
{{- end }}
{{- end }}
