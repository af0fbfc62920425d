"""The park manager's round pages: the list, the new-round form (preview, start, field errors), the round page
(progress, report, map data, exports), review actions as form posts (pin, forbid, re-run, publish, cancel),
compare, the audit trail, and who is refused."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role
from exchange.rounds.models import Proposal, Round, RoundState
from tests.exchange.rounds.conftest import PERIOD, RoundWorld, new_round
from tests.factories import login


def _form(token: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "csrf_token": token,
        "scope": "park",
        "period": PERIOD,
        "freight_cny_per_t_km": "0.35",
        "detour_factor": "1.3",
        "honour_min_lots": "1",
        "action": "start",
    }
    base.update(fields)
    return base


def _round_id(location: str) -> int:
    m = re.fullmatch(r"/rounds/(\d+)\?done=created", location)
    assert m, location
    return int(m.group(1))


def _rounds(session: Session) -> list[Round]:
    return list(session.exec(select(Round)))


def _login_as(client: TestClient, user: Any) -> str:
    """A fresh browser for another person (the JSON login refuses a cookie session without its CSRF header)."""
    client.cookies.clear()
    return login(client, user)


def _field_error(html: str, field: str) -> bool:
    return f'data-field="{field}"' in html


def test_pages_need_a_login(client: TestClient, world: RoundWorld) -> None:
    for path in ("/rounds", "/rounds/new", "/rounds/1", "/rounds/1/audit"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path


def test_the_list_shows_the_rounds_and_a_new_round_button(
    client: TestClient, world: RoundWorld, make_listing: Any
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    rnd = new_round(client, world.manager_headers, title="June fly ash")
    login(client, world.manager)
    r = client.get("/rounds")
    assert r.status_code == 200
    assert 'id="new-round"' in r.text and "June fly ash" in r.text
    assert f'href="/rounds/{rnd["id"]}"' in r.text and 'data-state="queued"' in r.text


def test_the_form_previews_what_is_in_scope_without_creating_anything(
    client: TestClient, world: RoundWorld, make_listing: Any, session: Session
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    make_listing(world.producer2, "supply", "fly_ash", 30.5)
    make_listing(world.consumer, "demand", "fly_ash", 80)
    make_listing(world.producer, "supply", "fgd_gypsum", 50)
    token = login(client, world.manager)

    page = client.get("/rounds/new")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text and 'value="fly_ash"' in page.text
    assert f'value="{world.park.id}" selected' in page.text  # the manager's own park

    r = client.post("/rounds/new", data=_form(token, action="preview", materials=["fly_ash"]))
    assert r.status_code == 200, r.text
    assert 'id="preview-table"' in r.text
    row = re.search(r'<tr data-material="fly_ash">(.*?)</tr>', r.text, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
    assert cells == ["2", "150.5", "1", "80"]
    assert 'data-material="fgd_gypsum"' not in r.text  # only the chosen materials
    assert 'value="fly_ash" selected' in r.text  # the form keeps its choices
    assert _rounds(session) == []


def test_start_creates_the_round_and_its_page_follows_the_run_to_the_report(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any, session: Session
) -> None:
    s = make_listing(world.producer, "supply", "fly_ash", 120)
    d = make_listing(world.consumer, "demand", "fly_ash", 80)
    token = login(client, world.manager)
    r = client.post("/rounds/new", data=_form(token), follow_redirects=False)
    assert r.status_code == 303, r.text
    round_id = _round_id(r.headers["location"])
    [rnd] = _rounds(session)
    assert rnd.id == round_id and rnd.state is RoundState.QUEUED and rnd.scope_park_id == world.park.id

    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert 'id="round-progress"' in page.text and 'data-done="false"' in page.text
    assert 'data-stage="queued"' in page.text and 'id="round-cancel"' in page.text
    assert 'data-label-building_pairs="Building pairs"' in page.text
    assert 'id="round-report"' not in page.text

    drain()
    page = client.get(f"/rounds/{round_id}")
    assert page.status_code == 200
    assert 'data-done="true"' in page.text and 'id="round-cancel"' not in page.text
    assert 'id="report-table"' in page.text and 'id="round-map"' in page.text
    assert f'<tr data-supply="{s.id}" data-demand="{d.id}">' in page.text
    assert 'id="kpi-matched">80 t' in page.text
    assert f'href="/api/v1/rounds/{round_id}/export?format=csv&amp;run=1"' in page.text
    assert f'href="/api/v1/rounds/{round_id}/export?format=xlsx&amp;run=1"' in page.text
    flows = json.loads(
        re.search(r'<script type="application/json" id="round-flows">(.*?)</script>', page.text).group(1)
    )  # type: ignore[union-attr]
    assert flows == [
        {
            "from": [114.5, 36.6],
            "to": [114.55, 36.65],
            "tonnes": 80.0,
            "material_code": "fly_ash",
            "supplier": "邯郸热电",
            "consumer": "邯郸水泥",
        }
    ]
    assert 'data-map-level="city" data-map-province="130000"' in page.text
    assert 'data-reason="demand_filled_by_other_supply"' in page.text  # the unmatched 40 t, with its reason
    assert 'id="round-publish"' in page.text and 'id="settings-form"' in page.text

    export = client.get(f"/api/v1/rounds/{round_id}/export?format=csv&run=1")
    assert export.status_code == 200 and "邯郸热电" in export.content.decode("utf-8-sig")


def test_bad_input_is_refused_next_to_each_field_and_nothing_is_created(
    client: TestClient, world: RoundWorld, session: Session
) -> None:
    token = login(client, world.manager)
    r = client.post(
        "/rounds/new",
        data=_form(
            token,
            period="2025-13",
            freight_cny_per_t_km="0",
            detour_factor="9",
            materials=["unobtainium"],
        ),
    )
    assert r.status_code == 422
    for field in ("period", "freight_cny_per_t_km", "detour_factor", "materials"):
        assert _field_error(r.text, field), field
    assert 'value="2025-13"' in r.text  # what was typed stays in the form
    assert "Enter a detour factor between 1 and 5" in r.text

    r = client.post("/rounds/new", data=_form(token, scope="regions"))
    assert r.status_code == 422 and _field_error(r.text, "regions")
    r = client.post("/rounds/new", data=_form(token, scope="regions", regions=["999999"]))
    assert r.status_code == 422 and _field_error(r.text, "regions")  # the service: not a province or city
    r = client.post("/rounds/new", data=_form(token, freight_cny_per_t_km="abc", detour_factor="NaN"))
    assert (
        r.status_code == 422 and _field_error(r.text, "freight_cny_per_t_km") and _field_error(r.text, "detour_factor")
    )
    assert _rounds(session) == []


def test_field_errors_are_in_chinese_for_a_chinese_reader(
    client: TestClient, world: RoundWorld, make_user: Any
) -> None:
    manager = make_user(Role.PARK_MANAGER, park=world.park, locale="zh-CN")
    token = login(client, manager)
    r = client.post("/rounds/new", data=_form(token, detour_factor="0.5"))
    assert r.status_code == 422
    assert "请输入 1 至 5 之间的绕行系数" in r.text and "Enter a detour factor" not in r.text


def test_a_form_post_without_the_csrf_token_is_refused(client: TestClient, world: RoundWorld, session: Session) -> None:
    login(client, world.manager)
    data = _form("")
    del data["csrf_token"]
    assert client.post("/rounds/new", data=data).status_code == 403
    assert client.post("/rounds/new", data=_form("not-the-token")).status_code == 403
    assert _rounds(session) == []


def test_members_of_enterprises_and_other_parks_are_refused(
    client: TestClient,
    world: RoundWorld,
    make_listing: Any,
    make_user: Any,
    make_park: Any,
    drain: Any,
    session: Session,
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    make_listing(world.consumer, "demand", "fly_ash", 80)
    rnd = new_round(client, world.manager_headers)
    drain()

    token = login(client, world.producer.user)
    assert client.get("/rounds").status_code == 403
    assert client.get("/rounds/new").status_code == 403
    assert client.post("/rounds/new", data=_form(token)).status_code == 403
    assert client.get(f"/rounds/{rnd['id']}").status_code == 404
    assert client.get(f"/rounds/{rnd['id']}/audit").status_code == 404
    assert client.post(f"/rounds/{rnd['id']}/publish", data={"csrf_token": token, "run": "1"}).status_code == 404

    other = make_user(Role.PARK_MANAGER, park=make_park(lat=39.0, lon=118.5, city_code="130200"))
    token = _login_as(client, other)
    listing_page = client.get("/rounds")
    assert listing_page.status_code == 200 and f'href="/rounds/{rnd["id"]}"' not in listing_page.text
    assert client.get(f"/rounds/{rnd['id']}").status_code == 404
    assert client.post(f"/rounds/{rnd['id']}/publish", data={"csrf_token": token, "run": "1"}).status_code == 404
    assert client.post(f"/rounds/{rnd['id']}/cancel", data={"csrf_token": token}).status_code == 404
    # a park round for somebody else's park: the error sits next to the park field
    r = client.post("/rounds/new", data=_form(token, park_id=str(world.park.id)))
    assert r.status_code == 403 and _field_error(r.text, "park_id")
    row = session.get(Round, rnd["id"])
    assert row is not None
    session.refresh(row)
    assert row.state is RoundState.REVIEW

    newcomer = make_user(Role.ENTERPRISE)
    _login_as(client, newcomer)
    assert client.get("/rounds").status_code == 403


def test_review_pin_forbid_rerun_compare_and_publish_through_the_forms(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any, session: Session
) -> None:
    s1 = make_listing(world.producer, "supply", "fly_ash", 120)
    s2 = make_listing(world.producer2, "supply", "fly_ash", 60)
    d = make_listing(world.consumer, "demand", "fly_ash", 80)
    rnd = new_round(client, world.manager_headers)
    rid = rnd["id"]
    drain()
    token = login(client, world.manager)

    def post(path: str, **data: Any) -> Any:
        return client.post(f"/rounds/{rid}{path}", data={"csrf_token": token, **data}, follow_redirects=False)

    def current() -> Round:
        row = session.get(Round, rid)
        assert row is not None
        session.refresh(row)
        return row

    # pin s2 → d for 50 t, then take the pin off again
    r = post("/pins", supply_listing_id=str(s2.id), demand_listing_id=str(d.id), quantity_t="50")
    assert r.status_code == 303 and r.headers["location"] == f"/rounds/{rid}?done=pinned"
    assert current().pins == [{"supply_listing_id": s2.id, "demand_listing_id": d.id, "quantity_kg": 50_000}]
    page = client.get(r.headers["location"])
    assert 'id="round-done"' in page.text
    assert f'action="/rounds/{rid}/pins/{s2.id}/{d.id}/remove"' in page.text
    r = post("/pins", supply_listing_id=str(s2.id), demand_listing_id=str(d.id), quantity_t="-1")
    assert r.status_code == 422 and 'id="round-problem"' in r.text
    assert post(f"/pins/{s2.id}/{d.id}/remove").status_code == 303 and current().pins == []
    r = post(f"/pins/{s2.id}/{d.id}/remove")  # not pinned any more: said on the page, not a bare error
    assert r.status_code == 404 and 'id="round-problem"' in r.text

    # forbid s1 → d, allow it, forbid it again for the re-run
    assert post("/forbidden", supply_listing_id=str(s1.id), demand_listing_id=str(d.id)).status_code == 303
    assert current().forbidden == [[s1.id, d.id]]
    page = client.get(f"/rounds/{rid}")
    assert f'action="/rounds/{rid}/forbidden/{s1.id}/{d.id}/remove"' in page.text
    assert post(f"/forbidden/{s1.id}/{d.id}/remove").status_code == 303 and current().forbidden == []
    assert post("/forbidden", supply_listing_id=str(s1.id), demand_listing_id=str(d.id)).status_code == 303

    # re-run with new settings: bad numbers come back next to their fields
    r = post("/runs", freight_cny_per_t_km="-2", detour_factor="1.2", honour_min_lots="1")
    assert r.status_code == 422 and _field_error(r.text, "freight_cny_per_t_km") and 'value="-2"' in r.text
    r = post("/runs", freight_cny_per_t_km="0.5", detour_factor="1.2")
    assert r.status_code == 303 and r.headers["location"] == f"/rounds/{rid}?done=rerun"
    rnd_row = current()
    assert rnd_row.runs_count == 2 and rnd_row.state is RoundState.QUEUED
    assert rnd_row.freight_cny_per_t_km == 0.5 and rnd_row.honour_min_lots is False
    r = post("/publish", run="1")  # nothing can be published while the run is queued
    assert r.status_code == 409 and 'id="round-problem"' in r.text
    drain()

    page = client.get(f"/rounds/{rid}")
    assert f'<tr data-supply="{s2.id}" data-demand="{d.id}">' in page.text
    assert f'<tr data-supply="{s1.id}" data-demand="{d.id}">' not in page.text
    assert 'id="compare-form"' in page.text and '<tr data-run="2">' in page.text
    old = client.get(f"/rounds/{rid}?run=1")
    assert old.status_code == 200 and f'<tr data-supply="{s1.id}" data-demand="{d.id}">' in old.text
    assert 'id="round-publish"' not in old.text  # only the latest run is published

    compare = client.get(f"/rounds/{rid}/compare?a=1&b=2")
    assert compare.status_code == 200
    assert 'data-change="removed"' in compare.text and 'data-change="added"' in compare.text
    assert client.get(f"/rounds/{rid}/compare?a=1&b=9").status_code == 404
    assert client.get(f"/rounds/{rid}/compare?a=x&b=2").status_code == 422

    r = post("/publish", run="1")  # a later run exists: refused, said on the page
    assert r.status_code == 409 and "reload" in r.text
    r = post("/publish", run="2")
    assert r.status_code == 303 and r.headers["location"] == f"/rounds/{rid}?done=published"
    assert current().state is RoundState.PUBLISHED
    [proposal] = session.exec(select(Proposal).where(Proposal.round_id == rid)).all()
    assert (proposal.supply_listing_id, proposal.demand_listing_id) == (s2.id, d.id)
    page = client.get(r.headers["location"])
    assert 'data-state="published"' in page.text and 'id="round-publish"' not in page.text
    assert "Re-run (declined pairs excluded, agreements kept)" in page.text


def test_cancel_while_queued_then_retry(client: TestClient, world: RoundWorld, make_listing: Any, drain: Any) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    rid = new_round(client, world.manager_headers)["id"]
    token = login(client, world.manager)
    r = client.post(f"/rounds/{rid}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/rounds/{rid}?done=cancelled"
    page = client.get(r.headers["location"])
    assert 'data-state="cancelled"' in page.text and 'id="round-cancel"' not in page.text
    r = client.post(f"/rounds/{rid}/cancel", data={"csrf_token": token})
    assert r.status_code == 409 and 'id="round-problem"' in r.text
    r = client.post(
        f"/rounds/{rid}/runs",
        data={"csrf_token": token, "freight_cny_per_t_km": "0.35", "detour_factor": "1.3", "honour_min_lots": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    drain()
    assert 'data-state="review"' in client.get(f"/rounds/{rid}").text


def test_the_audit_trail_is_for_the_parks_manager_and_admins(
    client: TestClient, world: RoundWorld, make_listing: Any, drain: Any
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    make_listing(world.consumer, "demand", "fly_ash", 80)
    rid = new_round(client, world.manager_headers)["id"]
    drain()
    client.post(f"/api/v1/rounds/{rid}/publish", json={"run": 1}, headers=world.manager_headers)

    login(client, world.manager)
    r = client.get(f"/rounds/{rid}/audit")
    assert r.status_code == 200
    for action in ("round.create", "round.publish", "proposal.create"):
        assert f'data-action="{action}"' in r.text, action
    assert "Test user" in r.text  # who did it

    _login_as(client, world.admin)
    assert client.get(f"/rounds/{rid}/audit").status_code == 200
    _login_as(client, world.consumer.user)
    assert client.get(f"/rounds/{rid}/audit").status_code == 404


def test_a_regulator_runs_a_round_over_cities_of_the_region_only(
    client: TestClient, world: RoundWorld, make_listing: Any, session: Session
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    token = login(client, world.regulator)
    page = client.get("/rounds/new")
    assert page.status_code == 200
    assert 'name="scope" value="regions" checked' in page.text and 'value="130000" selected' in page.text
    assert 'value="130400"' in page.text and 'value="110000"' not in page.text  # Hebei's cities, not Beijing

    r = client.post("/rounds/new", data=_form(token, scope="regions", regions=["110000"]))
    assert r.status_code == 403 and _field_error(r.text, "regions")
    r = client.post("/rounds/new", data=_form(token, scope="regions", regions=["130400"], action="preview"))
    assert r.status_code == 200 and 'data-material="fly_ash"' in r.text
    r = client.post("/rounds/new", data=_form(token, scope="regions", regions=["130400"]), follow_redirects=False)
    assert r.status_code == 303
    [rnd] = _rounds(session)
    assert rnd.scope_regions == ["130400"] and rnd.region_code == "130000" and rnd.park_id is None
    page = client.get(f"/rounds/{rnd.id}")
    assert page.status_code == 200 and "Provinces and cities: Handan" in page.text


def test_an_admin_runs_a_round_over_every_visible_listing(
    client: TestClient, world: RoundWorld, make_listing: Any, session: Session, drain: Any
) -> None:
    make_listing(world.producer, "supply", "fly_ash", 120)
    make_listing(world.consumer, "demand", "fly_ash", 80)
    token = login(client, world.admin)
    assert 'name="scope" value="visible" checked' in client.get("/rounds/new").text
    r = client.post("/rounds/new", data=_form(token, scope="visible"), follow_redirects=False)
    assert r.status_code == 303
    drain()
    page = client.get(r.headers["location"])
    assert 'id="report-table"' in page.text and 'id="round-publish"' in page.text
