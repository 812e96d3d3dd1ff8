# The manager image (the default, last stage) and the chart's `helm test`
# image (--target probe): static Go binaries on distroless, running as the
# distroless nonroot user (65532). With Docker:
#   make docker-build IMG=...     (multi-platform: make docker-buildx)
# Without Docker, `make image` builds the same images from this file's
# final stages (hack/tools/cmd/ociimage reads their LABEL, USER, WORKDIR and
# ENTRYPOINT; test/node checks the two agree).
# Multi-platform builds (docker buildx --platform) set TARGETOS/TARGETARCH.

FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=
WORKDIR /workspace

# Dependencies first: this layer is reused while go.mod and go.sum don't change.
COPY go.mod go.sum ./
RUN go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/

RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
    -ldflags="-s -w -X github.com/partnerops/entitlement-operator/internal/version.Version=${VERSION} -X github.com/partnerops/entitlement-operator/internal/version.Commit=${REVISION}" \
    -o manager ./cmd/manager && \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w" -o probe ./cmd/probe

FROM gcr.io/distroless/static:nonroot AS probe
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="entitlement-operator-probe" \
      org.opencontainers.image.description="Checks that the entitlement-operator manager's endpoints answer (the Helm chart's helm test)." \
      org.opencontainers.image.source="https://github.com/partnerops/entitlement-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /
COPY --from=builder /workspace/probe /probe
USER 65532:65532
ENTRYPOINT ["/probe"]

FROM gcr.io/distroless/static:nonroot AS manager
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="entitlement-operator" \
      org.opencontainers.image.description="Grants channel partners their entitlements from distributor contracts, and fails them over or revokes them on time." \
      org.opencontainers.image.source="https://github.com/partnerops/entitlement-operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
