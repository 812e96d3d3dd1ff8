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
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

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
test: verify vet k8s-bins promtool ## Verify, vet, then unit, integration and e2e tests on the local control plane.
	go test $(GO_TEST_FLAGS) -timeout $(TEST_TIMEOUT) ./...

.PHONY: test-chaos
test-chaos: k8s-bins ## The fault tests at full size: 300 partners, 12 SIGKILLs, a 15 s API server outage (make test runs them small).
	CHAOS_PARTNERS=300 CHAOS_KILLS=12 CHAOS_OUTAGE_SECONDS=15 go test -count=1 -v -timeout 30m ./test/chaos/ 2>&1 | grep -v '^\[' | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|_test.go:'

.PHONY: test-unit
test-unit: ## Only the tests that need no control plane.
	go test -short ./...

.PHONY: bench
bench: k8s-bins ## Benchmarks (figures printed; the month-end scale table is written into docs/benchmarks.md). SCALE_N=10000 for the large run.
	go test -run '^$$' -bench . -benchmem -timeout 30m ./internal/... ./test/bench/
	SCALE_DOCS=$(CURDIR)/docs/benchmarks.md go test -run '^$$' -bench . -benchtime 1x -timeout 90m ./test/scale/

##@ Build

# What the binaries and images are stamped with (--version, the
# entitlements_build_info metric, the image tag): `make release` sets it.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X github.com/partnerops/entitlement-operator/internal/version.Version=$(VERSION) -X github.com/partnerops/entitlement-operator/internal/version.Commit=$(COMMIT)

.PHONY: build
build: ## Build bin/manager and the kubectl plugin bin/kubectl-entitlements, stamped with VERSION.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/manager ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/kubectl-entitlements ./cmd/kubectl-entitlements

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
