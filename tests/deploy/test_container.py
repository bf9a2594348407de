"""The container image recipe and the Compose setup, checked without a Docker engine: hadolint on
the Dockerfile, the Compose file against the compose-spec schema, and the properties the issue
asks for (multi-stage build, locked dependency layer, non-root, healthcheck, two sticky
replicas behind a proxy, one-shot migration, healthy backing services, images in an
S3-compatible server whose bucket and CORS rules a one-shot service sets up, one rendition
worker on the Redis queue).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from web.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
CADDYFILE = REPO / "deploy" / "compose" / "Caddyfile"


def tool(name: str) -> str:
    """Path of a command-line tool installed in this environment; fails (never skips) if absent."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed (it is a dev dependency of the project)")
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------------------------------------
# Dockerfile


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments and RUN
    cache mounts dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            if keyword.upper() == "RUN":  # BuildKit cache mounts do not change what runs
                rest = re.sub(r"--mount=\S+\s+", "", rest)
            result.append((keyword.upper(), " ".join(rest.split())))
    return result


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions by stage name (``FROM image AS name``)."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+) AS (\S+)", rest, flags=re.IGNORECASE)
            assert match, f"unnamed stage: FROM {rest}"
            current = [(keyword, match.group(1))]
            result[match.group(2)] = current
        else:
            current.append((keyword, rest))
    return result


def test_hadolint_finds_no_errors() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "error", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_assets_then_locked_dependencies_then_source() -> None:
    built = stages()
    assert list(built) == ["assets", "build", "runtime"]
    assets = built["assets"]
    assert assets[0] == ("FROM", "node:20-slim")
    assert ("RUN", "npm ci --no-audit --no-fund") in assets
    assert ("RUN", "npm run build") in assets
    build = built["build"]
    assert build[0] == ("FROM", "python:3.12-slim")
    pip = next(rest for keyword, rest in build if keyword == "RUN" and "pip install" in rest)
    assert re.search(r"\buv==\d+\.\d+\.\d+\b", pip), "uv must be pinned"
    runs = [rest for keyword, rest in build if keyword == "RUN"]
    copies = [rest for keyword, rest in build if keyword == "COPY"]
    assert copies[0] == "pyproject.toml uv.lock ./"
    # Dependencies from the lockfile in their own layer, before any source is copied.
    order = [f"{keyword} {rest}" for keyword, rest in build]
    deps = order.index("RUN uv sync --locked --no-dev --no-install-project")
    source = order.index("COPY web/ web/")
    assert deps < source
    later = runs[runs.index("uv sync --locked --no-dev --no-install-project") + 1 :]
    assert any(command.startswith("uv sync --locked --no-dev") for command in later)
    # uv comes from PyPI, not from a downloaded binary.
    for _, rest in instructions():
        assert not re.search(r"\b(curl|wget)\b", rest), rest


def test_runtime_stage() -> None:
    runtime = stages()["runtime"]
    assert runtime[0] == ("FROM", "python:3.12-slim")
    by_keyword: dict[str, list[str]] = {}
    for keyword, rest in runtime:
        by_keyword.setdefault(keyword, []).append(rest)
    # Non-root, numerically (Kubernetes' runAsNonRoot can only verify a numeric user).
    (user,) = by_keyword["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000
    env = " ".join(by_keyword["ENV"])
    for setting in ("IMAGESHARK_HOST=0.0.0.0", "IMAGESHARK_DATA_DIR=/data", "IMAGESHARK_PORT=8000"):
        assert setting in env
    assert "IMAGESHARK_STATIC_DIR=/app/static" in env
    assert by_keyword["VOLUME"] == ['["/data"]']
    (healthcheck,) = by_keyword["HEALTHCHECK"]
    assert "python" in healthcheck and "urllib" in healthcheck and "/healthz" in healthcheck
    assert by_keyword["ENTRYPOINT"] == ['["imageshark"]']
    assert by_keyword["CMD"] == ['["serve"]']
    assert by_keyword["EXPOSE"] == ["8000"]
    copies = " ".join(by_keyword["COPY"])
    assert "--from=build /app/.venv /app/.venv" in copies
    assert "--from=assets /src/static/vendor/ /app/static/vendor/" in copies


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, pattern.removeprefix("**/"))
            or fnmatch.fnmatch(path, pattern)
            or path.startswith(pattern.rstrip("/") + "/")
            for pattern in patterns
        )

    for path in (".venv", "node_modules", "static/vendor", ".git", "data", "tests", "helm"):
        assert ignored(path), path
    sources = []
    for keyword, rest in instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            sources += rest.split()[:-1]
    assert "README.md" in sources  # hatchling reads it for the package metadata
    for source in sources:
        assert not ignored(source.rstrip("/")), f"{source} is copied but ignored"
        assert (REPO / source).exists(), source


