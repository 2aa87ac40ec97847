# Verso — make targets. Node 24 comes from node_modules (npm ci); nothing else is global.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

REGISTRY ?= verso
TAG ?= 0.1.0
WEBHOOK_IMAGE ?= $(REGISTRY)/webhook:$(TAG)
SIDECAR_IMAGE ?= $(REGISTRY)/sidecar:$(TAG)
DEMO_IMAGE ?= verso-demo

.PHONY: help install build test test-unit test-process test-cluster lint format typecheck \
        images node-images deploy demo e2e bench bench-tools golden kube-binaries clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

install: node_modules/.package-lock.json ## npm ci (brings Node 24 and Bun)

build: install ## compile TypeScript to dist/
	npm run build

kube-binaries: ## build/locate etcd, kube-apiserver, kube-controller-manager, kubectl (cached)
	bash scripts/build-kube.sh

.PHONY: helm-binary
helm-binary: ## build helm from its Go module (cached; the chart tests build it when missing)
	bash scripts/build-helm.sh

test: install kube-binaries ## every suite: unit, process (real sockets/TLS), cluster (real apiserver)
	npx vitest run

test-unit: install ## pure decisions and golden files only
	npx vitest run --project unit

test-process: install ## real servers and proxies on 127.0.0.x
	npx vitest run --project process

test-cluster: install kube-binaries ## against a real kube-apiserver on this machine
	npx vitest run --project cluster

lint: install typecheck ## eslint + prettier --check + tsc --noEmit
	npx eslint .
	npx prettier --check .

typecheck: install ## tsc --noEmit
	npx tsc -p tsconfig.json --noEmit

format: install ## prettier --write
	npx prettier --write .

golden: install ## rewrite the mutation golden files
	UPDATE_GOLDEN=1 npx vitest run --project unit test/golden

demo: install kube-binaries ## local control plane + webhook + controller + demo app; prints export KUBECONFIG=
	node test/harness/demo.ts

bench: install bench-tools ## admission, proxy (HTTP and gRPC) and propagation benchmarks (prints numbers)
	node bench/admission.ts
	node bench/proxy.ts
	node bench/grpc.ts
	node bench/propagation.ts
	bun bench/access-log.ts > /dev/null

bench-tools: ## wrk, h2load, taskset and nginx (the reference) from Debian; ghz is built from Go modules by bench/grpc.ts
	@command -v wrk >/dev/null && command -v h2load >/dev/null && command -v taskset >/dev/null && command -v nginx >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk nghttp2-client util-linux nginx-light)

images: ## docker build the webhook, sidecar (Bun) and demo images
	docker build -f deploy/images/Dockerfile.webhook -t $(WEBHOOK_IMAGE) .
	docker build -f deploy/images/Dockerfile.sidecar -t $(SIDECAR_IMAGE) .
	docker build -f deploy/images/Dockerfile.demo --build-arg VERSION=v1 -t $(DEMO_IMAGE):v1 .
	docker build -f deploy/images/Dockerfile.demo --build-arg VERSION=v2 -t $(DEMO_IMAGE):v2 .

node-images: install ## build the images without Docker, as archives for containerd (see docs/images.md)
	node test/harness/node/imageBuild.ts --tag $(TAG)

deploy: ## kubectl apply -k deploy/ (needs cert-manager in the cluster)
	kubectl apply -k deploy/

e2e: ## kind cluster, images, cert-manager, deploy/, demo app, assertions (needs Docker)
	bash test/e2e/kind.sh

clean:
	rm -rf dist
