# The load balancer in front of the brokers: HAProxy from Debian's package,
# TCP mode (docker/haproxy.cfg). Build from the repository root (compose.yml
# does): docker build -f docker/haproxy.Dockerfile -t mosquitto-onboard/lb .
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY docker/haproxy.cfg /etc/haproxy/haproxy.cfg
RUN haproxy -c -f /etc/haproxy/haproxy.cfg
USER haproxy
EXPOSE 8883
# healthy = listening on 8883 (0x22B3, state 0A): the image has no HTTP client
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["sh", "-c", "grep -qi ':22B3 00000000:0000 0A' /proc/net/tcp /proc/net/tcp6"]
# -W master-worker, -db in the foreground: PID 1, stops on SIGTERM/SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
