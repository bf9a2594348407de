"""What the rendition workers' fork server loads: the pipeline and its few imports, not the
web side's wire models (each worker would carry pydantic's memory for nothing)."""

from __future__ import annotations

import json
import subprocess
import sys

from web.errors import error_response
from web.wire import ErrorBody


def test_the_pipeline_imports_no_pydantic() -> None:
    # A fresh interpreter: this test process has imported everything already.
    script = (
        "import json, sys, web.pipeline.renditions, web.pipeline.pool;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(found.stdout) == []


def test_an_error_answer_is_the_declared_error_body() -> None:
    response = error_response(404, "room_not_found", "This room does not exist.")
    body = json.loads(bytes(response.body))
    assert ErrorBody.model_validate(body).model_dump() == body
    assert body == {"error": {"code": "room_not_found", "message": "This room does not exist."}}
