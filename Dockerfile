# One image for every Bookify service; docker-compose.yml picks the module each container runs.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Dependencies first, so code changes reuse the cached pip layer.
COPY requirements/lock.txt requirements/lock.txt
RUN pip install -r requirements/lock.txt
COPY . .
# Not root at runtime; var/ must be writable for the default SQLite store.
RUN useradd --system --home-dir /app bookify && mkdir -p var && chown bookify var
USER bookify
CMD ["nameko", "run", "--config", "config.yaml", "gateway.service:GatewayService"]
