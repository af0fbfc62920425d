"""The serving worker's start-up: reference data loaded, every template compiled, the start-up heap frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from exchange import app as app_module
from exchange.core import runtime
from exchange.settings import Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_serving_app_warms_up_and_freezes_its_start_up_heap_before_the_first_request(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, restore_gc: None
) -> None:
    monkeypatch.setattr(app_module, "get_settings", lambda: settings)
    gc.unfreeze()
    with TestClient(app_module.serving_app()) as client:  # runs the lifespan, as uvicorn does
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold()[0] == runtime.YOUNG_THRESHOLD
        assert client.get("/healthz").status_code == 200
        assert client.get("/login").status_code == 200


def test_warm_up_compiles_every_page_template() -> None:
    from exchange.core.web import templates

    compiled = runtime.warm_up()
    assert compiled == len(templates.env.list_templates(extensions=["html"])) >= 30
