# depthgate as a GitHub App: `depthgate serve` (webhook + in-process workers on SQLite) by default,
# `depthgate worker` to scale out against Redis (see docker-compose.yml).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
# Dependencies only from the hash-locked file (pip refuses anything unpinned or unhashed)
COPY requirements/app.txt requirements/app.txt
RUN python -m venv /opt/depthgate \
 && /opt/depthgate/bin/pip install --no-cache-dir --require-hashes -r requirements/app.txt
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# depthgate itself, without resolving anything again
RUN /opt/depthgate/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM python:3.11-slim-bookworm
COPY --from=build /opt/depthgate /opt/depthgate
RUN useradd --system --uid 10001 --home-dir /var/lib/depthgate --create-home depthgate
USER 10001
WORKDIR /var/lib/depthgate
ENV PATH=/opt/depthgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DEPTHGATE_QUEUE_URL=sqlite:////var/lib/depthgate/queue.db
VOLUME ["/var/lib/depthgate"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
CMD ["depthgate", "serve", "--host", "0.0.0.0", "--port", "8080"]