# ---------------------------------------------------------------------------------------------
# docker-compose.yml and the proxy


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_replicas_trust_only_the_proxy_for_client_addresses(
    compose: dict[str, Any],
) -> None:
    app_env = compose["services"]["app"]["environment"]
    assert "FORWARDED_ALLOW_IPS" not in app_env
    proxy_address = compose["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    assert app_env["IMAGESHARK_TRUSTED_PROXIES"] == proxy_address
    pool = compose["networks"]["default"]["ipam"]["config"][0]
    subnet, dynamic = ipaddress.ip_network(pool["subnet"]), ipaddress.ip_network(pool["ip_range"])
    # The fixed address is in the network but outside the range handed to other containers.
    address = ipaddress.ip_address(proxy_address)
    assert address in subnet and address not in dynamic and dynamic.subnet_of(subnet)


def test_compose_file_matches_the_compose_spec() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_two_app_replicas_after_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    app = services["app"]
    assert app["deploy"]["replicas"] == 2
    assert app["command"] == ["serve"]
    assert "ports" not in app, "the app is reached through the proxy only"
    assert app["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
        "s3-init": {"condition": "service_completed_successfully"},
    }
    env = app["environment"]
    assert env["IMAGESHARK_MIGRATE_ON_START"] == "false"
    assert env["IMAGESHARK_LOG_FORMAT"] == "json"
    assert env["DATABASE_URL"].startswith("postgresql://")
    assert env["DATABASE_URL"].split("@")[1].startswith("postgres:5432/")
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["image"] == app["image"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"
    # No shared image volume: the images live in the bucket.
    assert "volumes" not in app
    assert "images" not in compose["volumes"]
    assert {"garage", "postgres"} <= set(compose["volumes"])
    assert int(app["stop_grace_period"].rstrip("s")) > 30


def test_compose_keeps_images_in_an_s3_compatible_server(compose: dict[str, Any]) -> None:
    services = compose["services"]
    s3 = services["s3"]
    # A pinned release of Garage (v2.3 or newer has --single-node --default-bucket).
    image, _, tag = s3["image"].partition(":")
    assert image == "dxflrs/garage"
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", tag)
    assert match, s3["image"]
    assert tuple(int(part) for part in match.groups()) >= (2, 3, 0)
    assert s3["command"] == ["/garage", "server", "--single-node", "--default-bucket"]
    assert s3["healthcheck"]["test"] == ["CMD", "/garage", "status"]
    assert "garage:/var/lib/garage" in s3["volumes"]
    config = next(v for v in s3["volumes"] if v.endswith(":/etc/garage.toml:ro"))
    garage = tomllib.loads((REPO / config.split(":")[0]).read_text())
    assert garage["replication_factor"] == 1
    assert garage["s3_api"]["api_bind_addr"].endswith(":3900")
    garage_env = s3["environment"]
    key_id = garage_env["GARAGE_DEFAULT_ACCESS_KEY"]
    secret = garage_env["GARAGE_DEFAULT_SECRET_KEY"]
    # Garage's key formats: "GK" + 12 hex-encoded bytes, secret 32 hex-encoded bytes.
    assert re.fullmatch(r"\$\{S3_ACCESS_KEY_ID:-GK[0-9a-f]{24}\}", key_id), key_id
    assert re.fullmatch(r"\$\{S3_SECRET_ACCESS_KEY:-[0-9a-f]{64}\}", secret), secret
    assert re.fullmatch(r"\$\{GARAGE_RPC_SECRET:-[0-9a-f]{64}\}", garage_env["GARAGE_RPC_SECRET"])

    env = services["app"]["environment"]
    assert env["IMAGESHARK_STORAGE_URL"] == f"s3://{garage_env['GARAGE_DEFAULT_BUCKET']}/photos"
    assert env["AWS_ACCESS_KEY_ID"] == key_id and env["AWS_SECRET_ACCESS_KEY"] == secret
    assert env["AWS_REGION"] == garage["s3_api"]["s3_region"]
    # Presigned URLs name AWS_ENDPOINT_URL: a name both the replicas (network alias) and the
    # browser (*.localhost is this machine, port published) resolve to the store.
    endpoint = re.fullmatch(r"\$\{IMAGESHARK_S3_URL:-(.+)\}", env["AWS_ENDPOINT_URL"])
    assert endpoint, env["AWS_ENDPOINT_URL"]
    parts = urlsplit(endpoint.group(1))
    assert parts.hostname in s3["networks"]["default"]["aliases"]
    assert parts.hostname is not None and parts.hostname.endswith(".localhost")
    assert f"{parts.port}:3900" in s3["ports"]
    settings = Settings(
        storage_url=env["IMAGESHARK_STORAGE_URL"],
        aws_endpoint_url=endpoint.group(1),
        aws_region=env["AWS_REGION"],
    )
    assert settings.storage.scheme == "s3" and settings.storage.bucket == "imageshark"


def test_compose_sets_up_the_bucket_and_its_cors_rules_once(compose: dict[str, Any]) -> None:
    services = compose["services"]
    init = services["s3-init"]
    assert re.fullmatch(r"amazon/aws-cli:2\.\d+\.\d+", init["image"]), init["image"]
    assert init["depends_on"] == {"s3": {"condition": "service_healthy"}}
    assert init["restart"] == "no"
    assert (
        init["environment"]["S3_BUCKET"] == services["s3"]["environment"]["GARAGE_DEFAULT_BUCKET"]
    )
    assert init["environment"]["AWS_ENDPOINT_URL"] == "http://s3:3900"
    mounts = {m.split(":")[1]: REPO / m.split(":")[0] for m in init["volumes"]}
    assert init["entrypoint"] == ["/bin/sh", "/s3-init.sh"]
    script = mounts["/s3-init.sh"].read_text()
    assert "create-bucket" in script and "put-bucket-cors" in script
    assert "file:///s3-cors.json" in script
    syntax = run("sh", "-n", str(mounts["/s3-init.sh"]))
    assert syntax.returncode == 0, syntax.stderr
    (rule,) = json.loads(mounts["/s3-cors.json"].read_text())["CORSRules"]
    assert rule["AllowedOrigins"] == ["http://localhost:8080"]
    assert compose["services"]["proxy"]["ports"] == ["8080:8080"]  # that origin is the proxy
    assert set(rule["AllowedMethods"]) == {"PUT", "POST", "GET"}
    assert rule["AllowedHeaders"] == ["*"]


def test_compose_runs_one_rendition_worker_on_the_redis_queue(compose: dict[str, Any]) -> None:
    services = compose["services"]
    worker, app = services["worker"], services["app"]
    assert worker["command"] == ["worker"]
    assert worker["image"] == app["image"]
    assert worker.get("deploy", {}).get("replicas", 1) == 1
    assert worker["environment"] == app["environment"]
    assert worker["environment"]["IMAGESHARK_RENDITION_QUEUE"] == "redis"
    assert worker["depends_on"] == app["depends_on"]
    assert "ports" not in worker and "volumes" not in worker
    probe = " ".join(worker["healthcheck"]["test"])
    assert "http://127.0.0.1:8001/readyz" in probe
    assert int(worker["stop_grace_period"].rstrip("s")) > Settings().rendition_timeout_seconds


def test_compose_passes_sign_on_settings_through_unset(compose: dict[str, Any]) -> None:
    """Organisation sign-on comes from the shell or .env (a key without a value); nothing is
    set by default, which the settings accept (all of it or none)."""
    env = compose["services"]["app"]["environment"]
    names = [name for name in env if name.startswith("IMAGESHARK_OIDC_")]
    assert set(names) == {
        "IMAGESHARK_OIDC_ISSUER",
        "IMAGESHARK_OIDC_CLIENT_ID",
        "IMAGESHARK_OIDC_CLIENT_SECRET",
        "IMAGESHARK_OIDC_SCOPES",
        "IMAGESHARK_OIDC_NAME",
    }
    assert all(env[name] is None for name in names)
    assert not Settings().oidc_enabled


def test_compose_backing_services_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert re.fullmatch(r"postgres:16(\.\d+)*(-\w+)?", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7(\.\d+)*(-\w+)?", services["redis"]["image"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["postgres"]["volumes"] == ["postgres:/var/lib/postgresql/data"]


def test_compose_proxy_is_sticky_and_passes_websockets(compose: dict[str, Any]) -> None:
    proxy = compose["services"]["proxy"]
    assert proxy["ports"] == ["8080:8080"]
    assert proxy["depends_on"] == {"app": {"condition": "service_healthy"}}
    (mount,) = proxy["volumes"]
    source, target, mode = mount.split(":")
    assert (REPO / source).resolve() == CADDYFILE
    assert target == "/etc/caddy/Caddyfile" and mode == "ro"
    caddyfile = CADDYFILE.read_text()
    directives = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    # Every replica found by DNS, re-resolved; browsers pinned by a cookie (long-polling).
    assert "dynamic a app 8000 {" in directives
    assert any(d.startswith("lb_policy cookie") for d in directives)
    assert ":8080 {" in directives
    # Uploads up to the app's limit (40 MiB) plus multipart overhead.
    (size,) = [d.split()[1] for d in directives if d.startswith("max_size ")]
    parsed = re.fullmatch(r"(\d+)(MiB|MB)", size)
    assert parsed, size
    number, unit = parsed.groups()
    assert int(number) * (1024**2 if unit == "MiB" else 1000**2) > 40 * 1024**2
    # No read timeout that would cut idle WebSockets (Caddy has none unless configured).
    assert not any(d.startswith(("stream_timeout", "read_timeout")) for d in directives)


# ---------------------------------------------------------------------------------------------
# README


def test_readme_has_a_deploy_section() -> None:
    readme = (REPO / "README.md").read_text()
    assert "\n## Deploy\n" in readme
    deploy = readme.split("\n## Deploy\n", 1)[1]
    for needle in (
        "docker compose up",
        "http://localhost:8080",
        "helm install",
        "helm upgrade",
        "helm uninstall",
        "ReadWriteMany",
    ):
        assert needle in deploy, needle
