"""The container image recipe and the Compose setup, checked without a Docker engine: hadolint on
the Dockerfile, the Compose file against the compose-spec schema, and the properties the issue
asks for (multi-stage build, locked dependency layer, non-root, healthcheck, two sticky
replicas behind a proxy, one-shot migration, healthy backing services).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    # Both replicas write the same image store: one named volume on /data.
    assert app["volumes"] == ["images:/data"]
    assert {"images", "postgres"} <= set(compose["volumes"])
    assert int(app["stop_grace_period"].rstrip("s")) > 30


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
