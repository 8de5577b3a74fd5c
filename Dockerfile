# pinsched as a sidecar: a slim, non-root image with the database on a volume.
#
# Reproducible inputs:
# * the base image is pinned by the digest of its multi-architecture index (tag kept for
#   readers). To move to a newer base: `docker buildx imagetools inspect python:3.11-slim-bookworm`
#   prints the current index digest; put tag and digest here (or pass --build-arg PYTHON_IMAGE=...).
# * dependencies come from requirements.lock / build.lock with their sha256 hashes
#   (`pip --require-hashes`); `make lock` regenerates both from pyproject.toml and build.in.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements.lock build.lock ./
RUN pip install --no-cache-dir --require-hashes -r build.lock \
 && pip install --no-cache-dir --require-hashes --prefix=/install -r requirements.lock
COPY pyproject.toml README.md ./
COPY pinsched ./pinsched
COPY clients/python ./clients/python
RUN pip install --no-cache-dir --no-deps --no-build-isolation --prefix=/install .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="pinsched" \
      org.opencontainers.image.description="Schedules Pinterest pins reliably"
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/pinsched --create-home pinsched
USER 10001
WORKDIR /var/lib/pinsched
VOLUME ["/var/lib/pinsched"]
# PINSCHED_HEALTH_LISTEN: a plain-text, health-only port on loopback for the HEALTHCHECK below,
# so it works whatever TLS (or mutual TLS) the API port uses; it serves nothing else.
ENV PINSCHED_DB=/var/lib/pinsched/pinsched.db \
    PINSCHED_LISTEN=0.0.0.0:50051 \
    PINSCHED_HEALTH_LISTEN=127.0.0.1:50052 \
    PINSCHED_HTTP_LISTEN=0.0.0.0:8080 \
    PINSCHED_SHUTDOWN_GRACE_S=8 \
    PYTHONUNBUFFERED=1
# Listening on all interfaces (gRPC 50051, HTTP/JSON 8080): pinsched refuses to start unless callers are authenticated.
# Give it TLS: -e PINSCHED_API_TOKEN=... (clients send "authorization: Bearer ...") together with
# PINSCHED_TLS_CERT_FILE/_KEY_FILE mounted read-only (a token without TLS crosses the network in
# clear text: pinsched warns at start), or mutual TLS (add PINSCHED_TLS_CLIENT_CA_FILE).
# Or keep it off the network: only on a private pod/compose network that publishes no port,
# -e PINSCHED_ALLOW_INSECURE_LISTEN=1. Set PINSCHED_SECRET_KEY to encrypt Pinterest tokens at rest.
# Metrics: -e PINSCHED_METRICS_LISTEN=0.0.0.0:9464. The default command serves the API only: the
# sandbox (a fake Pinterest with unauthenticated admin routes) runs only if asked for by name.
# Shutdown: SIGTERM → exit takes at most the grace period plus ~0.5 s (measured under load with
# Pinterest holding every request: `python -m bench --only shutdown`), so 8 s fits `docker stop`'s
# default 10 s; give Kubernetes terminationGracePeriodSeconds >= PINSCHED_SHUTDOWN_GRACE_S + 5.
EXPOSE 50051 8080 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["pinsched", "health", "--timeout", "3"]
ENTRYPOINT ["pinsched"]
CMD ["serve"]
