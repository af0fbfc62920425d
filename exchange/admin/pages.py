"""HTML pages for administration: the approval queue (admins and park managers), user accounts (admins)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from exchange.accounts import service as accounts
from exchange.accounts.models import Role, StaffCreate, User, UserStatus
from exchange.admin import service
from exchange.core.deps import AdminUser, ManagerOrAdmin, SessionDep
from exchange.core.errors import Conflict, DomainError, NotFound, Unprocessable
from exchange.core.i18n import request_locale, translate
from exchange.core.web import redirect, render
from exchange.enterprises import service as enterprises
from exchange.enterprises.models import Enterprise
from exchange.enterprises.pages import industry_names, park_options, place_name
from exchange.parks.service import list_parks
from exchange.reference.places import load_divisions

router = APIRouter(include_in_schema=False)

STAFF_ROLES = (Role.PARK_MANAGER, Role.REGULATOR, Role.ADMIN)
STAFF_MESSAGES = {
    "email": "Enter a valid email address",
    "display_name": "Enter a name (at most 120 characters)",
    "password": "At least 10 characters, letters and digits",
    "role": "Choose a role",
    "region_code": "Choose a province or city",
    "park_id": "Choose a park",
}


def _locale(request: Request) -> str:
    return request_locale(request, request.app.state.settings.default_locale)


def _safe_local(target: str, default: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else default


@router.get("/admin")
def admin_home(user: ManagerOrAdmin) -> Response:
    return redirect("/admin/users" if user.role is Role.ADMIN else "/admin/approvals")


# ---------------------------------------------------------------- approvals


@router.get("/admin/approvals", response_class=HTMLResponse)
def approvals(request: Request, session: SessionDep, user: ManagerOrAdmin) -> Response:
    locale = _locale(request)
    queue = enterprises.review_queue(session, user)
    done = request.query_params.get("done")
    return render(
        request,
        "admin/approvals.html",
        queue=[enterprises.to_view(user, e) for e in queue],
        members={e.id: enterprises.members(session, e.id) for e in queue if e.id is not None},
        park_names={pid: p.name for pid, p in enterprises.parks_by_id(session).items()},
        industry_names=industry_names(locale),
        place_name=lambda code: place_name(code, locale),
        done=done if done in ("approved", "rejected") else None,
        done_name=request.query_params.get("name", "")[:200],
    )


@router.post("/admin/approvals/{enterprise_id}/{decision}")
def review(
    enterprise_id: int,
    decision: str,
    session: SessionDep,
    user: ManagerOrAdmin,
    reason: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/admin/approvals",
) -> Response:
    if decision == "approve":
        ent = enterprises.approve(session, user, enterprise_id)
        done = "approved"
    elif decision == "reject":
        ent = enterprises.reject(session, user, enterprise_id, reason.strip()[:500] or None)
        done = "rejected"
    else:
        raise NotFound(f"no such decision: {decision}")
    target = _safe_local(next, "/admin/approvals")
    if target == "/admin/approvals":
        target += f"?done={done}&name={quote(ent.name)}"
    return redirect(target)


# ---------------------------------------------------------------- users


def region_options(locale: str) -> list[tuple[str, str]]:
    """Provinces, each followed by its cities, for a regulator's region."""
    divs = load_divisions()
    out: list[tuple[str, str]] = []
    for p in divs.provinces():
        out.append((p.code, f"{p.name_zh if locale == 'zh-CN' else p.name_en} ({p.code})"))
        for c in divs.cities(p.code):
            if c.name_zh != p.name_zh:
                out.append((c.code, f"— {c.name_zh if locale == 'zh-CN' else c.name_en} ({c.code})"))
    return out


