# The versions of everything the test environment builds, and where each is cached.
# Sourced by install.sh, build.sh, up.sh and the scripts; one place to bump a version.
# shellcheck shell=bash disable=SC2034  # every variable here is used by the scripts that source it
CACHE="${MORNINGCHECK_CACHE:-$HOME/.cache/morningcheck}"
K8S_VERSION=1.37.2                 # kube-apiserver, controller-manager, scheduler, kubectl
K8S_OLDEST_SUPPORTED=1.31          # the chart is rendered and validated at both ends
ETCD_VERSION=3.6.16
KWOK_VERSION=0.7.0
HELM_VERSION=3.22.0
CRANE_VERSION=0.22.1
KUBECONFORM_VERSION=0.8.0
ALERTMANAGER_VERSION=0.31.1           # the newest whose module builds as is (later ones embed a UI built by npm)
PROMETHEUS_OPERATOR_VERSION=0.85.0
MOTO_VERSION=5.1.22
SLACK_SDK_VERSION=3.48.0           # Slack's own Block Kit models validate every digest the tests render

K8S_DIR="$CACHE/kubernetes-v$K8S_VERSION"
ETCD_DIR="$CACHE/etcd-v$ETCD_VERSION"
KWOK_DIR="$CACHE/kwok-v$KWOK_VERSION"
HELM_DIR="$CACHE/helm-v$HELM_VERSION-2"   # -2: built with its Kubernetes version
CRANE_DIR="$CACHE/crane-v$CRANE_VERSION"
KUBECONFORM_DIR="$CACHE/kubeconform-v$KUBECONFORM_VERSION"
ALERTMANAGER_DIR="$CACHE/alertmanager-v$ALERTMANAGER_VERSION"
PROMETHEUS_OPERATOR_CRDS_DIR="$CACHE/prometheus-operator-crds-v$PROMETHEUS_OPERATOR_VERSION"
MOTO_DIR="$CACHE/moto-$MOTO_VERSION"
SLACK_SDK_DIR="$CACHE/slack-sdk-$SLACK_SDK_VERSION"
