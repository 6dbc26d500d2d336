# The registry: redis-server from Debian's package (Hub images are not used,
# so that the whole stack builds from a Debian mirror). Persistence: an
# append-only file and RDB snapshots in /data, a volume in compose.yml.
# Build from the repository root (compose.yml does):
#   docker build -f docker/redis.Dockerfile -t mosquitto-onboard/redis .
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -m 0750 -o redis -g redis /data
USER redis
WORKDIR /data
EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["sh", "-c", "redis-cli ping | grep -q PONG"]
# Not published by compose.yml: only the stack's own network reaches it
# (protected mode would refuse those clients, as they are not on loopback).
# Use Redis ACLs (a password in ONBOARD_REDIS_URL) where that network is shared.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", \
     "--appendonly", "yes", "--appendfsync", "everysec", "--save", "300 10 60 10000"]
