# Multi-stage build of ttsmig and ttsmig-sim (docker-compose.yml).
#   build:   compile and install into /opt/ttsmig
#   runtime: ttsmig and ttsmig-sim with their shared libraries only
#   demo:    runtime plus bash, curl, psql and the demo script
#            (src/scripts/demo.sh in its "external" mode: the ledger and the
#            simulators are other services)
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential pkg-config libpq-dev libcurl4-openssl-dev libcjson-dev \
        libcmocka-dev libmicrohttpd-dev libsodium-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" all && make install PREFIX=/opt/ttsmig \
    && install -d /opt/ttsmig/share/ttsmig/src/scripts \
    && install -m 0755 src/scripts/demo.sh src/scripts/simctl.sh /opt/ttsmig/share/ttsmig/src/scripts/

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpq5 libcurl4 libcjson1 libmicrohttpd12 libsodium23 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home ttsmig \
    && install -d -o ttsmig -m 0700 /keys
COPY --from=build /opt/ttsmig /opt/ttsmig
ENV PATH=/opt/ttsmig/bin:$PATH MANPATH=/opt/ttsmig/share/man:
USER ttsmig
ENTRYPOINT ["ttsmig"]
CMD ["--help"]

FROM runtime AS demo
USER root
RUN apt-get update && apt-get install -y --no-install-recommends \
        bash curl postgresql-client \
    && rm -rf /var/lib/apt/lists/*
USER ttsmig
ENTRYPOINT ["/opt/ttsmig/share/ttsmig/src/scripts/demo.sh", "/opt/ttsmig/bin"]
CMD []
