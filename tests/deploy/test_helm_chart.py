"""The Helm chart, checked without a cluster: strict lint, rendering of the default values and of
every ``ci/*-values.yaml`` profile, Kubernetes 1.30 schema validation in strict mode, the values
schema and ``imageshark.validateValues``, and the properties a working deployment depends on
(probes, security context, sticky sessions, migration hook, Secrets).

Tools: ``helm-python-sdk`` (Helm's Go SDK as a library; no ``helm`` binary needed) and
``kubernetes-validate``. A missing tool fails the import, never skips.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from web.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "imageshark"
KUBE_VERSION = "1.30.0"
RELEASE = "photos"
NAMESPACE = "events"
FULLNAME = f"{RELEASE}-imageshark"

PROFILE_FILES = {path.name: path for path in sorted((CHART / "ci").glob("*-values.yaml"))}
PROFILES = ["default", *PROFILE_FILES]

# Kinds the chart may render, and whether they come with a schema in kubernetes-validate.
CRD_KINDS = {"ServiceMonitor"}

# The fields of monitoring.coreos.com/v1 ServiceMonitor the chart uses, from the Prometheus
# Operator's CRD, strict (kubernetes-validate ships no CRD schemas).
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {"type": "array"},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


# ---------------------------------------------------------------------------------------------
# rendering helpers


def profile_values(profile: str) -> dict[str, Any]:
    """User values of a profile: ``{}`` for the chart defaults, else a ci/*-values.yaml file."""
    if profile == "default":
        return {}
    loaded = yaml.safe_load(PROFILE_FILES[profile].read_text())
    assert isinstance(loaded, dict), profile
    return loaded


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, recursively for mappings (like ``helm -f a -f b``)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


class Release:
    """One offline render: the manifests by template, parsed, plus NOTES.txt."""

    def __init__(self, rendered: dict[str, str]) -> None:
        self.notes = next((text for name, text in rendered.items() if name.endswith("NOTES.txt")))
        self.documents: list[dict[str, Any]] = []
        for name, text in sorted(rendered.items()):
            if not name.endswith(".yaml"):
                continue
            for document in yaml.safe_load_all(text):
                if document:
                    assert isinstance(document, dict), f"{name} renders a non-mapping"
                    self.documents.append(document)

    def names(self) -> set[str]:
        return {f"{doc['kind']}/{doc['metadata']['name']}" for doc in self.documents}

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        matches = [doc for doc in self.all(kind) if name is None or doc["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name or ''}, got {self.names()}"
        return matches[0]

    def has(self, kind: str) -> bool:
        return bool(self.all(kind))

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(``Kind/name``, pod spec) of every workload: Deployment, Job, bare Pod."""
        for doc in self.documents:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            if doc["kind"] in ("Deployment", "Job"):
                yield name, doc["spec"]["template"]["spec"]
            elif doc["kind"] == "Pod":
                yield name, doc["spec"]


def render(chart: helm_python.Chart, values: dict[str, Any]) -> Release:
    return Release(chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True))


def render_error(chart: helm_python.Chart, values: dict[str, Any]) -> str:
    """The message of a render that must fail."""
    with pytest.raises(helm_python.HelmError) as failure:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return str(failure.value)


@pytest.fixture(scope="module")
def releases(chart: helm_python.Chart) -> dict[str, Release]:
    return {profile: render(chart, profile_values(profile)) for profile in PROFILES}


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [c for c in pod_spec["containers"] if c["name"] == name]
    assert len(matches) == 1, [c["name"] for c in pod_spec["containers"]]
    return matches[0]


def app_container(release: Release) -> dict[str, Any]:
    return container(release.one("Deployment", FULLNAME)["spec"]["template"]["spec"], "imageshark")


def env_of(cont: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in cont.get("env", [])}


def config_map(release: Release) -> dict[str, str]:
    data: dict[str, str] = release.one("ConfigMap", FULLNAME)["data"]
    assert all(isinstance(value, str) for value in data.values()), data
    return data


# ---------------------------------------------------------------------------------------------
# lint, render, schema validation


def test_ci_profiles_cover_the_three_deployment_shapes() -> None:
    assert {
        "single-replica-values.yaml",
        "external-ha-values.yaml",
        "autoscaling-values.yaml",
        "object-storage-values.yaml",
    } <= set(PROFILE_FILES)


@pytest.mark.parametrize("profile", PROFILES)
def test_lint_is_clean_in_strict_mode(profile: str) -> None:
    report = helm_python.lint(
        CHART, profile_values(profile) or None, strict=True, kube_version=f"v{KUBE_VERSION}"
    )
    assert report["total_charts_linted"] == 1, report
    assert report["errors"] == [], report
    # Severity: 1 info, 2 warning, 3 error. Strict mode fails on warnings; the one info
    # message Helm gives is "icon is recommended".
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


@pytest.mark.parametrize("profile", PROFILES)
def test_every_manifest_validates_against_kubernetes_1_30_strict(
    releases: dict[str, Release], profile: str
) -> None:
    release = releases[profile]
    assert release.documents
    for doc in release.documents:
        where = f"{profile}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_KINDS:
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{where}: no Kubernetes {KUBE_VERSION} schema for {doc['apiVersion']}")
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {'.'.join(map(str, error.path))}: {error.message}")
        assert doc["metadata"].get("namespace") in (None, NAMESPACE), where


def test_strict_validation_catches_a_misspelled_field(releases: dict[str, Release]) -> None:
    """Control: the validator above really is strict (unknown fields fail)."""
    deployment = copy.deepcopy(releases["default"].one("Deployment", FULLNAME))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


EXPECTED_RESOURCES = {
    "default": {
        f"ConfigMap/{FULLNAME}",
        f"Deployment/{FULLNAME}",
        f"PersistentVolumeClaim/{FULLNAME}-data",
        f"Pod/{FULLNAME}-test-connection",
        f"PodDisruptionBudget/{FULLNAME}",
        f"Service/{FULLNAME}",
        f"ServiceAccount/{FULLNAME}",
    },
    "single-replica-values.yaml": {
        f"ConfigMap/{FULLNAME}",
        f"Deployment/{FULLNAME}",
        f"Ingress/{FULLNAME}",
        f"PersistentVolumeClaim/{FULLNAME}-data",
        f"Pod/{FULLNAME}-test-connection",
        f"PodDisruptionBudget/{FULLNAME}",
        f"Service/{FULLNAME}",
        f"ServiceAccount/{FULLNAME}",
    },
    "external-ha-values.yaml": {
        f"ConfigMap/{FULLNAME}",
        f"Deployment/{FULLNAME}",
        f"Ingress/{FULLNAME}",
        f"Job/{FULLNAME}-migrate",
        f"PersistentVolumeClaim/{FULLNAME}-data",
        f"Pod/{FULLNAME}-test-connection",
        f"PodDisruptionBudget/{FULLNAME}",
        f"Service/{FULLNAME}",
        f"ServiceAccount/{FULLNAME}",
    },
    "autoscaling-values.yaml": {
        f"ConfigMap/{FULLNAME}",
        f"Deployment/{FULLNAME}",
        f"HorizontalPodAutoscaler/{FULLNAME}",
        f"Job/{FULLNAME}-migrate",
        f"Pod/{FULLNAME}-test-connection",
        f"PodDisruptionBudget/{FULLNAME}",
        f"Secret/{FULLNAME}",
        f"Secret/{FULLNAME}-migrate",
        f"Service/{FULLNAME}",
        f"ServiceAccount/{FULLNAME}",
        f"ServiceMonitor/{FULLNAME}",
    },
    "object-storage-values.yaml": {
        f"ConfigMap/{FULLNAME}",
        f"Deployment/{FULLNAME}",
        f"Deployment/{FULLNAME}-worker",
        f"HorizontalPodAutoscaler/{FULLNAME}-worker",
        f"Ingress/{FULLNAME}",
        f"Job/{FULLNAME}-migrate",
        f"Pod/{FULLNAME}-test-connection",
        f"PodDisruptionBudget/{FULLNAME}",
        f"PodDisruptionBudget/{FULLNAME}-worker",
        f"Service/{FULLNAME}",
        f"Service/{FULLNAME}-worker",
        f"ServiceAccount/{FULLNAME}",
        f"ServiceMonitor/{FULLNAME}",
        f"ServiceMonitor/{FULLNAME}-worker",
    },
}


@pytest.mark.parametrize("profile", PROFILES)
def test_rendered_resources(releases: dict[str, Release], profile: str) -> None:
    assert releases[profile].names() == EXPECTED_RESOURCES[profile]


@pytest.mark.parametrize("profile", PROFILES)
def test_standard_labels_on_every_resource(releases: dict[str, Release], profile: str) -> None:
    for doc in releases[profile].documents:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "imageshark"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"]
        assert labels["helm.sh/chart"].startswith("imageshark-")


# ---------------------------------------------------------------------------------------------
# pods: probes, security, shutdown


@pytest.mark.parametrize("profile", PROFILES)
def test_probes(releases: dict[str, Release], profile: str) -> None:
    app = app_container(releases[profile])
    assert app["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert app["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert app["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert app["args"] == ["serve"]


@pytest.mark.parametrize("profile", PROFILES)
def test_restricted_security_context_on_every_pod(
    releases: dict[str, Release], profile: str
) -> None:
    pods = list(releases[profile].pod_specs())
    assert pods
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] >= 10000, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for cont in pod["containers"]:
            context = cont["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert context.get("privileged", False) is False, name
            assert {"cpu", "memory"} <= set(cont["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(cont["resources"]["limits"]), name


@pytest.mark.parametrize("profile", PROFILES)
def test_writable_paths_are_volumes(releases: dict[str, Release], profile: str) -> None:
    """With a read-only root filesystem, /tmp is an emptyDir and /data the image volume."""
    release = releases[profile]
    pod = release.one("Deployment", FULLNAME)["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in app_container(release)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    data = volumes[mounts["/data"]]
    values = profile_values(profile)
    if values.get("storage", {}).get("url"):
        # Object storage: request-temporary files only, on a bounded emptyDir.
        assert data["emptyDir"]["sizeLimit"]
    else:
        claim = values.get("persistence", {}).get("existingClaim") or f"{FULLNAME}-data"
        assert data["persistentVolumeClaim"] == {"claimName": claim}
    assert config_map(release)["IMAGESHARK_DATA_DIR"] == "/data"


@pytest.mark.parametrize("profile", PROFILES)
def test_graceful_shutdown_outlasts_the_upload_drain(
    releases: dict[str, Release], profile: str
) -> None:
    """uvicorn drains in-flight requests for 30 s after SIGTERM, after the preStop sleep."""
    release = releases[profile]
    pod = release.one("Deployment", FULLNAME)["spec"]["template"]["spec"]
    pre_stop = app_container(release)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > 30 + int(pre_stop[1])


def test_update_strategy_follows_the_volume(releases: dict[str, Release]) -> None:
    single = releases["default"].one("Deployment", FULLNAME)["spec"]
    assert single["strategy"] == {"type": "Recreate"}
    assert single["replicas"] == 1
    shared = releases["external-ha-values.yaml"].one("Deployment", FULLNAME)["spec"]
    assert shared["replicas"] == 3
    assert shared["strategy"]["type"] == "RollingUpdate"
    assert shared["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


# ---------------------------------------------------------------------------------------------
# configuration, Secrets, migrations


def test_embedded_default_has_no_secret_and_migrates_on_start(
    releases: dict[str, Release],
) -> None:
    release = releases["default"]
    assert not release.has("Secret")
    assert not release.has("Job")
    env = env_of(app_container(release))
    assert "DATABASE_URL" not in env and "REDIS_URL" not in env
    data = config_map(release)
    assert data["IMAGESHARK_MIGRATE_ON_START"] == "true"
    assert data["IMAGESHARK_LOG_FORMAT"] == "json"
    assert data["IMAGESHARK_HOST"] == "0.0.0.0"


def test_existing_secrets_are_used_instead_of_a_rendered_secret(
    releases: dict[str, Release],
) -> None:
    release = releases["external-ha-values.yaml"]
    assert not release.has("Secret")
    env = env_of(app_container(release))
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "imageshark-postgres",
        "key": "url",
    }
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "imageshark-redis",
        "key": "url",
    }
    job = release.one("Job", f"{FULLNAME}-migrate")
    job_env = env_of(container(job["spec"]["template"]["spec"], "migrate"))
    assert job_env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "imageshark-postgres",
        "key": "url",
    }
    # No URL, password or Secret payload anywhere in the rendered manifests.
    assert "postgresql://" not in json.dumps(release.documents)


def test_urls_from_values_go_into_secrets(releases: dict[str, Release]) -> None:
    release = releases["autoscaling-values.yaml"]
    values = profile_values("autoscaling-values.yaml")
    secret = release.one("Secret", FULLNAME)
    decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert decoded == {
        "database-url": values["database"]["url"],
        "redis-url": values["redis"]["url"],
    }
    env = env_of(app_container(release))
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": FULLNAME,
        "key": "database-url",
    }
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": FULLNAME, "key": "redis-url"}
    assert "s3cret" not in json.dumps(release.one("Deployment", FULLNAME))
    assert "s3cret" not in json.dumps(release.one("ConfigMap"))


@pytest.mark.parametrize("profile", ["external-ha-values.yaml", "autoscaling-values.yaml"])
def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(
    releases: dict[str, Release], profile: str
) -> None:
    release = releases[profile]
    job = release.one("Job", f"{FULLNAME}-migrate")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert container(pod, "migrate")["args"] == ["migrate"]
    assert config_map(release)["IMAGESHARK_MIGRATE_ON_START"] == "false"
    # Hooks run before the release's ordinary resources: the Job may not depend on them.
    assert "serviceAccountName" not in pod
    secret_ref = env_of(container(pod, "migrate"))["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    if profile == "autoscaling-values.yaml":
        hook_secret = release.one("Secret", secret_ref["name"])
        hook = hook_secret["metadata"]["annotations"]
        assert hook["helm.sh/hook"] == annotations["helm.sh/hook"]
        assert int(hook["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
        assert "helm.sh/hook" not in release.one("Secret", FULLNAME)["metadata"].get(
            "annotations", {}
        )


def test_migration_job_can_be_turned_off(chart: helm_python.Chart) -> None:
    values = deep_merge(
        profile_values("external-ha-values.yaml"), {"migrations": {"job": {"enabled": False}}}
    )
    release = render(chart, values)
    assert not release.has("Job")
    assert config_map(release)["IMAGESHARK_MIGRATE_ON_START"] == "true"


def test_smtp_url_comes_from_a_secret_and_the_from_address_from_the_config_map(
    chart: helm_python.Chart, releases: dict[str, Release]
) -> None:
    assert "IMAGESHARK_SMTP_URL" not in env_of(app_container(releases["default"]))
    mine = render(
        chart, {"mail": {"existingSecret": "imageshark-mail", "existingSecretKey": "url"}}
    )
    assert not mine.has("Secret")
    env = env_of(app_container(mine))
    assert env["IMAGESHARK_SMTP_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "imageshark-mail",
        "key": "url",
    }
    url = "smtp+starttls://mailer:s3cret@mail.example.test:587"
    rendered = render(chart, {"mail": {"smtpUrl": url, "from": "Photos <photos@example.test>"}})
    secret = rendered.one("Secret", FULLNAME)
    assert base64.b64decode(secret["data"]["smtp-url"]).decode() == url
    env = env_of(app_container(rendered))
    assert env["IMAGESHARK_SMTP_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": FULLNAME,
        "key": "smtp-url",
    }
    assert config_map(rendered)["IMAGESHARK_MAIL_FROM"] == "Photos <photos@example.test>"
    assert "s3cret" not in json.dumps(rendered.one("Deployment", FULLNAME))


def test_config_values_reach_the_environment(releases: dict[str, Release]) -> None:
    data = config_map(releases["external-ha-values.yaml"])
    assert data["IMAGESHARK_PUBLIC_BASE_URL"] == "https://photos.example.test"
    assert data["IMAGESHARK_REDIS_PREFIX"] == "photos-prod"
    assert data["IMAGESHARK_ROOM_TTL_HOURS"] == "72"
    assert data["IMAGESHARK_MAX_UPLOAD_BYTES"] == "41943040"
    assert "IMAGESHARK_PUBLIC_BASE_URL" not in config_map(releases["default"])
    image = app_container(releases["external-ha-values.yaml"])["image"]
    assert image == "registry.example.test/events/imageshark:0.1.0"


def test_sign_up_mode_and_the_admin_password_secret(
    chart: helm_python.Chart, releases: dict[str, Release]
) -> None:
    assert config_map(releases["default"])["IMAGESHARK_SIGNUP"] == "open"
    assert "IMAGESHARK_ADMIN_PASSWORD" not in env_of(app_container(releases["default"]))
    values = deep_merge(
        profile_values("external-ha-values.yaml"),
        {"accounts": {"signup": "invite", "adminPassword": {"existingSecret": "photos-admin"}}},
    )
    release = render(chart, values)
    assert config_map(release)["IMAGESHARK_SIGNUP"] == "invite"
    env = env_of(app_container(release))
    assert env["IMAGESHARK_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "photos-admin",
        "key": "admin-password",
    }
    assert "DATABASE_URL" in env  # next to the other secrets
    assert "signup" in render_error(chart, {"accounts": {"signup": "everyone"}})


def test_only_listed_proxies_are_trusted_for_client_addresses(
    chart: helm_python.Chart, releases: dict[str, Release]
) -> None:
    data = config_map(releases["default"])
    assert "FORWARDED_ALLOW_IPS" not in data
    trusted = data["IMAGESHARK_TRUSTED_PROXIES"].split(",")
    assert "*" not in trusted and "0.0.0.0/0" not in trusted
    assert Settings(trusted_proxies=data["IMAGESHARK_TRUSTED_PROXIES"]).trusted_proxies
    assert "IMAGESHARK_ALLOWED_ORIGINS" not in data
    chosen = config_map(
        render(
            chart,
            {"config": {"trustedProxies": "10.42.0.0/16", "allowedOrigins": "https://a.test"}},
        )
    )
    assert chosen["IMAGESHARK_TRUSTED_PROXIES"] == "10.42.0.0/16"
    assert chosen["IMAGESHARK_ALLOWED_ORIGINS"] == "https://a.test"
    assert "/config/trustedProxies" in render_error(chart, {"config": {"trustedProxies": "*"}})
    replaced = render_error(chart, {"config": {"forwardedAllowIps": "*"}})
    assert "config.forwardedAllowIps was replaced by config.trustedProxies" in replaced


# ---------------------------------------------------------------------------------------------
# traffic: Service, Ingress, autoscaling, disruptions, metrics


def test_ingress_has_affinity_websocket_and_body_size_annotations(
    releases: dict[str, Release],
) -> None:
    release = releases["external-ha-values.yaml"]
    ingress = release.one("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert annotations["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
    assert annotations["nginx.ingress.kubernetes.io/session-cookie-name"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    body = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    parsed = re.fullmatch(r"(\d+)([kmg]?)", body.lower())
    assert parsed, body
    number, unit = parsed.groups()
    limit = int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    assert limit > int(config_map(release)["IMAGESHARK_MAX_UPLOAD_BYTES"])
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [
        {"hosts": ["photos.example.test"], "secretName": "photos-example-test-tls"}
    ]
    (rule,) = spec["rules"]
    assert rule["host"] == "photos.example.test"
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": FULLNAME, "port": {"name": "http"}}


def test_ingress_annotations_override_the_nginx_defaults(chart: helm_python.Chart) -> None:
    values = deep_merge(
        profile_values("single-replica-values.yaml"),
        {"ingress": {"annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "7200"}}},
    )
    annotations = render(chart, values).one("Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "7200"
    other = deep_merge(values, {"ingress": {"nginxDefaults": False, "className": "traefik"}})
    annotations = render(chart, other).one("Ingress")["metadata"].get("annotations", {})
    assert annotations == {"nginx.ingress.kubernetes.io/proxy-read-timeout": "7200"}


def test_service_client_ip_affinity_option(releases: dict[str, Release]) -> None:
    default = releases["default"].one("Service")["spec"]
    assert default["sessionAffinity"] == "None"
    sticky = releases["autoscaling-values.yaml"].one("Service")["spec"]
    assert sticky["sessionAffinity"] == "ClientIP"
    assert sticky["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] >= 3600


@pytest.mark.parametrize("profile", PROFILES)
def test_service_and_pdb_select_only_the_app_pods(
    releases: dict[str, Release], profile: str
) -> None:
    release = releases[profile]
    selector = release.one("Service", FULLNAME)["spec"]["selector"]
    pdb = release.one("PodDisruptionBudget", FULLNAME)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    deployment = release.one("Deployment", FULLNAME)
    assert deployment["spec"]["selector"]["matchLabels"] == selector
    for name, _ in release.pod_specs():
        kind, _, _ = name.partition("/")
        doc = next(d for d in release.documents if f"{d['kind']}/{d['metadata']['name']}" == name)
        labels = (
            doc["metadata"]["labels"]
            if kind == "Pod"
            else doc["spec"]["template"]["metadata"]["labels"]
        )
        selected = all(labels.get(key) == value for key, value in selector.items())
        assert selected == (name == f"Deployment/{FULLNAME}"), name


def test_autoscaling(releases: dict[str, Release]) -> None:
    release = releases["autoscaling-values.yaml"]
    hpa = release.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    metrics = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert metrics == {
        "cpu": {"type": "Utilization", "averageUtilization": 60},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    # The HPA owns the replica count; a fixed one would fight it on every upgrade.
    assert "replicas" not in release.one("Deployment", FULLNAME)["spec"]


def test_service_monitor(releases: dict[str, Release]) -> None:
    assert not releases["default"].has("ServiceMonitor")
    release = releases["autoscaling-values.yaml"]
    monitor = release.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    service_labels = release.one("Service", FULLNAME)["metadata"]["labels"]
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert service_labels[key] == value


def test_connection_test_hook(releases: dict[str, Release]) -> None:
    pod = releases["default"].one("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    cont = pod["spec"]["containers"][0]
    script = " ".join(cont["command"])
    assert script.index("/healthz") < script.index("/readyz")
    assert cont["args"] == [f"http://{FULLNAME}:80"]


def test_notes_tell_how_to_reach_the_room_page(releases: dict[str, Release]) -> None:
    assert "kubectl port-forward" in releases["default"].notes
    assert "https://photos.example.test/" in releases["external-ha-values.yaml"].notes
    assert "http://photos.example.test/" in releases["single-replica-values.yaml"].notes
    assert "/r/<room token>" in releases["external-ha-values.yaml"].notes


def test_readme_production_example_renders(chart: helm_python.Chart) -> None:
    """The chart README's `helm install --set ...` for production (hosts[0] without paths)."""
    release = render(
        chart,
        {
            "image": {"repository": "registry.example.org/imageshark"},
            "replicaCount": 3,
            "persistence": {"accessMode": "ReadWriteMany", "storageClass": "nfs-client"},
            "database": {"existingSecret": "imageshark-db"},
            "redis": {"existingSecret": "imageshark-redis"},
            "ingress": {"enabled": True, "hosts": [{"host": "photos.example.org"}]},
            "config": {"publicBaseUrl": "https://photos.example.org"},
        },
    )
    env = env_of(app_container(release))
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "database-url"
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "redis-url"
    (path,) = release.one("Ingress")["spec"]["rules"][0]["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    for doc in release.documents:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


# ---------------------------------------------------------------------------------------------
# refusing bad values: values.schema.json and imageshark.validateValues


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"replicaCount": "three"}, "/replicaCount"),
        ({"replicaCuont": 3}, "replicaCuont"),
        ({"persistence": {"accessMode": "ReadWriteSometimes"}}, "/persistence/accessMode"),
        ({"service": {"sessionAffinity": "Cookie"}}, "/service/sessionAffinity"),
        ({"config": {"logFormat": "xml"}}, "/config/logFormat"),
        ({"database": {"url": "mysql://db/imageshark"}}, "/database/url"),
        ({"mail": {"smtpUrl": "mail.example.test:587"}}, "/mail/smtpUrl"),
        ({"terminationGracePeriodSeconds": 10}, "/terminationGracePeriodSeconds"),
    ],
)
def test_schema_rejects_bad_values(
    chart: helm_python.Chart, values: dict[str, Any], fragment: str
) -> None:
    message = render_error(chart, values)
    assert "schema" in message and fragment in message, message


def test_schema_is_self_contained_draft_07() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    refs = re.findall(r'"\$ref":\s*"([^"]*)"', (CHART / "values.schema.json").read_text())
    assert refs and all(ref.startswith("#/") for ref in refs), refs
    assert "$id" not in schema
    # The chart's own defaults satisfy it.
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


MULTI_OK = {
    "database": {"existingSecret": "db"},
    "redis": {"existingSecret": "redis"},
    "persistence": {"accessMode": "ReadWriteMany"},
}


@pytest.mark.parametrize(
    ("values", "fragments"),
    [
        pytest.param(
            {"replicaCount": 2, "database": {"url": "postgresql://u:p@db/x"}},
            ["replicaCount: 2 needs Redis", "ReadWriteOnce"],
            id="replicas-without-redis",
        ),
        pytest.param(
            {
                "autoscaling": {"enabled": True},
                **{k: v for k, v in MULTI_OK.items() if k != "redis"},
            },
            ["autoscaling up to 6 replicas needs Redis", "redis.existingSecret"],
            id="autoscaling-without-redis",
        ),
        pytest.param(
            {**MULTI_OK, "replicaCount": 3, "persistence": {"accessMode": "ReadWriteOnce"}},
            ["needs image storage every replica can write", "ReadWriteMany"],
            id="replicas-on-rwo",
        ),
        pytest.param(
            {**MULTI_OK, "replicaCount": 3, "database": {}},
            ["needs an external PostgreSQL", "embedded SQLite"],
            id="replicas-on-sqlite",
        ),
        pytest.param(
            {**MULTI_OK, "replicaCount": 2, "persistence": {"enabled": False}},
            ["persistence.enabled is false"],
            id="replicas-on-emptydir",
        ),
        pytest.param(
            {"database": {"url": "postgresql://u:p@db/x", "existingSecret": "db"}},
            ["database.url and database.existingSecret are both set"],
            id="url-and-secret",
        ),
        pytest.param(
            {"mail": {"smtpUrl": "smtps://u:p@mail.example.test", "existingSecret": "mail"}},
            ["mail.smtpUrl and mail.existingSecret are both set"],
            id="smtp-url-and-secret",
        ),
        pytest.param(
            {**MULTI_OK, "autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}},
            ["autoscaling.minReplicas (5) is above autoscaling.maxReplicas (3)"],
            id="min-above-max",
        ),
    ],
)
def test_validate_values_refuses_broken_setups(
    chart: helm_python.Chart, values: dict[str, Any], fragments: list[str]
) -> None:
    message = render_error(chart, values)
    assert "imageshark: invalid values" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_multi_replica_with_everything_configured_renders(chart: helm_python.Chart) -> None:
    release = render(chart, {**MULTI_OK, "replicaCount": 2})
    assert release.one("Deployment", FULLNAME)["spec"]["replicas"] == 2
    claim = release.one("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


# ---------------------------------------------------------------------------------------------
# chart hygiene: documented values, helper names


def _leaf_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the documented units of values.yaml: scalars, lists and empty maps."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaf_keys(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip(".")


# Maps documented as one value (free-form Kubernetes fields), not key by key.
DOCUMENTED_AS_A_WHOLE = {"lifecycle", "updateStrategy", "autoscaling.behavior"}


def test_every_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = re.findall(r"^\s*## @param (\S+) \S", text, flags=re.MULTILINE)
    assert len(documented) == len(set(documented)), "a value is documented twice"
    values = yaml.safe_load(text)
    leaves = set()
    for leaf in _leaf_keys(values):
        whole = next(
            (w for w in DOCUMENTED_AS_A_WHOLE if leaf == w or leaf.startswith(w + ".")), None
        )
        leaves.add(whole or leaf)
    assert leaves - set(documented) == set(), "values without ## @param"
    assert set(documented) - leaves == set(), "## @param for values that do not exist"
    readme = (CHART / "README.md").read_text()
    missing = [key for key in documented if f"| `{key}` |" not in readme]
    assert missing == [], "values missing from the chart README's parameter tables"


def test_helpers_are_prefixed_with_the_chart_name() -> None:
    defines = []
    for template in (CHART / "templates").rglob("*"):
        if template.is_file():
            defines += re.findall(r'\{\{-?\s*define\s+"([^"]+)"', template.read_text())
    assert "imageshark.validateValues" in defines
    assert [name for name in defines if not name.startswith("imageshark.")] == []


def test_every_optional_knob_renders_valid_manifests(chart: helm_python.Chart) -> None:
    """Overrides, extra env/volumes, scheduling, NodePort, digest, a pre-existing
    ServiceAccount: still valid Kubernetes 1.30 objects, with the overrides applied."""
    values = deep_merge(
        profile_values("external-ha-values.yaml"),
        {
            "fullnameOverride": "shark",
            "commonLabels": {"team": "events"},
            "commonAnnotations": {"owner": "events@example.test"},
            "image": {"digest": "sha256:" + "ab" * 32},
            "imagePullSecrets": [{"name": "regcred"}],
            "serviceAccount": {"create": False, "name": "events-apps"},
            "priorityClassName": "events-high",
            "nodeSelector": {"kubernetes.io/arch": "amd64"},
            "tolerations": [{"key": "events", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {
                                    "matchLabels": {"app.kubernetes.io/name": "imageshark"}
                                },
                            },
                        }
                    ]
                }
            },
            "podAnnotations": {"example.test/scrape": "true"},
            "podLabels": {"tier": "web"},
            "extraEnv": [{"name": "IMAGESHARK_LOG_LEVEL", "value": "DEBUG"}],
            "extraEnvFrom": [{"secretRef": {"name": "more-settings"}}],
            "extraVolumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
            "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
            "service": {"type": "NodePort", "nodePort": 30080},
            "persistence": {"storageClass": "-"},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1},
            },
            "autoscaling": {
                "enabled": True,
                "targetCPUUtilizationPercentage": None,
                "targetMemoryUtilizationPercentage": 75,
            },
            "podDisruptionBudget": {"maxUnavailable": "25%"},
            "metrics": {"serviceMonitor": {"enabled": True, "namespace": "monitoring"}},
        },
    )
    release = render(chart, values)
    for doc in release.documents:
        if doc["kind"] in CRD_KINDS:
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        else:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        assert doc["metadata"]["name"].startswith("shark")
        assert doc["metadata"]["labels"]["team"] == "events"
    deployment = release.one("Deployment", "shark")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "events-apps"
    assert container(pod, "imageshark")["image"].endswith("@sha256:" + "ab" * 32)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 1
    assert deployment["metadata"]["annotations"]["owner"] == "events@example.test"
    assert release.one("Service", "shark")["spec"]["ports"][0]["nodePort"] == 30080
    assert release.one("PersistentVolumeClaim")["spec"]["storageClassName"] == ""
    assert release.one("ServiceMonitor")["metadata"]["namespace"] == "monitoring"
    job_pod = release.one("Job")["spec"]["template"]["spec"]
    assert job_pod["serviceAccountName"] == "events-apps"  # exists before the hook runs
    metrics = release.one("HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["memory"]


# ---------------------------------------------------------------------------------------------
# object storage and rendition workers (ci/object-storage-values.yaml)

OBJECT_PROFILE = "object-storage-values.yaml"
WORKER = f"{FULLNAME}-worker"
OBJECT_OK = {
    "database": {"existingSecret": "db"},
    "redis": {"existingSecret": "redis"},
    "storage": {"url": "s3://photos/imageshark"},
}


def worker_container(release: Release) -> dict[str, Any]:
    return container(release.one("Deployment", WORKER)["spec"]["template"]["spec"], "worker")


def test_object_storage_profile_claims_no_volume(releases: dict[str, Release]) -> None:
    release = releases[OBJECT_PROFILE]
    assert not release.has("PersistentVolumeClaim")
    for name, pod in release.pod_specs():
        for volume in pod.get("volumes", []):
            assert "persistentVolumeClaim" not in volume, name
    deployment = release.one("Deployment", FULLNAME)["spec"]
    assert deployment["replicas"] == 3
    assert deployment["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
    }


def test_object_storage_settings_reach_app_and_worker(releases: dict[str, Release]) -> None:
    release = releases[OBJECT_PROFILE]
    storage = profile_values(OBJECT_PROFILE)["storage"]
    data = config_map(release)
    assert data["IMAGESHARK_STORAGE_URL"] == storage["url"]
    assert data["IMAGESHARK_MEDIA_BASE_URL"] == storage["mediaBaseUrl"]
    assert data["IMAGESHARK_MEDIA_URL_SECONDS"] == str(storage["urlSeconds"])
    assert data["AWS_REGION"] == storage["region"]
    assert data["AWS_ENDPOINT_URL"] == storage["endpoint"]
    assert data["IMAGESHARK_RENDITION_QUEUE"] == "redis"
    # The values the service accepts (web/settings.py validates the same variables).
    settings = Settings(
        storage_url=data["IMAGESHARK_STORAGE_URL"],
        media_base_url=data["IMAGESHARK_MEDIA_BASE_URL"],
        media_url_seconds=int(data["IMAGESHARK_MEDIA_URL_SECONDS"]),
        aws_endpoint_url=data["AWS_ENDPOINT_URL"],
    )
    assert settings.storage.bucket == "photos-example-test"
    for cont in (app_container(release), worker_container(release)):
        assert {"configMapRef": {"name": FULLNAME}} in cont["envFrom"]
        assert {"secretRef": {"name": storage["existingSecret"]}} in cont["envFrom"]
        env = env_of(cont)
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "imageshark-postgres"
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "imageshark-redis"
    # No credential of the store anywhere in the manifests: only the Secret's name.
    assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(release.documents)


def test_local_storage_keeps_the_inline_queue_and_no_storage_variables(
    releases: dict[str, Release],
) -> None:
    for profile in ("default", "external-ha-values.yaml"):
        data = config_map(releases[profile])
        for name in ("IMAGESHARK_STORAGE_URL", "IMAGESHARK_RENDITION_QUEUE", "AWS_ENDPOINT_URL"):
            assert name not in data, (profile, name)
        assert not any(
            d["metadata"]["name"].startswith(WORKER) for d in releases[profile].documents
        )


def test_worker_deployment_follows_the_contract(releases: dict[str, Release]) -> None:
    release = releases[OBJECT_PROFILE]
    deployment = release.one("Deployment", WORKER)
    pod = deployment["spec"]["template"]["spec"]
    worker = worker_container(release)
    app = app_container(release)
    assert worker["args"] == ["worker"]
    assert worker["image"] == app["image"]
    assert worker["ports"] == [{"name": "http", "containerPort": 8001, "protocol": "TCP"}]
    env = env_of(worker)
    assert env["IMAGESHARK_WORKER_PORT"]["value"] == "8001"
    assert env["IMAGESHARK_RENDITION_WORKERS"]["value"] == "2"
    assert worker["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert worker["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert worker["securityContext"] == app["securityContext"]
    app_pod = release.one("Deployment", FULLNAME)["spec"]["template"]["spec"]
    assert pod["securityContext"] == app_pod["securityContext"]
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/data"]] and "emptyDir" in volumes[mounts["/tmp"]]
    # SIGTERM lets the running jobs finish (rendition timeout: 20 s by default) for the drain,
    # which ends before the pod's grace period, as the worker's own default does.
    drain = int(env["IMAGESHARK_WORKER_DRAIN_SECONDS"]["value"])
    assert drain > Settings().rendition_timeout_seconds
    assert pod["terminationGracePeriodSeconds"] >= drain + 10
    assert drain == Settings().worker_drain_seconds
    # The autoscaler owns the worker count; the worker pods are not the app's.
    assert "replicas" not in deployment["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "worker"
    app_selector = release.one("Service", FULLNAME)["spec"]["selector"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert not all(labels.get(key) == value for key, value in app_selector.items())


def test_worker_hpa_pdb_and_service_monitor(releases: dict[str, Release]) -> None:
    release = releases[OBJECT_PROFILE]
    hpa = release.one("HorizontalPodAutoscaler", WORKER)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": WORKER,
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 75},
    }
    selector = release.one("Deployment", WORKER)["spec"]["selector"]["matchLabels"]
    pdb = release.one("PodDisruptionBudget", WORKER)
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    service = release.one("Service", WORKER)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    monitor = release.one("ServiceMonitor", WORKER)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert service["metadata"]["labels"][key] == value
    # The app's ServiceMonitor does not select the worker Service, nor the reverse.
    app_monitor = release.one("ServiceMonitor", FULLNAME)["spec"]["selector"]["matchLabels"]
    assert app_monitor["app.kubernetes.io/component"] == "server"


def test_fixed_worker_count_without_autoscaling(chart: helm_python.Chart) -> None:
    values = {**OBJECT_OK, "worker": {"enabled": True, "replicaCount": 4}}
    release = render(chart, values)
    assert release.one("Deployment", WORKER)["spec"]["replicas"] == 4
    assert not release.has("HorizontalPodAutoscaler")
    assert not release.has("ServiceMonitor")
    assert {doc["metadata"]["name"] for doc in release.all("Service")} == {FULLNAME}


@pytest.mark.parametrize("access_mode", ["ReadWriteOnce", "ReadWriteOncePod"])
def test_three_replicas_on_read_write_once_clusters_with_object_storage(
    chart: helm_python.Chart, access_mode: str
) -> None:
    """Only ReadWriteOnce storage: local images refuse three replicas, object storage renders
    them with nothing that claims a volume, and every object validates strictly."""
    local = {
        "replicaCount": 3,
        "database": OBJECT_OK["database"],
        "redis": OBJECT_OK["redis"],
        "persistence": {"accessMode": access_mode},
    }
    assert "needs image storage every replica can write" in render_error(chart, local)
    release = render(chart, {**local, **{"storage": OBJECT_OK["storage"]}})
    assert release.one("Deployment", FULLNAME)["spec"]["replicas"] == 3
    assert not release.has("PersistentVolumeClaim")
    assert "persistentVolumeClaim" not in json.dumps(release.documents)
    strategy = release.one("Deployment", FULLNAME)["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    for doc in release.documents:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_single_replica_on_object_storage_rolls_too(chart: helm_python.Chart) -> None:
    """The Recreate strategy was only for the ReadWriteOnce image volume."""
    release = render(chart, OBJECT_OK)
    assert release.one("Deployment", FULLNAME)["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "IMAGESHARK_RENDITION_QUEUE" not in config_map(release)


@pytest.mark.parametrize(
    ("values", "fragments"),
    [
        pytest.param(
            {**MULTI_OK, "worker": {"enabled": True}},
            ["worker.enabled needs object storage", "storage.url"],
            id="workers-on-local-storage",
        ),
        pytest.param(
            {**OBJECT_OK, "redis": {}, "worker": {"enabled": True}},
            ["worker.enabled needs Redis", "redis.existingSecret"],
            id="workers-without-redis",
        ),
        pytest.param(
            {"storage": {"url": "s3://photos"}},
            ["storage.url needs an external PostgreSQL", "embedded SQLite"],
            id="object-storage-on-sqlite",
        ),
        pytest.param(
            {"storage": {"mediaBaseUrl": "https://cdn.example.test/photos"}},
            ["storage.mediaBaseUrl needs object storage"],
            id="media-base-url-on-local-storage",
        ),
        pytest.param(
            {**OBJECT_OK, "storage": {"url": "gs://photos", "endpoint": "https://s3.test"}},
            ["storage.endpoint and storage.region apply to an s3:// storage.url only"],
            id="endpoint-on-gcs",
        ),
        pytest.param(
            {**OBJECT_OK, "config": {"extra": {"IMAGESHARK_RENDITION_QUEUE": "redis"}}},
            ["config.extra.IMAGESHARK_RENDITION_QUEUE is set by the chart"],
            id="queue-without-workers",
        ),
        pytest.param(
            {
                **OBJECT_OK,
                "worker": {"enabled": True, "autoscaling": {"enabled": True, "minReplicas": 9}},
            },
            ["worker.autoscaling.minReplicas (9) is above worker.autoscaling.maxReplicas (8)"],
            id="worker-min-above-max",
        ),
        pytest.param(
            {**OBJECT_OK, "worker": {"enabled": True, "drainSeconds": 55}},
            ["worker.terminationGracePeriodSeconds (60) leaves less than 10 s after"],
            id="worker-drain-outlasts-the-grace-period",
        ),
        pytest.param(
            {**MULTI_OK, "replicaCount": 2, "persistence": {"accessMode": "ReadWriteOnce"}},
            ["replicaCount: 2 needs image storage every replica can write", "storage.url"],
            id="replicas-on-rwo-point-at-object-storage",
        ),
        pytest.param(
            {**OBJECT_OK, "autoscaling": {"enabled": True}, "redis": {}},
            ["autoscaling up to 6 replicas needs Redis"],
            id="object-storage-replicas-still-need-redis",
        ),
    ],
)
def test_validate_values_refuses_combinations_that_lose_images(
    chart: helm_python.Chart, values: dict[str, Any], fragments: list[str]
) -> None:
    message = render_error(chart, values)
    assert "imageshark: invalid values" in message, message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"storage": {"url": "file:///data"}}, "/storage/url"),
        ({"storage": {"url": "s3://key:secret@photos"}}, "/storage/url"),
        ({"storage": {"url": "s3://photos?region=x"}}, "/storage/url"),
        ({"storage": {"urlSeconds": 10}}, "/storage/urlSeconds"),
        ({"storage": {"endpoint": "s3.example.test"}}, "/storage/endpoint"),
        ({"worker": {"enabled": "yes"}}, "/worker/enabled"),
        ({"worker": {"replicas": 2}}, "replicas"),
    ],
)
def test_schema_rejects_bad_storage_and_worker_values(
    chart: helm_python.Chart, values: dict[str, Any], fragment: str
) -> None:
    message = render_error(chart, values)
    assert "schema" in message and fragment in message, message


@pytest.mark.parametrize("url", ["s3://photos", "s3://photos/events/2026", "gs://b", "az://c/p"])
def test_schema_and_service_accept_the_same_storage_urls(
    chart: helm_python.Chart, url: str
) -> None:
    release = render(chart, {**OBJECT_OK, "storage": {"url": url}})
    stored = config_map(release)["IMAGESHARK_STORAGE_URL"]
    assert Settings(storage_url=stored).storage.url == url


def test_readme_object_storage_example_renders(chart: helm_python.Chart) -> None:
    """The chart README's `helm install --set ...` for object storage with workers."""
    release = render(
        chart,
        {
            "image": {"repository": "registry.example.org/imageshark"},
            "replicaCount": 3,
            "database": {"existingSecret": "imageshark-db"},
            "redis": {"existingSecret": "imageshark-redis"},
            "storage": {
                "url": "s3://my-photos-bucket/imageshark",
                "region": "eu-central-1",
                "existingSecret": "imageshark-s3",
            },
            "worker": {"enabled": True, "autoscaling": {"enabled": True}},
            "ingress": {"enabled": True, "hosts": [{"host": "photos.example.org"}]},
            "config": {"publicBaseUrl": "https://photos.example.org"},
        },
    )
    assert not release.has("PersistentVolumeClaim")
    assert release.one("HorizontalPodAutoscaler", WORKER)["spec"]["minReplicas"] == 1
    assert {"secretRef": {"name": "imageshark-s3"}} in worker_container(release)["envFrom"]
    for doc in release.documents:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    readme = (CHART / "README.md").read_text()
    assert "storage.url=s3://my-photos-bucket/imageshark" in readme
    assert "worker.enabled=true,worker.autoscaling.enabled=true" in readme


def test_worker_shares_the_apps_extra_env_volumes_and_scheduling(chart: helm_python.Chart) -> None:
    values = deep_merge(
        profile_values(OBJECT_PROFILE),
        {
            "extraEnv": [{"name": "IMAGESHARK_LOG_LEVEL", "value": "DEBUG"}],
            "extraEnvFrom": [{"secretRef": {"name": "more-settings"}}],
            "extraVolumes": [{"name": "ca", "configMap": {"name": "corp-ca"}}],
            "extraVolumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
            "nodeSelector": {"kubernetes.io/arch": "amd64"},
            "worker": {
                "autoscaling": {"enabled": False},
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                    }
                ],
            },
        },
    )
    release = render(chart, values)
    pod = release.one("Deployment", WORKER)["spec"]["template"]["spec"]
    worker = container(pod, "worker")
    assert env_of(worker)["IMAGESHARK_LOG_LEVEL"]["value"] == "DEBUG"
    assert {"secretRef": {"name": "more-settings"}} in worker["envFrom"]
    assert {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True} in worker["volumeMounts"]
    assert {"name": "ca", "configMap": {"name": "corp-ca"}} in pod["volumes"]
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert release.one("Deployment", WORKER)["spec"]["replicas"] == 2
    for doc in release.documents:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


# ---------------------------------------------------------------------------------------------
# organisation sign-on

OIDC_VALUES = {
    "oidc": {
        "issuer": "https://login.example.test/realms/acme",
        "clientId": "imageshark",
        "existingSecret": "imageshark-oidc",
        "name": "Sign in with Acme",
    }
}


def test_sign_on_settings_reach_the_app_pods_only(chart: helm_python.Chart) -> None:
    release = render(chart, deep_merge(profile_values(OBJECT_PROFILE), OIDC_VALUES))
    env = env_of(app_container(release))
    plain = {
        name: entry["value"]
        for name, entry in env.items()
        if name.startswith("IMAGESHARK_OIDC_") and "value" in entry
    }
    assert plain == {
        "IMAGESHARK_OIDC_ISSUER": "https://login.example.test/realms/acme",
        "IMAGESHARK_OIDC_CLIENT_ID": "imageshark",
        "IMAGESHARK_OIDC_SCOPES": "openid email profile",
        "IMAGESHARK_OIDC_NAME": "Sign in with Acme",
    }
    assert env["IMAGESHARK_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "imageshark-oidc",
        "key": "client-secret",
    }
    # What the pods get is a configuration the service accepts.
    settings = Settings(
        oidc_issuer=plain["IMAGESHARK_OIDC_ISSUER"],
        oidc_client_id=plain["IMAGESHARK_OIDC_CLIENT_ID"],
        oidc_scopes=plain["IMAGESHARK_OIDC_SCOPES"],
        oidc_name=plain["IMAGESHARK_OIDC_NAME"],
        oidc_client_secret="from-the-secret",
    )
    assert settings.oidc_enabled
    worker_env = env_of(worker_container(release))
    assert not [name for name in worker_env if name.startswith("IMAGESHARK_OIDC_")]
    job = release.one("Job", f"{FULLNAME}-migrate")
    job_env = env_of(container(job["spec"]["template"]["spec"], "migrate"))
    assert not [name for name in job_env if name.startswith("IMAGESHARK_OIDC_")]
    assert not [key for key in config_map(release) if key.startswith("IMAGESHARK_OIDC_")]
    default_env = env_of(app_container(render(chart, {})))
    assert not [name for name in default_env if name.startswith("IMAGESHARK_OIDC_")]


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"oidc": {"issuer": "https://login.example.test"}}, "oidc.issuer needs oidc.clientId"),
        (
            {"oidc": {"issuer": "https://login.example.test", "clientId": "x"}},
            "oidc.existingSecret",
        ),
        ({"oidc": {"clientId": "x", "existingSecret": "s"}}, "need oidc.issuer"),
        (
            {**OIDC_VALUES, "config": {"extra": {"IMAGESHARK_OIDC_CLIENT_SECRET": "x"}}},
            "config.extra.IMAGESHARK_OIDC_CLIENT_SECRET",
        ),
    ],
)
def test_validate_values_refuses_partial_sign_on(
    chart: helm_python.Chart, values: dict[str, Any], fragment: str
) -> None:
    message = render_error(chart, values)
    assert "imageshark: invalid values" in message and fragment in message, message


def test_schema_rejects_a_plain_http_issuer(chart: helm_python.Chart) -> None:
    values = deep_merge(OIDC_VALUES, {"oidc": {"issuer": "http://login.example.test"}})
    message = render_error(chart, values)
    assert "schema" in message and "/oidc/issuer" in message, message
