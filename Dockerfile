# syntax=docker/dockerfile:1
#
# hookline container image.
#
#   docker build -t hookline .
#   docker run -d --name hookline -p 8080:8080 -v hookline-data:/data \
#     -e HOOKLINE_CHATBRICK_SECRET=whsec_... -e HOOKLINE_LIVEDESK_TOKEN=... hookline
#
# Ports: 8080 is the public listener (webhooks, /healthz, /readyz). 9090 is the admin API and
# /metrics: it listens on loopback inside the container unless HOOKLINE_ADMIN_LISTEN says
# otherwise (which needs HOOKLINE_ADMIN_TOKEN), and it is deliberately not EXPOSEd: reach it
# from an internal network only (see deploy/compose.yaml), never publish it to the internet.
#
# tests/deploy.rs reads the ENV, USER, ENTRYPOINT, CMD and HEALTHCHECK lines of this file and runs
# the binary the same way: keep them single-line, and the JSON arrays in exec form.

ARG RUST_VERSION=1

# ---- build ------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src

# Dependencies in their own layer: rebuilt only when a Cargo.toml or Cargo.lock change.
# The workspace names the benchmark (bench/) as a member: cargo reads its manifest, so it is
# copied with a stub source, but only the server (-p hookline) is built, here and below.
COPY Cargo.toml Cargo.lock ./
COPY bench/Cargo.toml ./bench/
COPY .cargo ./.cargo
RUN mkdir src bench/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > bench/src/main.rs \
 && cargo build --release --locked -p hookline \
 && rm -rf src

# The crate itself. src/send.rs embeds the documented examples from fixtures/ at compile time,
# the inspector its templates/ and assets/.
COPY src ./src
COPY fixtures ./fixtures
COPY templates ./templates
COPY assets ./assets
# COPY keeps the files' own modification times, which can be older than the stub build above:
# touch the crate roots so that cargo does not take the stub's artifacts for up to date.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked -p hookline \
 && install -D -m 0755 target/release/hookline /out/hookline \
 && install -d -m 0750 /out/data

# ---- runtime ----------------------------------------------------------------------------------
# glibc + libgcc + CA certificates, no shell, no package manager. Same Debian release as the
# builder, so the glibc the binary was linked against is there. (Outgoing HTTPS from the forward
# handler uses rustls with the bundled webpki roots and needs no system certificates.)
# For reproducible production builds, pin the digest: gcr.io/distroless/cc-debian12:nonroot@sha256:…
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="hookline" \
      org.opencontainers.image.description="Durable, authenticated webhook receiver for ChatBrick and liveDesk" \
      org.opencontainers.image.licenses="MIT"

COPY --from=builder /out/hookline /usr/local/bin/hookline
# A fresh named volume takes the ownership of the image's /data, so it is writable by USER.
COPY --from=builder --chown=65532:65532 /out/data /data

ENV HOOKLINE_DATA_DIR=/data HOOKLINE_LISTEN=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080

# The distroless "nonroot" user; a fixed uid so bind-mounted data directories can be chown'ed to it.
USER 65532:65532

# The image has no curl: the binary probes its own /readyz (exit 0 ready, 1 not).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/hookline", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/hookline"]
CMD ["serve"]
