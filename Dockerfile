# The sous host image: the `sous` binary (linked against glibc) on distroless,
# running as non-root (65532). Build from the repository root:
#   docker build -t ghcr.io/sous-dev/sous:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p sous --locked \
    && install -D target/release/sous /out/sous

# glibc, CA certificates and /etc/passwd with nonroot, nothing else (no shell).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sous /usr/local/bin/sous
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sous"]
CMD ["run"]
