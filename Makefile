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

IMG ?= ghcr.io/partnerops/entitlement-operator:dev
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

# What the binaries report as their version (manager --version, kubectl
# entitlements version): git describe of the checkout unless set, as in
# make build VERSION=v0.3.0.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_PKG := github.com/partnerops/entitlement-operator/internal/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Commit=$(shell git rev-parse HEAD 2>/dev/null)

# The plugin is stripped of its symbol table and DWARF (-s), as the image's
# manager is: 19.5 MB instead of 27.7 (linux/amd64); panics still name
# functions and lines.
.PHONY: build
build: ## Build bin/manager and the kubectl plugin bin/kubectl-entitlements, stamped with VERSION.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -ldflags "-s $(LDFLAGS)" -o $(LOCALBIN)/kubectl-entitlements ./cmd/kubectl-entitlements

.PHONY: run
run: manifests generate ## Run the manager against the current kubeconfig.
	go run ./cmd/manager

.PHONY: demo
demo: k8s-bins ## The story end to end on a local control plane (KEEP=1 leaves it running).
	go run ./cmd/demo $(if $(KEEP),--keep,)

.PHONY: deploy
deploy: ## Install into the current kubeconfig's cluster (server-side apply of config/default).
	kubectl apply --server-side -k config/default

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build -t $(IMG) .

PLATFORMS ?= linux/amd64,linux/arm64
.PHONY: docker-buildx
docker-buildx: ## Build and push the image for PLATFORMS with an SBOM and provenance attestations (needs docker buildx).
	docker buildx build --platform=$(PLATFORMS) --sbom=true --provenance=mode=max -t $(IMG) --push .

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

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)/.tmp
	GOBIN=$(LOCALBIN)/.tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/.tmp/controller-gen $@
	ln -sf $(notdir $@) $(LOCALBIN)/controller-gen
