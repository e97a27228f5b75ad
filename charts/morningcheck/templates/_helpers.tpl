{{/* The chart name, or nameOverride. */}}
{{- define "morningcheck.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: fullnameOverride, else the release name when it
contains the chart name, else `<release>-<chart>`. Truncated so that suffixes such as
`-controller` still fit in 63 characters.
*/}}
{{- define "morningcheck.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "morningcheck.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "morningcheck.labels" -}}
helm.sh/chart: {{ include "morningcheck.chart" . }}
{{ include "morningcheck.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: morningcheck
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the CronJob's objects and pods (`morningcheck run`). */}}
{{- define "morningcheck.runLabels" -}}
helm.sh/chart: {{ include "morningcheck.chart" . }}
{{ include "morningcheck.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: run
app.kubernetes.io/part-of: morningcheck
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "morningcheck.selectorLabels" -}}
app.kubernetes.io/name: {{ include "morningcheck.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "morningcheck.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "morningcheck.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when the operator runs with leader election: by value, or with more than one replica. */}}
{{- define "morningcheck.leaderElect" -}}
{{- if and .Values.controller.enabled (or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1)) }}true{{ end }}
{{- end }}

{{/* The Lease's name. */}}
{{- define "morningcheck.leaseName" -}}
{{- default (printf "%s-leader" (include "morningcheck.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The container image: repository:tag, with @digest when set. */}}
{{- define "morningcheck.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Namespaces where Secrets may be read: rbac.secretNamespaces, else the release namespace. */}}
{{- define "morningcheck.secretNamespaces" -}}
{{- if .Values.rbac.secretNamespaces }}
{{- toYaml (uniq .Values.rbac.secretNamespaces) }}
{{- else }}
{{- toYaml (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{/* Subjects of every binding: the operator's ServiceAccount. */}}
{{- define "morningcheck.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: {{ include "morningcheck.serviceAccountName" . }}
    namespace: {{ .Release.Namespace }}
{{- end }}
