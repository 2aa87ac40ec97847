#!/usr/bin/env bash
# Tier 4: the same product on a real kind cluster. Needs a Docker engine (none on the dev/CI
# machines of this project: there, tiers 1-3 prove it). Fails fast with a reason otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER="${KIND_CLUSTER:-verso-e2e}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.16.2}"
KIND_VERSION="${KIND_VERSION:-v0.27.0}"
TAG="${TAG:-0.1.0}"
KEEP="${KEEP_CLUSTER:-0}"

die() { echo "e2e: $*" >&2; exit 1; }
log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

command -v docker >/dev/null || die "docker not found: make e2e needs a Docker engine (use 'make test' for tiers 1-3)"
docker info >/dev/null 2>&1 || die "no Docker engine answers ('docker info' failed): make e2e needs one (use 'make test' for tiers 1-3)"
command -v kubectl >/dev/null || die "kubectl not found on PATH"
command -v jq >/dev/null || die "jq not found on PATH (the assertions read pod JSON with it)"
if ! command -v kind >/dev/null; then
  log "installing kind $KIND_VERSION with go install"
  GOBIN="$PWD/.cache/bin" go install "sigs.k8s.io/kind@$KIND_VERSION"
  export PATH="$PWD/.cache/bin:$PATH"
fi

cleanup() {
  if [ "$KEEP" != 1 ]; then log "deleting cluster $CLUSTER"; kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

log "creating kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --wait 120s
K="kubectl --context kind-$CLUSTER"

log "building and loading images"
make images TAG="$TAG"
for img in "verso/webhook:$TAG" "verso/sidecar:$TAG" verso-demo:v1 verso-demo:v2; do
  kind load docker-image --name "$CLUSTER" "$img"
done

log "installing cert-manager $CERT_MANAGER_VERSION"
$K apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
$K -n cert-manager rollout status deploy/cert-manager-webhook --timeout=180s
$K -n cert-manager rollout status deploy/cert-manager-cainjector --timeout=180s

log "installing verso"
# cert-manager's own webhook can take a few seconds after rollout to serve; retry the apply.
for i in $(seq 1 20); do $K apply -k deploy/ && break; sleep 5; [ "$i" = 20 ] && die "kubectl apply -k deploy/ kept failing"; done
$K -n verso-system wait certificate/verso-webhook-serving --for=condition=Ready --timeout=120s
$K -n verso-system rollout status deploy/verso-webhook --timeout=180s
# The caBundle is injected asynchronously by cainjector.
for i in $(seq 1 30); do
  ca=$($K get mutatingwebhookconfiguration verso-webhook -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
  [ -n "$ca" ] && break; sleep 2
done
[ -n "$ca" ] || die "cainjector never filled the webhook caBundle"

log "deploying the demo app"
$K apply -k deploy/examples/
$K -n demo rollout status deploy/shop-v1 --timeout=180s
$K -n demo rollout status deploy/shop-v2 --timeout=180s

log "asserting injection"
fail=0
for pod in $($K -n demo get pods -o name); do
  json=$($K -n demo get "$pod" -o json)
  app=$(jq -r '.metadata.labels["verso.dev/app"] // ""' <<<"$json")
  ver=$(jq -r '.metadata.labels["verso.dev/version"] // ""' <<<"$json")
  proxy=$(jq -r '[.spec.initContainers[]?, .spec.containers[]] | map(select(.name=="verso-proxy")) | length' <<<"$json")
  echo "  $pod app=$app version=$ver proxies=$proxy"
  [ "$app" = shop ] && [ -n "$ver" ] && [ "$proxy" = 1 ] || fail=1
done
[ "$fail" = 0 ] || die "some demo pods are not injected and labelled"

log "asserting an opted-out namespace is untouched"
$K create namespace verso-e2e-plain --dry-run=client -o yaml | $K apply -f -
$K -n verso-e2e-plain run plain --image=verso-demo:v1 --restart=Never --port=8080 --env=PORT=8080
$K -n verso-e2e-plain wait pod/plain --for=condition=Ready --timeout=120s
n=$($K -n verso-e2e-plain get pod plain -o json | jq '[.spec.initContainers[]?, .spec.containers[]] | map(select(.name=="verso-proxy")) | length')
[ "$n" = 0 ] || die "a pod outside opted-in namespaces was injected"

log "traffic through the Service reaches both versions"
$K -n demo run curl --image=verso-demo:v1 --restart=Never --command -- node -e '
  const http=require("node:http"); let seen={}; let n=0;
  const go=()=>http.get("http://shop.demo.svc/",r=>{let b="";r.on("data",c=>b+=c);r.on("end",()=>{const v=r.headers["x-verso-version"]||r.headers["x-app-version"];seen[v]=(seen[v]||0)+1;if(++n<200)go();else{console.log(JSON.stringify(seen));process.exit(seen.v1&&seen.v2?0:1);}})}).on("error",e=>{console.error(e.message);process.exit(1)});go();'
$K -n demo wait pod/curl --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s \
  || { $K -n demo logs curl || true; die "200 requests through the Service did not reach both v1 and v2"; }
$K -n demo logs curl
log "e2e passed"
