"""The browser modules' pure logic, tested by Node's own runner (tests/js/*.test.mjs): retry
delays, downscale sizing, the room feed's seq/dedupe/reconcile handling, the upload queue's
states, the types the page may declare and the account pages' throttling wording. Run here so
that ``make test`` (and CI) fails when one of them does."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from web.images.direct import DECLARED_TYPES

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent


def test_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed for the browser modules' tests (make install)"
    files = sorted(str(path.relative_to(ROOT)) for path in TESTS.glob("*.test.mjs"))
    assert len(files) >= 4
    result = subprocess.run(
        [node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every test ran: none was skipped or left out.
    assert "# fail 0" in result.stdout and "# skipped 0" in result.stdout, result.stdout


def test_page_declares_the_types_the_service_takes() -> None:
    """static/js/direct-upload.js keeps its own copy of the declarable types: it must be the
    service's (a type only the page knew would be refused, 415; one only the service knew
    would be sniffed instead of declared)."""
    node = shutil.which("node")
    assert node is not None, "node is needed for the browser modules' tests (make install)"
    script = (
        'const m = await import("./static/js/direct-upload.js");'
        "console.log(JSON.stringify([...m.DECLARED_TYPES]));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == DECLARED_TYPES
