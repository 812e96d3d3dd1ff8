# entitlement-operator
#
#   make demo    the whole story on a built-in local control plane
#   make test    everything CI runs: verify, vet, unit, integration and e2e tests
#
# Tools are pinned and installed into bin/ on first use; the control plane
# (etcd, kube-apiserver, kube-controller-manager) is built from Go modules
# into bin/k8s by hack/k8s-bins.sh.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT           := $(shell pwd)
LOCALBIN       := $(ROOT)/bin
CONTROLLER_TOOLS_VERSION := v0.23.0
# Versioned file name: a different pin installs afresh.
CONTROLLER_GEN := $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUBERNETES_VERSION := v1.37.2
ETCD_VERSION       := v3.7.3
# promtool's module version, used only where Debian's package is not.
PROMETHEUS_VERSION := v0.316.0
# Where tests, benchmarks and the demo find etcd and kube-apiserver
# (kube-controller-manager beside them). Set it to use binaries of your own.
KUBEBUILDER_ASSETS ?= $(LOCALBIN)/k8s
export KUBEBUILDER_ASSETS
# Where test/install finds promtool when it is not on PATH.
export PROMTOOL ?= $(LOCALBIN)/promtool

# The manager image make deploy and make docker-build use.
IMG ?= ghcr.io/partnerops/entitlement-operator:$(VERSION)
# Go modules: the operator's, and test/install's (the tests that need Helm,
# kustomize, gopher-lua and cli-utils, kept out of the operator's module
# graph). fmt, vet and the test targets run `go ... ./...` in each.
GO_MODULES := . test/install
GO_TEST_FLAGS ?=
TEST_TIMEOUT  ?= 30m

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and the manager ClusterRole from markers; sync the Helm chart's copies.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./controllers/... output:rbac:artifacts:config=config/rbac
	@$(MAKE) -s chart

