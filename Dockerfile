# syntax=docker/dockerfile:1
#
# One image for the three roles of a distributed run: `pushbench serve`,
# `pushbench agent` and the coordinator `pushbench run`. Build it once and
# give the server, the agents and the coordinator the same image: an agent
# refuses a coordinator of another pushbench version, and a build without
# .git (excluded by .dockerignore) carries no commit, so its version is
# "devel" and the build, not a commit: only the same image is sure to
# agree. deploy/k8s/README.md has the commands.
#
#   docker build -t REGISTRY/pushbench:TAG .

# The build stage runs on the builder's platform and cross-compiles for the
# target's (docker buildx build --platform linux/amd64,linux/arm64 ...).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Static binary: the final stage has no libc. No VCS stamp: .git is not in
# the build context.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -o /pushbench ./cmd/pushbench

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /pushbench /pushbench
# distroless "nonroot" is uid/gid 65532; numeric, so that Kubernetes'
# runAsNonRoot can verify it.
USER 65532:65532
# serve (deploy/k8s: --addr 0.0.0.0:8080) and agent (--listen 0.0.0.0:7700).
EXPOSE 8080 7700
ENTRYPOINT ["/pushbench"]
CMD ["help"]
