# mosquitto-onboard broker: Mosquitto built from Debian sid's source package
# (2.1.2 when this was written: the newest version the test suite's version
# matrix passes on, docs/compatibility.md) with mosquitto_onboard.so and
# onboardctl. Build from the repository root (compose.yml does):
#   docker build -f docker/broker.Dockerfile -t mosquitto-onboard/broker .
# No key is in this image: the broker's certificate and key come from the
# broker-tls volume that the init job fills (docker/README.md).

# ---- the broker alone, from Debian's source package, the way the test suite
# builds it (scripts/brokers.sh: private apt lists, the archive the image
# already uses, a CMake build of the broker without clients, apps or plugins)
FROM debian:bookworm-slim AS mosquitto
# (g++: Mosquitto's CMake project declares C++ too, for libmosquittopp)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc g++ libc6-dev make cmake pkg-config libssl-dev libcjson-dev \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/brokers.sh /usr/local/bin/
# Extra apt-get options for that download, empty by default (docker/test.sh
# passes its host's "-o Acquire::Check-Valid-Until=false" on a machine that
# reads an archive snapshot).
ARG ONB_APT_OPTS=
RUN ONB_APT_OPTS="$ONB_APT_OPTS" brokers.sh --only mosquitto-sid /servers \
 && install -D -m 0755 /servers/mosquitto-sid/build/src/mosquitto /out/sbin/mosquitto \
 && strip --strip-unneeded /out/sbin/mosquitto \
 && ldd /out/sbin/mosquitto | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' \
      | while read -r so; do dpkg -S "$so" 2>/dev/null || dpkg -S "$(readlink -f "$so")"; done \
      | cut -d: -f1 | sort -u > /out/runtime-packages \
 && rm -rf /servers

# ---- build stage (the same text in broker.Dockerfile and claimsvc.Dockerfile,
# so that the second image reuses the first one's cached layers) ----
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config libssl-dev libhiredis-dev libcjson-dev \
      libmosquitto-dev mosquitto-dev libqrencode-dev libpng-dev libmicrohttpd-dev libcbor-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY lib/ lib/
COPY plugin/ plugin/
COPY cli/ cli/
COPY claimsvc/ claimsvc/
# Tests need more (cmocka, a Redis server): they run outside the images.
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DONB_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
 && mkdir -p /out/bin /out/lib \
 && install -m 0755 /build/cli/onboardctl /build/claimsvc/claimsvc /out/bin/ \
 && install -m 0644 /build/plugin/mosquitto_onboard.so /out/lib/ \
 && strip --strip-unneeded /out/bin/* /out/lib/*
# The Debian packages of every shared library the binaries load, so that the
# runtime stages install exactly those (and follow new dependencies by
# themselves: libcbor0.8 for claimsvc's CBOR topics came in this way).
RUN set -e; for f in /out/bin/* /out/lib/*; do ldd "$f"; done \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u > /tmp/libs \
 && while read -r so; do \
      dpkg -S "$so" 2>/dev/null || dpkg -S "$(readlink -f "$so")" 2>/dev/null \
        || dpkg -S "/usr$so" 2>/dev/null || dpkg -S "/usr$(readlink -f "$so")"; \
    done < /tmp/libs | cut -d: -f1 | sort -u > /out/runtime-packages \
 && cat /out/runtime-packages

# ---- runtime ----
FROM debian:bookworm-slim
COPY --from=build /out/runtime-packages /tmp/runtime-packages
COPY --from=mosquitto /out/runtime-packages /tmp/mosquitto-packages
COPY --from=mosquitto /out/sbin/mosquitto /usr/sbin/mosquitto
# A fixed uid/gid, so that the init job can hand the broker its key.
RUN groupadd --system --gid 10883 onboard-broker \
 && useradd --system --uid 10883 --gid 10883 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin onboard-broker \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(cat /tmp/runtime-packages /tmp/mosquitto-packages | sort -u) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages /tmp/mosquitto-packages
COPY --from=build /out/lib/mosquitto_onboard.so /usr/lib/mosquitto-onboard/
COPY --from=build /out/bin/onboardctl /usr/local/bin/
COPY policies/ /usr/share/mosquitto-onboard/policies/
COPY docker/bin/onb-broker docker/bin/onb-health docker/bin/render-mosquitto-conf /usr/local/bin/
COPY config/mosquitto.conf /tmp/mosquitto.conf.example
RUN install -d -m 0755 /etc/mosquitto-onboard \
 && render-mosquitto-conf /tmp/mosquitto.conf.example > /etc/mosquitto-onboard/mosquitto.conf.in \
 && rm /tmp/mosquitto.conf.example \
 && chmod 0755 /usr/local/bin/onb-broker /usr/local/bin/onb-health /usr/local/bin/render-mosquitto-conf \
 && install -d -m 0750 -o 10883 -g 10883 /etc/mosquitto-onboard/tls \
 && if ldd /usr/sbin/mosquitto /usr/lib/mosquitto-onboard/mosquitto_onboard.so /usr/local/bin/onboardctl | grep 'not found'; then exit 1; fi \
 && onboardctl --help >/dev/null \
 && { mosquitto -h || true; } | grep '^mosquitto version'
ENV ONBOARD_REDIS_URL=redis://redis:6379/0
USER 10883:10883
EXPOSE 8883
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["onb-health", "broker"]
ENTRYPOINT ["onb-broker"]
