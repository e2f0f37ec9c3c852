# llm-proxy: a multi-stage image. Build on the official Swift image with Debian's -dev packages; run on
# debian:bookworm-slim with only the runtime libraries, as a non-root user.
#   docker build -t llm-proxy .
# BINARY_IMAGE swaps the build stage for any image holding /usr/local/bin/llm-proxy (a binary built
# elsewhere); scripts/verify-deploy.sh uses it to build and start the runtime stage where no Swift image is served.
ARG SWIFT_IMAGE=swift:6.1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG BINARY_IMAGE=build

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis-dev libpq-dev libmongoc-dev libbson-dev libsqlite3-dev \
      libcurl4-openssl-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
COPY IntegrationTests ./IntegrationTests
RUN swift build -c release --product llm-proxy --static-swift-stdlib \
 && install -s -m 0755 "$(swift build -c release --show-bin-path)/llm-proxy" /usr/local/bin/llm-proxy

FROM ${BINARY_IMAGE} AS binary

FROM ${RUNTIME_IMAGE}
# Keep in step with deploy/runtime-packages.txt (scripts/verify-deploy.sh checks the binary needs no more).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libhiredis0.14 libpq5 libmongoc-1.0-0 libbson-1.0-0 libsqlite3-0 \
      libcurl4 libssl3 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin llmproxy \
 && mkdir -p /data && chown llmproxy /data
COPY --from=binary /usr/local/bin/llm-proxy /usr/local/bin/llm-proxy
USER llmproxy
WORKDIR /data
ENV LLM_PROXY_LISTEN=0.0.0.0:8132 \
    LLM_PROXY_DATABASE_URL=sqlite:/data/llm-proxy.db
VOLUME ["/data"]
EXPOSE 8132
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["llm-proxy", "healthcheck"]
ENTRYPOINT ["llm-proxy"]
CMD ["serve"]
