"""No process-global state: what a module holds at import is shared by every app and request.

Imports every module of ``web`` and ``realtime`` (not the Alembic scripts, which run on import)
and looks at what each module holds: no exception instance (a raised one keeps its traceback
and the raising request's frames; errors are built per raise), no Prometheus collector (metrics
live on the app's registry) and no ``functools`` cache (caches belong to objects).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

import realtime
import web

_SHARED_TYPES = (BaseException, MetricWrapperBase, CollectorRegistry)
_CACHE_TYPE = type(functools.lru_cache(maxsize=1)(abs))
WORKER_PROCESS_CACHES = {
    "web.pipeline.renditions": {"_sync_threads", "_srgb_transform"},
}
"""Caches of the rendition worker processes, which run only there (one set per worker
process, the pipeline's jobs being plain functions sent by reference); not web-process state."""


def _ours(function: object) -> bool:
    return str(getattr(function, "__module__", "")).startswith(("web.", "realtime."))


def _modules() -> list[ModuleType]:
    modules: list[ModuleType] = [web, realtime]
    for package in (web, realtime):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.startswith("web.migrations"):
                modules.append(importlib.import_module(info.name))
    return modules


MODULES = _modules()


def test_every_module_is_looked_at() -> None:
    names = {module.__name__ for module in MODULES}
    assert {"web.rooms.service", "web.rooms.qr", "realtime.fanout", "web.app"} <= names
    for module_name, caches in WORKER_PROCESS_CACHES.items():
        module = importlib.import_module(module_name)
        assert all(isinstance(getattr(module, name), _CACHE_TYPE) for name in caches)


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_module_holds_no_shared_state(module: ModuleType) -> None:
    held = {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, _SHARED_TYPES)
        or (
            isinstance(value, _CACHE_TYPE)
            and _ours(value)
            and name not in WORKER_PROCESS_CACHES.get(module.__name__, set())
        )
    }
    assert held == {}
