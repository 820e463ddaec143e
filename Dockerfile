# ringside in a container: a build stage that compiles the `dist` profile (Cargo.toml), and a
# small runtime stage that runs it as a non-root user with the store on the /data volume.
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short HEAD) -t ringside .
#   docker run -d --name ringside --stop-timeout 20 -v ringside-data:/data \
#     -v "$PWD/config/ringside.toml:/app/config/ringside.toml:ro" -p 127.0.0.1:9090:9090 ringside
#
# compose.yaml is the same with its settings written out; docs/setup.md walks through both.
# `.ci/run` runs this build command outside a container (no container engine on CI), so the
# build below is checked on every change.

# --- build ---------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so editing ringside's own code does not rebuild them: a dummy crate
# with the real manifest and lock file.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && for bench in parse detector render webhook_load websocket_recovery at_size; do \
      echo 'fn main() {}' > "benches/${bench}.rs"; done \
 && cargo build --profile dist --locked \
 && rm -rf src benches
COPY . .
# Shown by `ringside --version`; unknown when not given. Declared after the dependency layer, so
# a new commit does not rebuild the dependencies.
ARG GIT_COMMIT=""
# COPY keeps the sources' own times, which can be older than the placeholder build's outputs:
# touch makes cargo rebuild ringside itself.
RUN touch src/main.rs src/lib.rs \
 && GIT_COMMIT="${GIT_COMMIT}" cargo build --profile dist --locked \
 && ./target/dist/ringside --version

# --- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
# Nothing to install: the CA roots are compiled in (webpki-roots), SQLite is bundled, and
# ringside handles SIGTERM itself as PID 1 and starts no child processes to reap.
RUN groupadd --system --gid 10001 ringside \
 && useradd --system --uid 10001 --gid ringside --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin ringside \
 && mkdir -p /data /app/config \
 && chown ringside:ringside /data \
 && chmod 0700 /data
COPY --from=build /src/target/dist/ringside /usr/local/bin/ringside

# Settings: a file mounted at /app/config/ringside.toml (the default path, relative to the
# working directory; readable by uid 10001), and/or RINGSIDE_<SECTION>__<KEY> variables. The
# listeners bind the container's own interfaces; the published ports decide who reaches them
# (compose.yaml publishes the operator port on 127.0.0.1 only).
ENV RINGSIDE_STORE__PATH=/data/ringside.sqlite3 \
    RINGSIDE_SERVER__LISTEN=0.0.0.0:8080 \
    RINGSIDE_SERVER__ADMIN_LISTEN=0.0.0.0:9090
VOLUME ["/data"]
WORKDIR /app
USER ringside:ringside
# 8080: the public listener (webhooks, Discord interactions, /healthz); 9090: the operator
# listener (/readyz, /metrics, /api/*), never to be published beyond the host.
EXPOSE 8080 9090
# A slim image has no curl: ringside asks its own /healthz (3 s timeout of its own).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/ringside", "healthcheck"]
# ringside stops gracefully on SIGTERM within 10 s. Docker's default stop timeout is also
# 10 s, after which it kills: give it more (`docker run --stop-timeout 20`, `docker stop -t 20`,
# compose.yaml's stop_grace_period), since an image cannot set its own.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ringside"]
CMD ["run"]
