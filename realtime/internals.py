"""Start-up probes of the library internals that ImageShark's optional accelerators read.

Three parts of the service go beneath a library's public interface: the direct broadcast
path (``realtime/fanout.py``), the per-connection guard (``realtime/guard.py``) and the
request deadlines of ``imageshark serve`` (``web/connections.py``). Each one lists what it
reads and checks it once, when the app is built; where anything is missing it logs one
warning naming all of it and runs the library's stock path instead, so a library upgrade that
renames an internal costs speed or a limit, never a delivery
(docs/decisions/0002-direct-broadcast-fast-path.md). The versions are bounded in pyproject.toml.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Sequence

logger = logging.getLogger(__name__)


def has_attribute(owner: object, name: str) -> bool:
    """Whether ``owner`` has the attribute ``name``, or, for a class, whether the ``__init__``
    of the class or one of its bases assigns it (an instance attribute).

    The ``__init__`` check reads the names its code object refers to, so an attribute that an
    ``__init__`` only reads counts too: the probe catches renames, not every rewrite.
    """
    if hasattr(owner, name):
        return True
    if not isinstance(owner, type):
        return False
    for cls in owner.__mro__:
        code = getattr(cls.__dict__.get("__init__"), "__code__", None)
        if code is not None and name in code.co_names:
            return True
    return False


def missing_attributes(owner: object, names: Iterable[str], label: str) -> list[str]:
    """The ``label.name`` of each of ``names`` that ``owner`` lacks (see :func:`has_attribute`).

    :param label: how the log names ``owner``, e.g. ``"engineio.AsyncSocket"``.
    """
    return [f"{label}.{name}" for name in names if not has_attribute(owner, name)]


def missing_parameters(
    owner: object, name: str, parameters: Sequence[str], label: str
) -> list[str]:
    """``["label.name(parameters)"]`` when ``owner.name`` is missing or does not take exactly
    ``parameters`` (after ``self`` for a function defined in a class), else ``[]``."""
    function = getattr(owner, name, None)
    found: list[str] | None = None
    if callable(function):
        try:
            found = list(inspect.signature(function).parameters)
        except (TypeError, ValueError):  # no signature to read
            found = None
        if found is not None and isinstance(owner, type) and found[:1] == ["self"]:
            found = found[1:]
    if found == list(parameters):
        return []
    return [f"{label}.{name}({', '.join(parameters)})"]


def report_fallback(accelerator: str, missing: Sequence[str], consequence: str) -> None:
    """Log the one warning line of an accelerator that falls back to its library's stock path.

    :param accelerator: its name, as in the ``imageshark_fast_path`` gauge's ``path`` label.
    :param missing: what the probe did not find, each as ``module.Class.attribute``.
    :param consequence: what runs instead, e.g. ``"broadcasts go through python-socketio's
        own manager"``.
    """
    logger.warning(
        "%s: library internals not found (%s): %s", accelerator, ", ".join(missing), consequence
    )
