# syntax=docker/dockerfile:1
#
# dirgate image: a static Go binary on distroless (no shell, no package manager, CA certificates
# for Podio's HTTPS, user 65532 "nonroot").
#
#   docker build -t dirgate:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example.com/dirgate:1.0.0 --push .
#
# There is no HEALTHCHECK: distroless has no shell or curl to run one, and Kubernetes ignores it
# anyway. Liveness (GET /healthz) and readiness (GET /readyz) are probed by Kubernetes; see
# deploy/kubernetes/deployment.yaml.

# Go version: keep in step with the go directive in go.mod (a test checks it).
ARG GO_VERSION=1.26

# The build stage runs on the build machine's platform and cross-compiles, which needs no
# emulation because the binary has no cgo.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so source edits do not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# CGO_ENABLED=0: a static binary that runs on distroless/static (no libc). -trimpath: no build
# machine paths in the binary. -s -w: no symbol table or DWARF (smaller image).
# cmd/dirgate/deploy_test.go runs this exact command and checks the binary is static.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w" -o /out/dirgate ./cmd/dirgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dirgate /dirgate
# 65532:65532 is distroless's nonroot; numeric so Kubernetes runAsNonRoot can verify it.
USER 65532:65532
# DIRGATE_ADDR (the API, probes included). The root proxy listener (DIRGATE_PROXY_ADDR) is off
# unless configured; deploy/kubernetes sets it to :8082.
EXPOSE 8080 8082
ENTRYPOINT ["/dirgate", "serve"]
