"""Sign-up, login, server-side sessions and API tokens.

Passwords are hashed with Argon2id through pwdlib. Session and API tokens are 256-bit random values;
only their SHA-256 is stored, so a database leak does not hand out live credentials.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from pwdlib import PasswordHash
from sqlmodel import Session, col, func, select

from exchange.accounts.models import ApiToken, Role, SignupIn, StaffCreate, User, UserStatus, WebSession
from exchange.audit import service as audit
from exchange.audit.models import AuditEvent
from exchange.core.db import utcnow
from exchange.core.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized, Unprocessable
from exchange.settings import Settings

_hasher = PasswordHash.recommended()
# Verifying against a dummy hash for unknown emails keeps response times alike (no account enumeration).
_DUMMY_HASH = _hasher.hash("dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_policy(password: str, email: str = "") -> None:
    """At least 10 characters, letters and digits, not the email. Raises Unprocessable(field=password)."""
    if len(password) < 10:
        raise Unprocessable("password must have at least 10 characters", field="password")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise Unprocessable("password must contain letters and digits", field="password")
    if email and password.lower() == email.lower():
        raise Unprocessable("password must not be your email", field="password")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def find_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def check_new_account(session: Session, email: str, password: str) -> str:
    """The normalised e-mail of an account about to be made: the password policy holds and the e-mail is free."""
    email = email.strip().lower()
    check_password_policy(password, email)
    if find_by_email(session, email):
        raise Conflict("an account with this email already exists", field="email")
    return email


def new_account(session: Session, email: str, display_name: str, password: str, role: Role, **fields: Any) -> User:
    """Every way an account is made (sign-up, staff, a colleague) stores it alike, with the e-mail that
    `check_new_account` returned; the caller audits and commits."""
    user = User(
        email=email,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role,
        **fields,
    )
    session.add(user)
    session.flush()
    return user


def signup(session: Session, data: SignupIn) -> User:
    """A new person; they then register their enterprise, which stays pending until approved."""
    user = new_account(
        session,
        check_new_account(session, data.email, data.password),
        data.display_name.strip(),
        data.password,
        Role.ENTERPRISE,
        locale=data.locale if data.locale in ("zh-CN", "en") else "zh-CN",
    )
    audit.record(session, actor_id=user.id, action="user.signup", entity="user", entity_id=user.id)
    session.commit()
    return user


def create_staff(session: Session, by: User, data: StaffCreate) -> User:
    if by.role is not Role.ADMIN:
        raise Forbidden("only an admin can create park managers, regulators and admins")
    email = check_new_account(session, data.email, data.password)
    if data.role is Role.PARK_MANAGER and data.park_id is None:
        raise Unprocessable("a park manager needs a park", field="park_id")
    if data.role is Role.REGULATOR and not data.region_code:
        raise Unprocessable("a regulator needs a region code (province or city)", field="region_code")
    user = new_account(
        session,
        email,
        data.display_name,
        data.password,
        data.role,
        park_id=data.park_id if data.role is Role.PARK_MANAGER else None,
        region_code=data.region_code if data.role is Role.REGULATOR else None,
    )
    audit.record(session, actor_id=by.id, action="user.create", entity="user", entity_id=user.id, role=data.role.value)
    session.commit()
    return user


# Login throttling: after this many failed logins on one account within the window, further attempts are
# refused with 429 until the window has passed. Counted from the audit trail, so it holds across processes.
LOGIN_FAILURES_ALLOWED = 5
LOGIN_FAILURE_WINDOW = timedelta(minutes=15)


def recent_login_failures(session: Session, user_id: int, now: datetime | None = None) -> int:
    since = (now or utcnow()) - LOGIN_FAILURE_WINDOW
    stmt = select(func.count()).where(
        AuditEvent.actor_id == user_id, AuditEvent.action == "auth.login_failed", AuditEvent.at >= since
    )
    return int(session.exec(stmt).one())


def authenticate(session: Session, email: str, password: str) -> User:
    user = find_by_email(session, email)
    if user is None:
        _hasher.verify(password, _DUMMY_HASH)
        raise Unauthorized("email or password is wrong")
    assert user.id is not None
    if recent_login_failures(session, user.id) >= LOGIN_FAILURES_ALLOWED:
        raise TooManyRequests("too many failed logins for this account; try again in 15 minutes")
    if not _hasher.verify(password, user.password_hash):
        audit.record(session, actor_id=user.id, action="auth.login_failed", entity="user", entity_id=user.id)
        session.commit()
        raise Unauthorized("email or password is wrong")
    if user.status is not UserStatus.ACTIVE:
        raise Forbidden("this account is disabled")
    return user


def start_session(session: Session, user: User) -> str:
    """Returns the raw cookie value; a fresh token at every login (no session fixation)."""
    raw = secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(WebSession(token_hash=token_hash(raw), user_id=user.id))
    audit.record(session, actor_id=user.id, action="auth.login", entity="user", entity_id=user.id)
    session.commit()
    return raw


def end_session(session: Session, raw: str) -> None:
    ws = session.exec(select(WebSession).where(WebSession.token_hash == token_hash(raw))).first()
    if ws is not None:
        audit.record(session, actor_id=ws.user_id, action="auth.logout", entity="user", entity_id=ws.user_id)
        session.delete(ws)
        session.commit()


def end_all_sessions(session: Session, user_id: int) -> None:
    for ws in session.exec(select(WebSession).where(WebSession.user_id == user_id)):
        session.delete(ws)


def resolve_session(session: Session, raw: str, settings: Settings, now: datetime | None = None) -> User | None:
    """The user behind a session cookie, or None if unknown, idle too long, too old or the user is disabled."""
    now = now or utcnow()
    ws = session.exec(select(WebSession).where(WebSession.token_hash == token_hash(raw))).first()
    if ws is None:
        return None
    idle = now - ws.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    too_old = now - ws.created_at > timedelta(hours=settings.session_absolute_hours)
    user = session.get(User, ws.user_id)
    if idle or too_old or user is None or user.status is not UserStatus.ACTIVE:
        session.delete(ws)
        session.commit()
        return None
    if now - ws.last_seen_at > timedelta(minutes=1):  # avoid a write on every request
        ws.last_seen_at = now
        session.add(ws)
        session.commit()
    return user


def create_api_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    raw = "exk_" + secrets.token_urlsafe(32)
    assert user.id is not None
    token = ApiToken(user_id=user.id, name=name, token_hash=token_hash(raw), prefix=raw[:10])
    session.add(token)
    session.flush()
    audit.record(session, actor_id=user.id, action="token.create", entity="api_token", entity_id=token.id)
    session.commit()
    return token, raw


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    stmt = select(ApiToken).where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))
    return list(session.exec(stmt.order_by(col(ApiToken.id))))


def revoke_api_token(session: Session, user: User, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"api token {token_id} does not exist")
    token.revoked_at = utcnow()
    session.add(token)
    audit.record(session, actor_id=user.id, action="token.revoke", entity="api_token", entity_id=token_id)
    session.commit()


def resolve_api_token(session: Session, raw: str) -> User | None:
    """The active user of an unrevoked token, in one query (it runs on every API request)."""
    found = session.exec(
        select(ApiToken.revoked_at, User)
        .join(User, col(User.id) == col(ApiToken.user_id))
        .where(ApiToken.token_hash == token_hash(raw))
    ).first()
    if found is None:
        return None
    revoked_at, user = found
    if revoked_at is not None or user.status is not UserStatus.ACTIVE:
        return None
    return user


def change_password(session: Session, user: User, old: str, new: str) -> None:
    if not _hasher.verify(old, user.password_hash):
        raise Unprocessable("current password is wrong", field="old_password")
    check_password_policy(new, user.email)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    session.add(user)
    assert user.id is not None
    end_all_sessions(session, user.id)
    audit.record(session, actor_id=user.id, action="user.password_change", entity="user", entity_id=user.id)
    session.commit()


def set_status(session: Session, by: User, user_id: int, status: UserStatus) -> User:
    if by.role is not Role.ADMIN:
        raise Forbidden("only an admin can disable or enable accounts")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    before = user.status
    user.status = status
    session.add(user)
    if status is UserStatus.DISABLED:
        end_all_sessions(session, user_id)
        for t in session.exec(select(ApiToken).where(ApiToken.user_id == user_id)):
            t.revoked_at = t.revoked_at or utcnow()
            session.add(t)
    audit.record(
        session,
        actor_id=by.id,
        action="user.status",
        entity="user",
        entity_id=user_id,
        from_state=before.value,
        to_state=status.value,
    )
    session.commit()
    return user