@router.get("/admin/users", response_class=HTMLResponse)
def users(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    role: str = "",
    status: str = "",
    q: str = "",
    page: int = 1,
) -> Response:
    locale = _locale(request)
    per_page = 100
    page = max(1, page)
    filters = service.UserFilters(
        role=Role(role) if role in {r.value for r in Role} else None,
        status=UserStatus(status) if status in {s.value for s in UserStatus} else None,
        q=q[:200] or None,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    total, rows = service.list_users(session, admin, filters)
    return render(
        request,
        "admin/users.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // per_page)),
        form={"role": role, "status": status, "q": q},
        roles=[(r.value, translate(locale, r.value)) for r in Role],
        park_names={pid: p.name for pid, p in enterprises.parks_by_id(session).items()},
        enterprise_names=_enterprise_names(session, rows),
        created=request.query_params.get("created", "")[:254],
    )


def _enterprise_names(session: Session, rows: list[User]) -> dict[int, str]:
    ids = {u.enterprise_id for u in rows if u.enterprise_id is not None}
    if not ids:
        return {}
    return {e.id: e.name for e in session.exec(select(Enterprise).where(col(Enterprise.id).in_(ids))) if e.id}


@router.post("/admin/users/{user_id}/{action}")
def set_status(user_id: int, action: str, session: SessionDep, admin: AdminUser) -> Response:
    if action not in ("disable", "enable"):
        raise NotFound(f"no such action: {action}")
    if action == "disable" and user_id == admin.id:
        raise Conflict("You cannot disable your own account")
    accounts.set_status(session, admin, user_id, UserStatus.DISABLED if action == "disable" else UserStatus.ACTIVE)
    return redirect("/admin/users")


def _staff_page(
    request: Request, session: Session, form: dict[str, Any], errors: dict[str, str], status: int = 200
) -> Response:
    locale = _locale(request)
    return render(
        request,
        "admin/staff_form.html",
        status_code=status,
        form=form,
        errors=errors,
        roles=[(r.value, translate(locale, r.value)) for r in STAFF_ROLES],
        parks=park_options(session, locale),
        regions=region_options(locale),
        has_parks=bool(list_parks(session)),
    )


@router.get("/admin/users/new", response_class=HTMLResponse)
def staff_form(request: Request, session: SessionDep, admin: AdminUser) -> Response:
    return _staff_page(request, session, {"role": Role.PARK_MANAGER.value}, {})


@router.post("/admin/users/new", response_class=HTMLResponse)
def create_staff(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    email: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    park_id: Annotated[str, Form()] = "",
    region_code: Annotated[str, Form()] = "",
) -> Response:
    form = {"email": email, "display_name": display_name, "role": role, "park_id": park_id, "region_code": region_code}
    errors: dict[str, str] = {}
    if role not in {r.value for r in STAFF_ROLES}:
        errors["role"] = STAFF_MESSAGES["role"]
    if park_id and not park_id.isdigit():
        errors["park_id"] = STAFF_MESSAGES["park_id"]
    if not errors:
        try:
            data = StaffCreate(
                email=email.strip(),
                display_name=display_name.strip(),
                password=password,
                role=Role(role),
                park_id=int(park_id) if park_id and role == Role.PARK_MANAGER.value else None,
                region_code=region_code or None if role == Role.REGULATOR.value else None,
            )
            if data.park_id is not None and not any(p.id == data.park_id for p in list_parks(session)):
                raise Unprocessable("This park does not exist", field="park_id")
            if data.region_code is not None and load_divisions().find(data.region_code) is None:
                raise Unprocessable("Choose a province or city", field="region_code")
            user = accounts.create_staff(session, admin, data)
        except ValidationError as exc:
            for e in exc.errors():
                name = str(e["loc"][0]) if e["loc"] else "__all__"
                errors.setdefault(name, STAFF_MESSAGES.get(name, "Invalid value"))
        except DomainError as exc:
            session.rollback()
            errors[exc.field or "__all__"] = exc.detail
            return _staff_page(request, session, form, errors, status=exc.status)
        else:
            return redirect(f"/admin/users?created={quote(user.email)}")
    return _staff_page(request, session, form, errors, status=422)
