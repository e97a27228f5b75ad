# syntax=docker/dockerfile:1
# The morningcheck operator image.
#   docker build -t morningcheck:0.1.0 .
# The same root file system as scripts/image.sh assembles with crane, which is the image
# the tests run: the build stage runs `scripts/image.sh --rootfs`, which builds the binary
# statically linked with the dependencies locked by Cargo.lock and lays out its files; the
# final stage is `scratch` with those files alone.
#   /usr/local/bin/morningcheck          the binary (time-zone data compiled in)
#   /etc/ssl/certs/ca-certificates.crt   Debian's CA bundle
#   /etc/passwd, /etc/group              nonroot, 65532
# No shell, no libc, no package manager.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY scripts/image.sh ./scripts/image.sh
# The registry and target caches speed up rebuilds; the files are copied out of the
# cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bash scripts/image.sh --rootfs /rootfs

FROM scratch
LABEL org.opencontainers.image.title="morningcheck" \
      org.opencontainers.image.description="Kubernetes operator: the morning check of clusters, Prometheus and EC2, with one Slack digest" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
COPY --from=build /rootfs/ /
USER 65532:65532
WORKDIR /
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/morningcheck", "controller"]
