"""The browser modules' pure logic, tested by Node's own runner (tests/js/*.test.mjs): retry
delays, downscale sizing, the room feed's seq/dedupe/reconcile handling and the upload queue's
states. Run here so that ``make test`` (and CI) fails when one of them does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
