from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from exchange.accounts.models import Role, WebSession
from exchange.core.deps import SESSION_COOKIE
from tests.factories import PASSWORD, csrf, login


def test_signup_then_me_through_the_api(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/signup",
        json={"email": "Li.Wei@Example.com", "display_name": "Li Wei", "password": "longpassword1"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "li.wei@example.com"
    assert r.json()["role"] == "enterprise"
    r = client.post("/api/v1/auth/login", json={"email": "li.wei@example.com", "password": "longpassword1"})
    assert r.status_code == 200
    cookie_header = r.headers["set-cookie"]
    assert "HttpOnly" in cookie_header and "SameSite=lax" in cookie_header
    assert client.get("/api/v1/me").json()["display_name"] == "Li Wei"


def test_weak_password_and_duplicate_email_are_refused_with_a_reason(client: TestClient) -> None:
    r = client.post("/api/v1/auth/signup", json={"email": "a@example.com", "display_name": "A", "password": "short"})
    assert r.status_code == 422
    assert "password" in r.json()["detail"]
    body = {"email": "a@example.com", "display_name": "A", "password": "onlyletterspassword"}
    assert client.post("/api/v1/auth/signup", json=body).status_code == 422
    body["password"] = "letters-and-digits-9"
    assert client.post("/api/v1/auth/signup", json=body).status_code == 201
    r = client.post("/api/v1/auth/signup", json=body)
    assert r.status_code == 409
    assert r.json()["field"] == "email"


def test_wrong_password_is_401_with_a_message(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": "nope-nope-1"})
    assert r.status_code == 401
    assert r.json()["detail"] == "email or password is wrong"


def test_bearer_token_authenticates_and_revocation_stops_it(client: TestClient, make_user, token_for) -> None:  # type: ignore[no-untyped-def]
    user = make_user(Role.REGULATOR, region_code="130000")
    headers = token_for(user)
    assert client.get("/api/v1/me", headers=headers).json()["role"] == "regulator"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer exk_wrong"}).status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_logout_invalidates_the_server_side_session(client: TestClient, make_user, session: Session) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    token = login(client, user)
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token}).status_code == 204
    assert session.exec(select(WebSession).where(WebSession.user_id == user.id)).first() is None
    assert client.get("/api/v1/me").status_code == 401


def test_cookie_session_post_without_csrf_token_is_refused(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    login(client, user)
    r = client.post("/api/v1/me/tokens", json={"name": "x"})
    assert r.status_code == 403
    assert "security token" in r.json()["detail"]


def test_login_form_sets_session_and_rejects_missing_csrf(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    r = client.post("/login", data={"email": user.email, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    token = csrf(client)
    r = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.cookies.get(SESSION_COOKIE)


def test_login_form_shows_the_error_next_to_the_form(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    token = csrf(client)
    r = client.post("/login", data={"email": user.email, "password": "bad-password-1", "csrf_token": token})
    assert r.status_code == 401
    assert "field-error" in r.text


def test_pages_default_to_chinese_and_switch_to_english(client: TestClient) -> None:
    r = client.get("/login")
    assert r.status_code == 200
    assert 'lang="zh-CN"' in r.text
    assert "登录" in r.text
    r = client.get("/login", headers={"Accept-Language": "en-GB"})
    assert "Log in" in r.text


def test_security_headers_and_local_api_docs(client: TestClient) -> None:
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    docs = client.get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower()


def test_repeated_wrong_passwords_are_throttled_with_429(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    for _ in range(5):
        assert (
            client.post("/api/v1/auth/login", json={"email": user.email, "password": "bad-guess-1"}).status_code == 401
        )
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 429
    assert "too many failed logins" in r.json()["detail"]


def test_disabled_account_loses_sessions_and_tokens(client: TestClient, make_user, token_for) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(Role.ADMIN)
    user = make_user()
    headers = token_for(user)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    r = client.post(f"/api/v1/users/{user.id}/disable", headers=token_for(admin))
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 403


def test_only_admins_create_staff_and_a_regulator_needs_a_region(client: TestClient, make_user, token_for) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(Role.ADMIN)
    body = {"email": "reg@example.com", "display_name": "Reg", "password": "regulator-pass-1", "role": "regulator"}
    assert client.post("/api/v1/users", json=body, headers=token_for(make_user())).status_code == 403
    r = client.post("/api/v1/users", json=body, headers=token_for(admin))
    assert r.status_code == 422 and r.json()["field"] == "region_code"
    body["region_code"] = "130000"
    assert client.post("/api/v1/users", json=body, headers=token_for(admin)).status_code == 201


def test_idle_and_absolute_session_timeouts(session: Session, make_user, settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from exchange.accounts import service
    from exchange.core.db import utcnow

    user = make_user()
    raw = service.start_session(session, user)
    now = utcnow()
    assert service.resolve_session(session, raw, settings, now=now) is not None
    idle_later = now + timedelta(minutes=settings.session_idle_minutes + 1)
    assert service.resolve_session(session, raw, settings, now=idle_later) is None
    raw = service.start_session(session, user)
    # Active every 30 minutes, but past the absolute lifetime it still ends.
    t = now
    while t < now + timedelta(hours=settings.session_absolute_hours - 1):
        t += timedelta(minutes=30)
        assert service.resolve_session(session, raw, settings, now=t) is not None
    assert (
        service.resolve_session(
            session, raw, settings, now=now + timedelta(hours=settings.session_absolute_hours, minutes=1)
        )
        is None
    )


def test_password_change_ends_other_sessions(client: TestClient, make_user, session: Session, settings) -> None:  # type: ignore[no-untyped-def]
    from exchange.accounts import service

    user = make_user()
    other_device = service.start_session(session, user)
    token = login(client, user)
    r = client.post(
        "/account/password",
        data={"old_password": PASSWORD, "new_password": "brand-new-pass-7", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert service.resolve_session(session, other_device, settings) is None
    assert (
        client.post("/api/v1/auth/login", json={"email": user.email, "password": "brand-new-pass-7"}).status_code == 200
    )
