# One image for every role: API, workers, stripe-sim, seeding and the load generator.
# Build: docker build -t pique .    Run: docker compose up
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so editing the code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
# .cargo/config.toml sets SQLX_OFFLINE: the queries are checked against .sqlx/, no database.
COPY .cargo .cargo
COPY .sqlx .sqlx
COPY crates crates
COPY src src
COPY migrations migrations
COPY fixtures fixtures
COPY loadtests loadtests
# Embedded in the binary (the architecture profiles selected by PIQUE_PROFILE=NAME).
COPY profiles profiles
RUN cargo build --release --locked --bin pique && cp target/release/pique /usr/local/bin/pique

FROM debian:bookworm-slim
# libssl3: TLS for real Stripe and for https:// load targets; curl: health checks.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
    && rm -rf /var/lib/apt/lists/* && useradd --create-home --uid 10001 pique \
    && mkdir -p /data/media /data/mail && chown -R pique /data
COPY --from=build /usr/local/bin/pique /usr/local/bin/pique
COPY loadtests /app/loadtests
# Also on disk, as starting points for PIQUE_PROFILE=/app/profiles/<file>.toml.
COPY profiles /app/profiles
WORKDIR /app
USER pique
ENV PIQUE_BIND=0.0.0.0:8080 MEDIA_DIR=/data/media MAIL_DIR=/data/mail LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8080/health/ || exit 1
ENTRYPOINT ["pique"]
CMD ["serve"]
