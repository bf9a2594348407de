# syntax=docker/dockerfile:1
#
# ImageShark container image: one uvicorn process (HTTP + Socket.IO on port 8000) per container.
#
#   docker build -t imageshark .
#   docker run -p 8000:8000 -v imageshark-data:/data imageshark            # embedded SQLite
#   docker run --rm -e DATABASE_URL=postgresql://... imageshark migrate     # schema update
#
# All configuration comes from environment variables (README, "Settings"). Scaling is the
# orchestrator's job: run more containers, never more workers in one.

# ---- browser assets: node_modules/socket.io-client -> static/vendor ---------------------------
FROM node:20-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY scripts/ scripts/
RUN npm run build

# ---- Python environment: locked dependencies first, then the project itself -------------------
FROM python:3.12-slim AS build
# uv from PyPI, pinned; the environment lives in /app/.venv and is copied whole into the runtime.
# (The cache mounts below need BuildKit, the default builder since Docker 23.)
RUN pip install --no-cache-dir uv==0.13.8
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependency layer: rebuilt only when pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked --no-dev --no-install-project
# The project (packages web and realtime, with their templates and migrations) as a wheel.
COPY README.md ./
COPY web/ web/
COPY realtime/ realtime/
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked --no-dev --no-editable

# ---- runtime ---------------------------------------------------------------------------------
FROM python:3.12-slim AS runtime
# A fixed numeric UID/GID so Kubernetes' runAsNonRoot can verify it and volumes can be chowned.
RUN groupadd --system --gid 10001 imageshark \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin imageshark \
    && mkdir -p /data \
    && chown 10001:10001 /data
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY static/ /app/static/
COPY --from=assets /src/static/vendor/ /app/static/vendor/
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IMAGESHARK_HOST=0.0.0.0 \
    IMAGESHARK_PORT=8000 \
    IMAGESHARK_DATA_DIR=/data \
    IMAGESHARK_STATIC_DIR=/app/static
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000
# No curl in slim images: the interpreter does the request. A non-2xx answer raises -> exit 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('IMAGESHARK_PORT', '8000'), timeout=4)"]
# uvicorn is PID 1 and handles SIGTERM itself (finishes in-flight requests, up to 30 s).
ENTRYPOINT ["imageshark"]
CMD ["serve"]
