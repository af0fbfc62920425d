"""Load test on PostgreSQL: `make loadtest` (or `.venv/bin/python scripts/loadtest/run.py --users 50 200`).

1. a fresh PostgreSQL schema, migrated, with the demo region loaded;
2. API tokens for every demo enterprise (one member each), the regulators, and a published matching round whose
   proposals the simulated members accept during the test;
3. the app served by several worker processes (`exchange serve --workers N`, rate limit off: every simulated
   user comes from 127.0.0.1);
4. locust, headless, for each user count; prints requests/s, p50/p95/p99 and the error rate for reads and
   writes, and the figures as Markdown for docs/reliability.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WRITES = ("POST",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", f"SET client_min_messages = warning; {sql}"],
        check=True,
    )


def prepare(env: dict[str, str], period: str) -> dict[str, Any]:
    """Tokens for one member per demo enterprise and for the regulators, plus proposals to accept."""
    subprocess.run([str(BIN / "exchange"), "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(BIN / "exchange"), "load-demo"], env=env, check=True, stdout=subprocess.DEVNULL)
    code = """
import json
from sqlmodel import Session, select
from exchange.accounts.models import Role, User
from exchange.accounts.service import create_api_token, hash_password
from exchange.core.db import get_engine
from exchange.enterprises.models import Enterprise
from exchange.listings.models import Listing, ListingStatus, Visibility
from exchange.models import load_all_models
from exchange.settings import get_settings

load_all_models()
engine = get_engine(get_settings().database_url)
out = {"members": {}, "regulators": [], "admin": None, "listing_ids": []}
with Session(engine) as s:
    pw = hash_password("load-test-password-1")
    for e in s.exec(select(Enterprise)).all():
        u = User(email=f"load{e.id}@load.example", display_name=f"load {e.id}", password_hash=pw,
                 role=Role.ENTERPRISE, enterprise_id=e.id)
        s.add(u)
        s.flush()
        out["members"][e.id] = create_api_token(s, u, "load test")[1]
    for u in s.exec(select(User)).all():
        if u.role is Role.REGULATOR:
            out["regulators"].append(create_api_token(s, u, "load test")[1])
        if u.role is Role.ADMIN and out["admin"] is None:
            out["admin"] = create_api_token(s, u, "load test")[1]
    # what every member may open (park-only listings are a 404 outside their park, as they should be)
    seen = select(Listing.id).where(Listing.visibility != Visibility.PARK, Listing.status == ListingStatus.OPEN)
    out["listing_ids"] = [i for i in s.exec(seen).all()]
print(json.dumps(out))
"""
    done = subprocess.run([str(BIN / "python"), "-c", code], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"preparing the accounts failed:\n{done.stderr}")
    made: dict[str, Any] = json.loads(done.stdout)
    return made


def publish_round(base: str, admin: str, period: str) -> list[dict[str, Any]]:
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base, headers=h, timeout=120) as c:
        r = c.post("/api/v1/rounds", json={"scope": "visible", "period": period, "title": "load test"})
        r.raise_for_status()
        rid = r.json()["id"]
        for _ in range(600):
            st = c.get(f"/api/v1/rounds/{rid}/status").json()
            if st["done"]:
                break
            time.sleep(0.5)
        if st["run_state"] != "succeeded":
            raise SystemExit(f"the preparatory round did not succeed: {st}")
        c.post(f"/api/v1/rounds/{rid}/publish", json={}).raise_for_status()
        proposals: list[dict[str, Any]] = c.get(f"/api/v1/rounds/{rid}/proposals").json()
        return proposals


def summarise(stats_csv: Path) -> dict[str, dict[str, float]]:
    """Reads and writes separately, from locust's per-request CSV (percentiles in ms)."""
    rows = list(csv.DictReader(stats_csv.open(encoding="utf-8")))
    out: dict[str, dict[str, float]] = {}

    def member(r: dict[str, str], group: str) -> bool:
        if r["Name"] == "Aggregated":
            return False
        if group == "reference" or r["Name"].endswith("(reference)"):
            return group == "reference" and r["Name"].endswith("(reference)")
        return group == "all" or (r["Type"] in WRITES) == (group == "writes")

    for group in ("reads", "writes", "all", "reference"):
        picked = [r for r in rows if member(r, group)]
        n = sum(int(r["Request Count"]) for r in picked)
        if not n:
            continue
        fails = sum(int(r["Failure Count"]) for r in picked)
        rps = sum(float(r["Requests/s"]) for r in picked)

        def pct(col: str, rows: list[dict[str, str]] = picked) -> float:
            """The worst row's percentile bounds the group's (conservative)."""
            return max(float(r[col] or 0) for r in rows if int(r["Request Count"]))

        out[group] = {
            "requests": n,
            "rps": rps,
            "errors": fails,
            "error_rate": fails / n,
            "p50": pct("50%"),
            "p95": pct("95%"),
            "p99": pct("99%"),
        }
    return out


def routes(stats_csv: Path) -> list[dict[str, Any]]:
    """Each request name's count, p50 and p99 (ms) and failures: where the time goes."""
    out = []
    for r in csv.DictReader(stats_csv.open(encoding="utf-8")):
        if r["Name"] != "Aggregated" and int(r["Request Count"]):
            out.append(
                {
                    "name": r["Name"],
                    "requests": int(r["Request Count"]),
                    "p50": float(r["50%"] or 0),
                    "p99": float(r["99%"] or 0),
                    "failures": int(r["Failure Count"]),
                }
            )
    return sorted(out, key=lambda x: -x["p99"])


