# Builds the `stint` binary (sequencer, verifier, wallet) from this workspace.
#   docker build -t stint .
FROM rust:1-bookworm AS build
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends clang libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin stint \
    && cp target/release/stint /usr/local/bin/stint

FROM debian:bookworm-slim
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/stint /usr/local/bin/stint
ENTRYPOINT ["stint"]
CMD ["--help"]