.PHONY: chart
chart: ## Sync dist/chart's copies of the CRDs, manager ClusterRole, tier roles, admission policies and monitoring files.
	rm -f dist/chart/files/crds/*.yaml dist/chart/files/tier-roles/*.yaml
	cp config/crd/bases/*.yaml dist/chart/files/crds/
	cp config/rbac/role.yaml dist/chart/files/manager-role.yaml
	cp config/rbac/tiers/partner_*_role.yaml dist/chart/files/tier-roles/
	cp config/prometheus/alerts.yaml dist/chart/files/prometheus-rule.yaml
	cp config/prometheus/dashboard.json dist/chart/files/grafana-dashboard.json
	cp config/admission/products-policy.yaml dist/chart/files/admission-policy.yaml
	cp config/admission/contract-end-policy.yaml dist/chart/files/contract-end-policy.yaml
	cp config/admission-finalizer/finalizer-policy.yaml dist/chart/files/finalizer-policy.yaml

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code, docs/api.md and the Argo CD health-check patch.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	go run ./hack/apidocs -crds config/crd/bases -out docs/api.md
	@{ echo "# Generated from config/argocd/health.lua by make generate; do not edit."; \
	  echo "# kubectl -n argocd patch configmap argocd-cm --type merge --patch-file config/argocd/argocd-cm-patch.yaml"; \
	  echo "data:"; \
	  for kind in DistributorContract Partner; do \
	    echo "  resource.customizations.health.entitlements.partnerops.io_$$kind: |"; \
	    sed 's/^/    /; s/^    $$//' config/argocd/health.lua; \
	  done; } > config/argocd/argocd-cm-patch.yaml

.PHONY: fmt
fmt: ## go fmt (both modules).
	@for m in $(GO_MODULES); do (cd $$m && go fmt ./...); done

.PHONY: vet
vet: ## go vet (both modules).
	@for m in $(GO_MODULES); do echo "go vet ./... in $$m"; (cd $$m && go vet ./...); done

GENERATED := config/argocd/argocd-cm-patch.yaml config/crd/bases config/rbac/role.yaml api/v1alpha1/zz_generated.deepcopy.go docs/api.md dist/chart/files

.PHONY: verify
verify: $(CONTROLLER_GEN) ## Fail if a generated file is stale (regenerating changes it) or Go code is not gofmt'ed.
	@sum() { find $(GENERATED) -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum; }; \
	  before=$$(sum); \
	  $(MAKE) -s manifests generate >/dev/null; \
	  after=$$(sum); \
	  if [ "$$before" != "$$after" ]; then \
	    echo "verify: generated files were stale and have been regenerated; review and commit them:"; \
	    diff <(echo "$$before") <(echo "$$after") | sed -n 's/^> [0-9a-f]*  /  /p'; exit 1; fi
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "verify: gofmt needed:"; echo "$$out"; exit 1; fi
	@echo "verify: generated files current, Go code formatted"

.PHONY: test
test: verify vet k8s-bins promtool ## Verify, vet, then unit, integration and e2e tests on the local control plane (both modules).
	@rc=0; for m in $(GO_MODULES); do echo "go test ./... in $$m"; \
	  (cd $$m && go test $(GO_TEST_FLAGS) -timeout $(TEST_TIMEOUT) ./...) || rc=1; done; exit $$rc

.PHONY: test-chaos
test-chaos: k8s-bins ## The fault tests at full size: 300 partners, 12 SIGKILLs, a 15 s API server outage (make test runs them small).
	CHAOS_PARTNERS=300 CHAOS_KILLS=12 CHAOS_OUTAGE_SECONDS=15 go test -count=1 -v -timeout 30m ./test/chaos/ 2>&1 | grep -v '^\[' | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|_test.go:'

.PHONY: test-adversarial
test-adversarial: k8s-bins ## The attacks at full size: 100 partners granted, resumed, regranted and failed over under 25 sellers; 20 rounds of each Strict attack (make test runs them small).
	ADVERSARIAL_PARTNERS=100 ADVERSARIAL_ATTACKERS=25 ADVERSARIAL_ROUNDS=20 go test -count=1 -v -timeout 60m ./test/adversarial/ 2>&1 | grep -v '^\[' | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|_test.go:'

.PHONY: test-unit
test-unit: ## Only the tests that need no control plane (both modules).
	@for m in $(GO_MODULES); do (cd $$m && go test -short ./...); done

.PHONY: bench
bench: k8s-bins ## Benchmarks (figures printed; the month-end scale table is written into docs/benchmarks.md). SCALE_N=10000 for the large run.
	go test -run '^$$' -bench . -benchmem -timeout 30m ./internal/... ./test/bench/
	SCALE_DOCS=$(CURDIR)/docs/benchmarks.md go test -run '^$$' -bench . -benchtime 1x -timeout 90m ./test/scale/

##@ Build

# What the binaries and images are stamped with (--version, the
# entitlements_build_info metric, the image tag): `make release` sets it.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/partnerops/entitlement-operator/internal/version.Version=$(VERSION) -X github.com/partnerops/entitlement-operator/internal/version.Commit=$(COMMIT)

.PHONY: build
build: ## Build bin/manager and the kubectl plugin bin/kubectl-entitlements, stamped with VERSION.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/kubectl-entitlements ./cmd/kubectl-entitlements

# The images `make image` builds, without Docker: the manager and the
# chart's `helm test` probe, as OCI tarballs into bin/image (see
# docs/operations.md, "Build the image").
IMAGE_REPO      ?= ghcr.io/partnerops/entitlement-operator
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_DIR       ?= $(LOCALBIN)/image
# Every timestamp in the image: the commit's time, so that the same commit
# gives the same digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: image
image: $(LOCALBIN)/ociimage ## Build the manager and probe images (OCI tarballs for IMAGE_PLATFORMS into bin/image, SBOMs, digests) without Docker, tagged VERSION.
	@rm -rf $(IMAGE_DIR) && mkdir -p $(IMAGE_DIR)
	@mbins=(); pbins=(); for p in $(IMAGE_PLATFORMS); do \
	  d=$(IMAGE_DIR)/build/$${p/\//_}; \
	  CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -ldflags "$(LDFLAGS)" -o $$d/manager ./cmd/manager; \
	  CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build -trimpath -ldflags "-s -w" -o $$d/probe ./cmd/probe; \
	  mbins+=(--binary $$p=$$d/manager); pbins+=(--binary $$p=$$d/probe); done; \
	common=(--dockerfile Dockerfile --epoch $(SOURCE_DATE_EPOCH) --out $(IMAGE_DIR) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(COMMIT)); \
	$(LOCALBIN)/ociimage "$${common[@]}" --target manager --ref $(IMAGE_REPO):$(VERSION) "$${mbins[@]}"; \
	$(LOCALBIN)/ociimage "$${common[@]}" --target probe --ref $(IMAGE_REPO)-probe:$(VERSION) "$${pbins[@]}"
	@rm -rf $(IMAGE_DIR)/build
	@echo "image: $(IMAGE_REPO):$(VERSION)@$$(cat $(IMAGE_DIR)/entitlement-operator.digest) in $(IMAGE_DIR)"

.PHONY: run
run: manifests generate ## Run the manager against the current kubeconfig.
	go run ./cmd/manager

.PHONY: demo
demo: k8s-bins ## The story end to end on a local control plane (KEEP=1 leaves it running).
	go run ./cmd/demo $(if $(KEEP),--keep,)

.PHONY: deploy
deploy: $(LOCALBIN)/kustomize ## Install config/default into the current kubeconfig's cluster with the image IMG (server-side apply); the checked-in files are left as they are.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cp -r config "$$tmp/"; \
	  (cd "$$tmp/config/manager" && $(LOCALBIN)/kustomize edit set image controller=$(IMG)); \
	  $(LOCALBIN)/kustomize build "$$tmp/config/default" | kubectl apply --server-side -f -

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build -t $(IMG) .

PLATFORMS ?= linux/amd64,linux/arm64
.PHONY: docker-buildx
docker-buildx: ## Build and push the image for PLATFORMS with an SBOM and provenance attestations (needs docker buildx).
	docker buildx build --platform=$(PLATFORMS) --sbom=true --provenance=mode=max -t $(IMG) --push .

##@ Release

# make release VERSION=v0.2.0 writes dist/release/ (git-ignored): install.yaml
# with the image pinned by digest, the chart packaged at VERSION, the plugin
# for PLUGIN_PLATFORMS, the image tarballs and SBOMs, a krew manifest and
# SHA-256 checksums (hack/release.sh says what each is).
RELEASE_DIR      ?= dist/release
PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

.PHONY: release
release: $(LOCALBIN)/ociimage $(LOCALBIN)/kustomize $(LOCALBIN)/helm ## Build every release artifact for VERSION (vX.Y.Z) into dist/release.
	@VERSION=$(VERSION) COMMIT=$(COMMIT) LDFLAGS="$(LDFLAGS)" IMAGE_REPO=$(IMAGE_REPO) IMAGE_PLATFORMS="$(IMAGE_PLATFORMS)" \
	  PLUGIN_PLATFORMS="$(PLUGIN_PLATFORMS)" RELEASE_DIR=$(RELEASE_DIR) LOCALBIN=$(LOCALBIN) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) \
	  hack/release.sh

##@ Node (a real single node on this machine: root, Linux)

# The node's state (certificates, configuration, containerd's images,
# logs): removed by make node-down.
NODE_DIR  ?= /tmp/entitlement-node
NODE_BINS := $(LOCALBIN)/node
NODE      := $(LOCALBIN)/node-harness
export NODE_DIR

.PHONY: node-deps
node-deps: ## Install Debian's containerd, runc, containernetworking-plugins and iptables when missing (as root, like make promtool).
	@if [ "$$(uname -s)" != Linux ] || [ "$$(id -u)" != 0 ]; then echo "node-deps: the node needs root on Linux; skipped"; exit 0; fi; \
	missing=""; for c in containerd runc iptables; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || missing="$$missing containernetworking-plugins"; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then echo "node-deps: install$$missing (containerd >= 1.6) with your package manager"; exit 1; fi; \
	  echo "node-deps: installing Debian's$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi; \
	containerd --version

.PHONY: node-bins
node-bins: k8s-bins $(NODE) $(LOCALBIN)/ociimage ## Build kubelet, kube-scheduler, kube-proxy and kubectl (pinned like k8s-bins) and the Pod sandbox image into bin/node.
	KUBERNETES_VERSION=$(KUBERNETES_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/k8s-bins.sh $(NODE_BINS) kubelet kube-scheduler kube-proxy kubectl
	@arch=$$(go env GOARCH); d=$(NODE_BINS)/pause-build; rm -rf $$d; mkdir -p $$d; \
	  (cd hack/tools && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o $$d/pause ./cmd/pause); \
	  $(LOCALBIN)/ociimage --dockerfile hack/node/pause.Dockerfile --target pause --ref localhost/entitlement-node/pause:1 \
	    --epoch 0 --out $$d --name pause --binary linux/$$arch=$$d/pause >/dev/null; \
	  mv $$d/pause_linux_$$arch.tar $(NODE_BINS)/pause.tar; rm -rf $$d

NODE_FLAGS = --dir $(NODE_DIR) --k8s $(KUBEBUILDER_ASSETS) --bins $(NODE_BINS) --pause $(NODE_BINS)/pause.tar

.PHONY: node-up
node-up: node-deps node-bins ## Start the node (then: bin/node-harness exec -- kubectl get nodes).
	$(NODE) up $(NODE_FLAGS)

.PHONY: node-down
node-down: $(NODE) ## Stop the node and check that it left nothing behind.
	$(NODE) down $(NODE_FLAGS)

.PHONY: test-node
test-node: node-deps ## The install on a real node: the image, config/default, install.yaml, the Helm chart, metrics, leader handover (root, Linux).
	@if [ "$$(uname -s)" != Linux ] || [ "$$(id -u)" != 0 ]; then echo "test-node: SKIP: the node needs root on Linux"; exit 0; fi; \
	  $(MAKE) -s node-bins $(LOCALBIN)/helm $(LOCALBIN)/krew && \
	  NODE="$(NODE)" NODE_FLAGS="$(NODE_FLAGS)" LOCALBIN=$(LOCALBIN) hack/test-node.sh

##@ Tools

.PHONY: promtool
promtool: ## Make promtool available (alert unit tests): on PATH, else Debian's prometheus package (as root), else built from Go modules into bin/.
	@if command -v promtool >/dev/null 2>&1; then echo "promtool: $$(command -v promtool)"; \
	elif [ -x $(LOCALBIN)/promtool ]; then echo "promtool: $(LOCALBIN)/promtool"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "promtool: installing Debian's prometheus package"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  command -v promtool; \
	else echo "promtool: building $(PROMETHEUS_VERSION) into bin/"; \
	  GOBIN=$(LOCALBIN) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION); fi

.PHONY: diagrams
diagrams: ## Render docs/images/*.dot to SVG with Graphviz: dot on PATH, else Debian's graphviz package (as root).
	@if ! command -v dot >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "diagrams: installing Debian's graphviz package"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends graphviz >/dev/null; \
	  else echo "diagrams: Graphviz's dot not found: install Graphviz (apt install graphviz, brew install graphviz)"; exit 1; fi; fi
	@for f in docs/images/*.dot; do dot -Tsvg "$$f" -o "$${f%.dot}.svg"; echo "diagrams: $${f%.dot}.svg"; done

.PHONY: k8s-bins
k8s-bins: ## Build the pinned etcd, kube-apiserver and kube-controller-manager into bin/k8s.
	@if [ "$(KUBEBUILDER_ASSETS)" = "$(LOCALBIN)/k8s" ]; then \
	  KUBERNETES_VERSION=$(KUBERNETES_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/k8s-bins.sh $(LOCALBIN)/k8s; \
	else echo "using KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS)"; fi

# Tools pinned in hack/tools/go.mod (a module of their own, apart from the
# operator's dependency graph), built into bin/ when that file changes.
TOOLS_MOD := hack/tools/go.mod hack/tools/go.sum
$(LOCALBIN)/ociimage: $(TOOLS_MOD) $(wildcard hack/tools/cmd/ociimage/*.go)
	cd hack/tools && CGO_ENABLED=0 go build -o $@ ./cmd/ociimage
$(LOCALBIN)/helm: $(TOOLS_MOD)
	cd hack/tools && CGO_ENABLED=0 go build -o $@ helm.sh/helm/v4/cmd/helm
$(LOCALBIN)/crane: $(TOOLS_MOD)
	cd hack/tools && CGO_ENABLED=0 go build -o $@ github.com/google/go-containerregistry/cmd/crane
$(LOCALBIN)/node-harness: $(TOOLS_MOD) $(wildcard hack/tools/cmd/node/*.go)
	cd hack/tools && CGO_ENABLED=0 go build -o $@ ./cmd/node
$(LOCALBIN)/kustomize: $(TOOLS_MOD)
	cd hack/tools && CGO_ENABLED=0 go build -o $@ sigs.k8s.io/kustomize/kustomize/v5
$(LOCALBIN)/krew: hack/tools/krew/go.mod hack/tools/krew/go.sum
	cd hack/tools/krew && CGO_ENABLED=0 go build -o $@ sigs.k8s.io/krew/cmd/krew

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)/.tmp
	GOBIN=$(LOCALBIN)/.tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/.tmp/controller-gen $@
	ln -sf $(notdir $@) $(LOCALBIN)/controller-gen
