# pinsched as a sidecar: a slim, non-root image with the database on a volume.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pinsched ./pinsched
COPY clients/python ./clients/python
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="pinsched" \
      org.opencontainers.image.description="Schedules Pinterest pins reliably"
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/pinsched --create-home pinsched
USER 10001
WORKDIR /var/lib/pinsched
VOLUME ["/var/lib/pinsched"]
ENV PINSCHED_DB=/var/lib/pinsched/pinsched.db \
    PINSCHED_LISTEN=0.0.0.0:50051 \
    PINSCHED_HTTP_LISTEN=0.0.0.0:8080 \
    PYTHONUNBUFFERED=1
# Listening on all interfaces (gRPC 50051, HTTP/JSON 8080): pinsched refuses to start unless
# callers are authenticated.
# Run with -e PINSCHED_API_TOKEN=... (clients send "authorization: Bearer ...") or mutual TLS
# (PINSCHED_TLS_CERT_FILE/_KEY_FILE/_CLIENT_CA_FILE); only on a private pod/compose network,
# -e PINSCHED_ALLOW_INSECURE_LISTEN=1 instead. Metrics: -e PINSCHED_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 50051 8080 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["pinsched", "health", "--timeout", "3"]
ENTRYPOINT ["pinsched"]
CMD ["serve"]
