# syntax=docker/dockerfile:1
# The morningcheck operator image.
#   docker build -t morningcheck:0.1.0 .
# Build: the official Rust image, with the dependencies locked by Cargo.lock.
# Runtime: distroless cc (glibc, libgcc, CA certificates, time-zone data, /etc/passwd with
# the `nonroot` user 65532), no shell and no package manager.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Strip the binary without touching Cargo.toml's release profile.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TERM_COLOR=never
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The registry and target caches speed up rebuilds; the binary is copied out of the
# cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin morningcheck \
 && install -D -m 0755 target/release/morningcheck /out/morningcheck

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="morningcheck" \
      org.opencontainers.image.description="Kubernetes operator: the morning check of clusters, Prometheus and EC2, with one Slack digest" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/morningcheck /usr/local/bin/morningcheck
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/morningcheck", "controller"]