def failure_rows(failures_csv: Path) -> list[dict[str, Any]]:
    if not failures_csv.exists():
        return []
    return [
        {"method": r["Method"], "name": r["Name"], "error": r["Error"], "occurrences": int(r["Occurrences"])}
        for r in csv.DictReader(failures_csv.open(encoding="utf-8"))
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2, help="app worker processes")
    ap.add_argument("--period", default="2026-06", help="the month of the preparatory round")
    ap.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=[1.0, 5.0],
        metavar=("MIN_S", "MAX_S"),
        help="each user's pause between requests, uniform (default 1 5, locust's documented example; "
        "0.5 2 is the stress setting: every user clicking every 1.25 s on average)",
    )
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()

    schema = f"load_{int(time.time())}_{os.getpid()}"
    psql(f"CREATE SCHEMA {schema}")
    env = {
        **os.environ,
        "EXCHANGE_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
        "EXCHANGE_RATE_LIMIT_PER_MINUTE": "0",
    }
    server = None
    try:
        made = prepare(env, args.period)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(BIN / "exchange"), "serve", "--port", str(port), "--workers", str(args.workers), "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(120):
            try:
                if httpx.get(f"{base}/login", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        proposals = publish_round(base, made["admin"], args.period)
        members = made["members"]
        answers = []
        for p in proposals:
            for side in ("supplier_enterprise_id", "consumer_enterprise_id"):
                token = members.get(str(p.get(side)))
                if token:
                    answers.append({"proposal_id": p["id"], "token": token})
        plan = {
            "members": list(members.values()),
            "regulators": made["regulators"],
            "listing_ids": made["listing_ids"],
            "answers": answers,
        }
        results: dict[int, dict[str, dict[str, float]]] = {}
        per_route: dict[int, list[dict[str, Any]]] = {}
        failures: dict[int, list[dict[str, Any]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            plan_path = Path(tmp) / "plan.json"
            plan_path.write_text(json.dumps(plan), encoding="utf-8")
            for users in args.users:
                prefix = Path(tmp) / f"u{users}"
                subprocess.run(
                    [
                        str(BIN / "locust"),
                        "-f",
                        str(Path(__file__).with_name("locustfile.py")),
                        "--headless",
                        "-u",
                        str(users),
                        "-r",
                        str(max(10, users // 5)),
                        "-t",
                        f"{args.seconds}s",
                        "-H",
                        base,
                        "--csv",
                        str(prefix),
                        "--only-summary",
                        # figures from the moment every user is running, not the ramp-up
                        "--reset-stats",
                        "--loglevel",
                        "WARNING",
                    ],
                    env={**env, "LOADTEST_PLAN": str(plan_path), "LOADTEST_THINK_S": " ".join(map(str, args.think))},
                    check=False,
                    stdout=subprocess.DEVNULL,
                )
                results[users] = summarise(Path(f"{prefix}_stats.csv"))
                per_route[users] = routes(Path(f"{prefix}_stats.csv"))
                failures[users] = failure_rows(Path(f"{prefix}_failures.csv"))
        print(
            f"\nLoad test: {args.workers} app workers on PostgreSQL, {args.seconds} s per step, "
            f"{len(proposals)} proposals ({len(answers)} answers) to accept, "
            f"think time {args.think[0]:g}-{args.think[1]:g} s per user between requests"
        )
        print("(x ref: the p99 over the p99 of GET /healthz, the cheapest route, measured in the same step)")
        print("| users | kind | requests | req/s | p50 ms | p95 ms | p99 ms | p99 x ref | errors |")
        print("|---|---|---|---|---|---|---|---|---|")
        for users, groups in results.items():
            ref_p99 = groups.get("reference", {}).get("p99") or float("nan")
            for kind in ("reads", "writes", "all", "reference"):
                g = groups.get(kind)
                if g:
                    print(
                        f"| {users} | {kind} | {g['requests']:.0f} | {g['rps']:.1f} | {g['p50']:.0f} | "
                        f"{g['p95']:.0f} | {g['p99']:.0f} | {g['p99'] / ref_p99:.1f} | "
                        f"{g['errors']:.0f} ({g['error_rate']:.2%}) |"
                    )
        for users, rows in per_route.items():
            print(f"\nper route, {users} users: requests, p50/p99 ms, failures")
            for r in rows:
                print(f"  {r['name']:<45} {r['requests']:>6} {r['p50']:>6.0f} {r['p99']:>6.0f} {r['failures']:>5}")
            for f in failures[users]:
                print(f"  failure x{f['occurrences']}: {f['method']} {f['name']}: {f['error'][:160]}")
        if args.json:
            figures = {
                "workers": args.workers,
                "seconds": args.seconds,
                "think_s": args.think,
                "proposals": len(proposals),
            }
            out = {**figures, "steps": results, "routes": per_route, "failures": failures}
            Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
        errors = sum(g.get("all", {}).get("errors", 0) for g in results.values())
        return 1 if errors else 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    sys.exit(main())
