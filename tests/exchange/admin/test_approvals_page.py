"""The approval queue page: admins see every pending enterprise, a park manager only their park's."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from exchange.accounts.models import Role
from exchange.enterprises.models import EnterpriseStatus
from tests.factories import login


def test_a_park_manager_sees_and_approves_only_their_parks_queue(
    client: TestClient, session: Session, make_user, make_enterprise, make_park
) -> None:  # type: ignore[no-untyped-def]
    park, other = make_park(), make_park()
    mine = make_enterprise("本园区企业", status=EnterpriseStatus.PENDING, park=park)
    theirs = make_enterprise("外园区企业", status=EnterpriseStatus.PENDING, park=other)
    csrf = login(client, make_user(Role.PARK_MANAGER, park=park))
    page = client.get("/admin/approvals")
    assert page.status_code == 200
    assert "本园区企业" in page.text and "外园区企业" not in page.text
    r = client.post(f"/admin/approvals/{theirs.id}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 404
    r = client.post(f"/admin/approvals/{mine.id}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/approvals?done=approved")
    session.refresh(mine)
    session.refresh(theirs)
    assert (mine.status, theirs.status) == (EnterpriseStatus.APPROVED, EnterpriseStatus.PENDING)
    assert "No enterprise is waiting" in client.get("/admin/approvals").text


def test_an_admin_rejects_with_a_reason_from_the_queue(
    client: TestClient, session: Session, make_user, make_enterprise, make_park
) -> None:  # type: ignore[no-untyped-def]
    a = make_enterprise("甲", status=EnterpriseStatus.PENDING, park=make_park())
    b = make_enterprise("乙", status=EnterpriseStatus.PENDING)
    csrf = login(client, make_user(Role.ADMIN))
    page = client.get("/admin/approvals")
    assert f'id="pending-{a.id}"' in page.text and f'id="pending-{b.id}"' in page.text
    r = client.post(f"/admin/approvals/{b.id}/reject", data={"csrf_token": csrf, "reason": "代码不符"})
    assert r.status_code == 200 and 'id="review-done"' in r.text
    session.refresh(b)
    assert b.status is EnterpriseStatus.REJECTED
    r = client.post(f"/admin/approvals/{b.id}/maybe", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 404


def test_enterprise_members_and_regulators_have_no_queue(client: TestClient, make_user, make_enterprise) -> None:  # type: ignore[no-untyped-def]
    login(client, make_user(enterprise=make_enterprise()))
    assert client.get("/admin/approvals").status_code == 403
    client.cookies.clear()
    login(client, make_user(Role.REGULATOR, region_code="130000"))
    assert client.get("/admin/approvals").status_code == 403
