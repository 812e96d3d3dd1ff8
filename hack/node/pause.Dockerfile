# The node harness's Pod sandbox image, built by `make node-up` with
# hack/tools/cmd/ociimage (nothing is pulled). With Docker it builds as well.
FROM golang:1.26 AS builder
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /pause ./cmd/pause

FROM gcr.io/distroless/static:nonroot AS pause
WORKDIR /
COPY --from=builder /pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
