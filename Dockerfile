# The certification image: `sts-conformance` and the documented manifests, nothing else.
#   docker build -t sts-conformance:0.1.0 .
# CI builds this same file with no registry (scripts/certify-local.sh, README "Certify your
# cluster"): buildah replaces the `build` stage by a directory holding the binary it built
# (`--build-context build=<dir>`) and BASE by the Debian minbase made by
# scripts/build-images.sh.
ARG BASE=debian:bookworm-slim
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p harness --bin sts-conformance

FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sts-conformance /usr/local/bin/sts-conformance
# The harness reads the documented manifests (byte for byte from the source document) from here.
COPY manifests /opt/sts-conformance/manifests
ENV E2E_REPO_ROOT=/opt/sts-conformance
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["sts-conformance"]
