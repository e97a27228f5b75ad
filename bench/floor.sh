#!/usr/bin/env bash
# The raw floor: the API calls of a morning check made concurrently by curl, bodies written
# to a tmpfs file and thrown away, nothing parsed but the continue/next token of a page.
#
#   Kubernetes, per context (all chains at once): paged lists (limit 500) of pods, Warning
#     events (fieldSelector type=Warning), nodes, deployments, statefulsets, daemonsets —
#     the lists `morningcheck run` makes. Each page is one curl process (its own TLS
#     handshake): the next page needs the previous page's continue token.
#   Prometheus: /api/v1/alerts and the three preset instant queries, at once.
#   EC2, per region (at once): DescribeInstances pages (MaxResults 200, the fleet's tag
#     filter) and DescribeInstanceStatus pages (MaxResults 1000, IncludeAllInstances),
#     signed by curl's --aws-sigv4 with moto's dummy keys.
#
# Settings come from the environment (bench/harness.py sets them):
#   FLOOR_AREAS="kubernetes prometheus aws" FLOOR_CONTEXTS=3 FLOOR_KUBE_SERVER FLOOR_TOKEN FLOOR_CA
#   FLOOR_PROM FLOOR_MOTO FLOOR_REGIONS="r1 r2" FLOOR_TAG=KEY=VALUE
# Prints one line per area: `requests AREA N`.
set -u
tmp=$(mktemp -d "${TMPDIR_FLOOR:-/dev/shm}/mc-floor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
areas=" ${FLOOR_AREAS:-kubernetes prometheus aws} "

kube_chain() { # id path extra-query
  local id=$1 path=$2 extra=$3 token="" n=0 out="$tmp/$1"
  while :; do
    local url="$FLOOR_KUBE_SERVER$path?limit=500$extra"
    [ -n "$token" ] && url="$url&continue=$token"
    # A user agent of its own: kube-apiserver pretty-prints JSON for curl's.
    curl -sS --fail -A morningcheck-floor --cacert "$FLOOR_CA" -H "Authorization: Bearer $FLOOR_TOKEN" -H "Accept: application/json" \
      -o "$out.body" "$url" || { echo "floor: $url failed" >&2; break; }
    n=$((n + 1))
    token=$(head -c 2048 "$out.body" | grep -o '"continue": *"[^"]*"' | cut -d'"' -f4)
    [ -z "$token" ] && break
  done
  echo "$n" >"$out.count"
}

ec2_chain() { # id region action extra-data...
  local id=$1 region=$2 action=$3; shift 3
  local token="" n=0 out="$tmp/$id"
  while :; do
    local args=(-d "Action=$action" -d "Version=2016-11-15" "$@")
    [ -n "$token" ] && args+=(--data-urlencode "NextToken=$token")
    curl -sS --fail --aws-sigv4 "aws:amz:$region:ec2" --user testing:testing "${args[@]}" \
      -o "$out.body" "$FLOOR_MOTO/" || { echo "floor: $action $region failed" >&2; break; }
    n=$((n + 1))
    token=$(grep -o '<nextToken>[^<]*</nextToken>' "$out.body" | head -1 | sed 's/<[^>]*>//g')
    [ -z "$token" ] && break
  done
  echo "$n" >"$out.count"
}

prom_get() { # id path [query]
  local out="$tmp/$1"
  if [ $# -ge 3 ]; then
    curl -sS --fail -o "$out.body" -G --data-urlencode "query=$3" "$FLOOR_PROM$2"
  else
    curl -sS --fail -o "$out.body" "$FLOOR_PROM$2"
  fi
  echo 1 >"$out.count"
}

pids=()
if [[ $areas == *" kubernetes "* ]]; then
  for c in $(seq 1 "${FLOOR_CONTEXTS:-3}"); do
    kube_chain "kubernetes-$c-pods" /api/v1/pods "" & pids+=($!)
    kube_chain "kubernetes-$c-events" /api/v1/events "&fieldSelector=type%3DWarning" & pids+=($!)
    kube_chain "kubernetes-$c-nodes" /api/v1/nodes "" & pids+=($!)
    for w in deployments statefulsets daemonsets; do
      kube_chain "kubernetes-$c-$w" "/apis/apps/v1/$w" "" & pids+=($!)
    done
  done
fi
if [[ $areas == *" prometheus "* ]]; then
  prom_get prometheus-alerts /api/v1/alerts & pids+=($!)
  prom_get prometheus-q1 /api/v1/query '100 - (avg by(instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100)' & pids+=($!)
  prom_get prometheus-q2 /api/v1/query 'predict_linear(node_filesystem_free_bytes{fstype!~"tmpfs|overlay"}[6h], 24*3600)' & pids+=($!)
  prom_get prometheus-q3 /api/v1/query 'sum by(service) (rate(http_requests_total{status=~"5.."}[5m]))' & pids+=($!)
fi
if [[ $areas == *" aws "* ]]; then
  tagk=${FLOOR_TAG%%=*} tagv=${FLOOR_TAG#*=}
  for r in $FLOOR_REGIONS; do
    ec2_chain "aws-$r-instances" "$r" DescribeInstances -d MaxResults=200 \
      --data-urlencode "Filter.1.Name=tag:$tagk" --data-urlencode "Filter.1.Value.1=$tagv" & pids+=($!)
    ec2_chain "aws-$r-status" "$r" DescribeInstanceStatus -d MaxResults=1000 -d IncludeAllInstances=true & pids+=($!)
  done
fi
wait "${pids[@]}"
for a in kubernetes prometheus aws; do
  n=0
  for f in "$tmp/$a"-*.count; do [ -f "$f" ] && n=$((n + $(cat "$f"))); done
  [[ $areas == *" $a "* ]] && echo "requests $a $n"
done
exit 0
