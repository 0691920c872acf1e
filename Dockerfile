# syntax=docker/dockerfile:1
# One image for every Bookify service; the command picks the service, e.g.
#   nameko run --config config.yaml auth_service.service
# Targets: runtime (default, what is deployed), debug (adds debugpy), localstripe (Stripe emulator).

# Exact tag. Add "@sha256:<digest>" when building from a registry you trust
# (`docker buildx imagetools inspect python:3.11.14-slim-bookworm` prints it).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: resolve the pinned dependencies into a venv; pip and its caches stay here ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/ /tmp/requirements/
# base.in names the runtime packages; lock.txt pins everything they pull in (no test tools).
RUN pip install -r /tmp/requirements/base.in -c /tmp/requirements/lock.txt

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed numeric uid, so Kubernetes can verify runAsNonRoot.
RUN groupadd --system --gid 10001 bookify \
 && useradd --system --uid 10001 --gid bookify --no-create-home --home-dir /app bookify
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Code stays owned by root (read-only to the service); bytecode is compiled now because the
# user cannot write it later. var/ is the one writable place, for the default SQLite store.
COPY . .
RUN python -m compileall -q /app && mkdir -p var && chown bookify:bookify var
USER 10001:10001
EXPOSE 8000 50051
CMD ["nameko", "run", "--config", "config.yaml", "gateway.service:GatewayService"]

# --- debug: the runtime plus debugpy (docker-compose.debug.yml) ------------------------------
FROM runtime AS debug
# uid 0 only to add debugpy to the venv. Its version comes from the constraint files.
USER 0
# hadolint ignore=DL3013
RUN pip install --no-cache-dir debugpy -c requirements/lock.txt -c requirements/test.in
USER 10001:10001

# --- localstripe: the Stripe emulator docker-compose.yml runs without Stripe credentials -----
FROM ${PYTHON_IMAGE} AS localstripe
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements/ /tmp/requirements/
# The version comes from the constraint files, hence no "==" here.
# hadolint ignore=DL3013
RUN pip install localstripe -c /tmp/requirements/lock.txt -c /tmp/requirements/test.in \
 && useradd --system --uid 10001 --no-create-home localstripe
USER 10001:10001
EXPOSE 8420
CMD ["localstripe", "--port", "8420", "--from-scratch"]
