"""The load test's users: a realistic mix of reads (browse and search listings, read dashboards, the public
statistics) and writes (post listings, accept proposals), each with the API token of a real demo account.

Started by scripts/loadtest/run.py, which prepares the database and writes the tokens file it reads."""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from pathlib import Path

from locust import FastHttpUser, between, task

PLAN = json.loads(Path(os.environ["LOADTEST_PLAN"]).read_text(encoding="utf-8"))
MATERIALS = ["fly_ash", "ggbs", "steel_slag", "fgd_gypsum", "coal_gangue", "scrap_steel", "furnace_slag"]
PLACES = [(36.6, 114.5), (38.04, 114.51), (39.6, 118.2), (36.65, 117.0), (37.87, 112.55)]
_answers: list[tuple[int, str]] = [(a["proposal_id"], a["token"]) for a in PLAN["answers"]]
random.Random(7).shuffle(_answers)
_answers_lock = threading.Lock()


REFERENCE = "GET /healthz (reference)"
# Pause between one user's requests, uniform in [min, max] seconds (run.py --think).
THINK_S = [float(x) for x in os.environ.get("LOADTEST_THINK_S", "1 5").split()]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Member(FastHttpUser):
    """Mostly reads; now and then posts a listing or answers a proposal of its enterprise.

    FastHttpUser (geventhttpclient), not HttpUser (requests): locust runs on the same 2 cores, and with requests
    its own CPU showed in the latencies it reported (an independent probe saw /healthz p99 33 ms while locust
    reported 400 ms for it in the same seconds)."""

    wait_time = between(THINK_S[0], THINK_S[1])

    def on_start(self) -> None:
        self.token = random.choice(PLAN["members"])
        self.regulator = random.choice(PLAN["regulators"])

    @task(1)
    def reference(self) -> None:
        """The app's cheapest route through the same server and middleware: the run's own yardstick."""
        self.client.get("/healthz", name=REFERENCE)

    @task(6)
    def search_listings_api(self) -> None:
        lat, lon = random.choice(PLACES)
        params = {"material_code": random.choice(MATERIALS), "near_lat": lat, "near_lon": lon, "radius_km": 300}
        self.client.get("/api/v1/listings", params=params, headers=_bearer(self.token), name="GET /api/v1/listings")

    @task(3)
    def browse_page(self) -> None:
        self.client.get("/listings", params={"material_code": random.choice(MATERIALS)}, name="GET /listings (page)")

    @task(2)
    def one_listing(self) -> None:
        ident = random.choice(PLAN["listing_ids"])
        self.client.get(f"/api/v1/listings/{ident}", headers=_bearer(self.token), name="GET /api/v1/listings/{id}")

    @task(2)
    def dashboard(self) -> None:
        self.client.get("/api/v1/stats/dashboard", headers=_bearer(self.regulator), name="GET /api/v1/stats/dashboard")

    @task(1)
    def public_stats(self) -> None:
        self.client.get("/api/v1/public/stats", name="GET /api/v1/public/stats")

    @task(1)
    def post_listing(self) -> None:
        body = {"material_code": random.choice(MATERIALS), "quantity_t": str(random.randint(10, 900))}
        headers = {**_bearer(self.token), "Idempotency-Key": uuid.uuid4().hex}
        self.client.post("/api/v1/listings", json=body, headers=headers, name="POST /api/v1/listings")

    @task(1)
    def answer_proposal(self) -> None:
        with _answers_lock:
            item = _answers.pop() if _answers else None
        if item is None:  # every prepared proposal is answered: read the list instead
            self.client.get("/api/v1/proposals", headers=_bearer(self.token), name="GET /api/v1/proposals")
            return
        proposal_id, token = item
        headers = {**_bearer(token), "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            f"/api/v1/proposals/{proposal_id}/accept",
            json={},
            headers=headers,
            name="POST /api/v1/proposals/{id}/accept",
            catch_response=True,
        ) as response:
            # A 409 with a sentence is the right answer when the proposal was answered in an earlier step or the
            # listing's tonnes went to another agreement first: a refusal, not an error.
            if response.status_code == 409 and "detail" in response.text:
                response.success()
