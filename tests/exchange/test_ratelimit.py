from __future__ import annotations

from fastapi.testclient import TestClient

from exchange.app import create_app
from exchange.core.ratelimit import RateLimiter
from exchange.settings import Settings


def test_the_budget_refills_after_a_minute() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.check("a", now=t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    wait = limiter.check("a", now=3.0)
    assert wait is not None and 56.9 < wait <= 57.0
    assert limiter.check("b", now=3.0) is None  # another client is not affected
    assert limiter.check("a", now=60.5) is None


def test_a_client_over_budget_gets_429_with_retry_after(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 5}))
    with TestClient(app) as client:
        codes = [client.get("/healthz").status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = client.get("/api/v1/me")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert client.get("/static/css/app.css").status_code == 200  # static files are not counted
