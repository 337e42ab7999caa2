# One image with both binaries: dialin-settings and dialin-notifier.
#   docker build -t dialin .
# The dependency layer is cached (cargo-chef) and rebuilt only when Cargo.lock
# or a manifest changes; the runtime image is distroless, non-root, no shell.

FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin dialin-settings --bin dialin-notifier

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/dialin-settings /src/target/release/dialin-notifier /usr/local/bin/
USER nonroot:nonroot
EXPOSE 50051 50052 8081 9090
ENTRYPOINT ["/usr/local/bin/dialin-settings"]
