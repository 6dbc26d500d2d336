# mosquitto-onboard claimsvc (fleet provisioning by claim) with onboardctl;
# the compose stack's init job runs from this image too (docker/bin/onb-init).
# Build from the repository root (compose.yml does):
#   docker build -f docker/claimsvc.Dockerfile -t mosquitto-onboard/claimsvc .
# No key is in this image: the device CA key and the claimsvc identities come
# from the claimsvc-secrets volume that the init job fills (docker/README.md).

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
# A fixed uid/gid, so that the init job can hand claimsvc its keys.
# openssl (the CLI) is for the init job's broker certificate.
RUN groupadd --system --gid 10884 onboard-claimsvc \
 && useradd --system --uid 10884 --gid 10884 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin onboard-claimsvc \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openssl $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
COPY --from=build /out/bin/claimsvc /out/bin/onboardctl /usr/local/bin/
COPY policies/ /usr/share/mosquitto-onboard/policies/
COPY config/templates/ /etc/mosquitto-onboard/templates/
COPY docker/bin/onb-claimsvc docker/bin/onb-init docker/bin/onb-health /usr/local/bin/
RUN chmod 0755 /usr/local/bin/onb-claimsvc /usr/local/bin/onb-init /usr/local/bin/onb-health \
 && install -d -m 0750 -o 10884 -g 10884 /etc/mosquitto-onboard/secrets \
 && install -d -m 0700 /pki /operator-pki /out/broker /out/claimsvc \
 && if ldd /usr/local/bin/claimsvc /usr/local/bin/onboardctl | grep 'not found'; then exit 1; fi \
 && claimsvc --help >/dev/null && onboardctl --help >/dev/null
ENV ONBOARD_REDIS_URL=redis://redis:6379/0
USER 10884:10884
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 CMD ["onb-health", "claimsvc"]
CMD ["onb-claimsvc"]
