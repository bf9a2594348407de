"""checkov's Kubernetes policies on the rendered chart (default values, the external-HA
profile and the object-storage profile with its rendition workers), asserting that none of
the checks listed in CARED_ABOUT fails, and its Dockerfile policies on the Dockerfile,
asserting that none fails.

checkov cannot be a dev dependency of this project: it pins ``networkx<2.7`` and
``packaging<24``, while scikit-image (a dev dependency) needs ``networkx>=3``; a shared lock
would fall back to a 2022 checkov. So it runs in an isolated environment through ``uv tool
run`` (uv is required by the Makefile anyway), pinned to one version and to the packages that
existed on a fixed date. The first run downloads it (a few seconds); later runs use uv's
cache, and ``--skip-download`` keeps checkov itself offline. A missing ``uv`` fails the test.

Checks deliberately not enforced (they fail by design, and why):

- CKV_K8S_43 image digest and CKV_K8S_15 pull policy Always: tags are pinned to the appVersion;
  ``image.digest`` is there for those who want digests.
- CKV_K8S_35 secrets as files: the app reads DATABASE_URL/REDIS_URL from the environment only.
- CKV2_K8S_6 NetworkPolicy: the chart does not render one (its README says what to allow).
- CKV_K8S_8/CKV_K8S_9 on the ``helm test`` Pod and the migration Job: short-lived, no probes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "imageshark"
CHECKOV = ["--exclude-newer", "2026-11-20T00:00:00Z", "--from", "checkov==3.3.30", "checkov"]

# The checks that must pass on every resource they apply to.
CARED_ABOUT = {
    "CKV_K8S_10": "CPU requests",
    "CKV_K8S_11": "CPU limits",
    "CKV_K8S_12": "memory requests",
    "CKV_K8S_13": "memory limits",
    "CKV_K8S_14": "image tag fixed (not latest or blank)",
    "CKV_K8S_16": "no privileged container",
    "CKV_K8S_20": "allowPrivilegeEscalation false",
    "CKV_K8S_22": "read-only root filesystem",
    "CKV_K8S_23": "no root containers admitted",
    "CKV_K8S_28": "NET_RAW dropped",
    "CKV_K8S_29": "pod securityContext",
    "CKV_K8S_30": "container securityContext",
    "CKV_K8S_31": "seccomp RuntimeDefault",
    "CKV_K8S_37": "capabilities minimised",
    "CKV_K8S_38": "service-account token only where needed",
    "CKV_K8S_40": "high UID",
}
# Probes matter for the long-running pods only.
PROBES_ON_DEPLOYMENTS = {"CKV_K8S_8": "liveness probe", "CKV_K8S_9": "readiness probe"}


def render_to(path: Path, values: dict[str, Any]) -> None:
    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values, name="photos", namespace="events", is_install=True)
    documents = [
        doc
        for name, text in sorted(rendered.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def test_checkov_finds_none_of_the_failures_we_care_about(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to run checkov in its own environment")
    default, ha = tmp_path / "default.yaml", tmp_path / "external-ha.yaml"
    objects = tmp_path / "object-storage.yaml"
    render_to(default, {})
    render_to(ha, yaml.safe_load((CHART / "ci" / "external-ha-values.yaml").read_text()))
    render_to(objects, yaml.safe_load((CHART / "ci" / "object-storage-values.yaml").read_text()))
    assert "name: photos-imageshark-worker" in objects.read_text()
    command = [uv, "tool", "run", *CHECKOV, "--framework", "kubernetes", "dockerfile"]
    command += ["-f", str(default), "-f", str(ha), "-f", str(objects)]
    command += ["-f", str(REPO / "Dockerfile")]
    command += ["--output", "json", "--compact", "--skip-download"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.stdout.strip(), result.stderr
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    passed: set[str] = set()
    checked: set[str] = set()
    failures = []
    assert {report["check_type"] for report in reports} == {"kubernetes", "dockerfile"}
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["passed"] > 0, report["summary"]
        passed |= {check["check_id"] for check in report["results"]["passed_checks"]}
        checked |= {check["resource"] for check in report["results"]["passed_checks"]}
        for check in report["results"]["failed_checks"]:
            cared = (
                report["check_type"] == "dockerfile"
                or check["check_id"] in CARED_ABOUT
                or (
                    check["check_id"] in PROBES_ON_DEPLOYMENTS
                    and check["resource"].startswith("Deployment.")
                )
            )
            if cared:
                failures.append(f"{check['check_id']} {check['check_name']}: {check['resource']}")
    assert failures == []
    # The worker Deployment was among the resources checked.
    assert any("photos-imageshark-worker" in resource for resource in checked), sorted(checked)
    # The list means something: every check in it ran and passed somewhere.
    assert set(CARED_ABOUT) | set(PROBES_ON_DEPLOYMENTS) <= passed
