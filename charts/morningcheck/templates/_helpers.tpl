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

{{/*
Labels of every object. The objects that both the operator and the CronJob use (the
ServiceAccount, the checks' and Secrets' RBAC, the NetworkPolicy) carry these alone; the
others add their component (controllerLabels, runLabels).
*/}}
{{- define "morningcheck.labels" -}}
helm.sh/chart: {{ include "morningcheck.chart" . }}
{{ include "morningcheck.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: morningcheck
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the operator's objects and pods (`morningcheck controller`). */}}
{{- define "morningcheck.controllerLabels" -}}
{{ include "morningcheck.labels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Labels of the CronJob's objects and pods (`morningcheck run`). */}}
{{- define "morningcheck.runLabels" -}}
{{ include "morningcheck.labels" . }}
app.kubernetes.io/component: run
{{- end }}

{{/*
Labels of every pod of the release, the operator's and the CronJob's: only the
NetworkPolicy, which covers both, selects by these alone.
*/}}
{{- define "morningcheck.selectorLabels" -}}
app.kubernetes.io/name: {{ include "morningcheck.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels that select the operator's pods and nothing else: the Deployment's selector, the
Service's, the PodDisruptionBudget's and the anti-affinity term. The component keeps the
CronJob's pods (component `run`) out of all of them.
*/}}
{{- define "morningcheck.controllerSelectorLabels" -}}
{{ include "morningcheck.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Extra pod labels (podLabels); they may not replace the labels the selectors use. */}}
{{- define "morningcheck.podLabels" -}}
{{- range $key, $_ := .Values.podLabels }}
{{- if has $key (list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component") }}
{{- fail (printf "podLabels may not set %s: the chart's selectors use it" $key) }}
{{- end }}
{{- end }}
{{- with .Values.podLabels }}
{{- toYaml . }}
{{- end }}
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

{{/* Namespaces where the operator's own identity reads Secrets: those granted the
operator's identity, and the release namespace when the CronJob runs there. Every other
namespace's Secrets are read as its own ServiceAccount. */}}
{{- define "morningcheck.secretNamespaces" -}}
{{- $ns := list }}
{{- if .Values.controller.enabled }}
{{- $ns = concat $ns .Values.tenancy.operatorIdentityNamespaces }}
{{- end }}
{{- if .Values.cronjob.enabled }}
{{- $ns = append $ns .Release.Namespace }}
{{- end }}
{{- toYaml (uniq $ns) }}
{{- end }}

{{/* Whether the operator's own identity checks the cluster: a namespace is granted it, or the CronJob runs. */}}
{{- define "morningcheck.ownChecks" -}}
{{- if or (and .Values.controller.enabled .Values.tenancy.operatorIdentityNamespaces) .Values.cronjob.enabled }}true{{ end }}
{{- end }}

{{/* The controller's config file: the tenancy policy. */}}
{{- define "morningcheck.config" -}}
{{- $t := .Values.tenancy -}}
controller:
  tenancy:
    kubernetes:
      defaultServiceAccountName: {{ $t.defaultServiceAccountName | quote }}
      operatorIdentityNamespaces: {{ toJson (uniq $t.operatorIdentityNamespaces) }}
    aws:
      namespaces: {{ toJson (default (list .Release.Namespace) (uniq $t.aws.namespaces)) }}
      assumeRoles: {{ toJson $t.aws.assumeRoles }}
      allowEndpointOverride: {{ $t.aws.allowEndpointOverride }}
      endpointHosts: {{ toJson $t.aws.endpointHosts }}
    outbound:
      allowedHosts: {{ toJson $t.outbound.allowedHosts }}
      allowedCidrs: {{ toJson $t.outbound.allowedCidrs }}
{{- end }}

{{/* Subjects of every binding: the operator's ServiceAccount. */}}
{{- define "morningcheck.subjects" -}}
subjects:
  - kind: ServiceAccount
    name: {{ include "morningcheck.serviceAccountName" . }}
    namespace: {{ .Release.Namespace }}
{{- end }}
