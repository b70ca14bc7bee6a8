# Multi-stage build of ttsmig (and ttsmig-sim once it exists).
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential pkg-config libpq-dev libcurl4-openssl-dev libcjson-dev \
        libcmocka-dev libmicrohttpd-dev libsodium-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" all && make install PREFIX=/opt/ttsmig

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpq5 libcurl4 libcjson1 libmicrohttpd12 libsodium23 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home ttsmig
COPY --from=build /opt/ttsmig /opt/ttsmig
ENV PATH=/opt/ttsmig/bin:$PATH
USER ttsmig
ENTRYPOINT ["ttsmig"]
CMD ["--help"]
