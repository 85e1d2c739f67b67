# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY .cargo ./.cargo
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
RUN cargo build --release --locked --bin scimd

# Runtime stage: the binary alone on a slim base.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/scimd --create-home scimd
COPY --from=build /src/target/release/scimd /usr/local/bin/scimd
USER scimd
WORKDIR /var/lib/scimd
ENV SCIMD_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///var/lib/scimd/scimd.db \
    SCIMD_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["scimd"]
CMD ["serve"]
