"""Who may call what: the declared access policy that `test_authz_matrix.py` checks against every route.

Adding a route? Add one line to POLICY: `"METHOD /path/{param}": Rule(<who may>, <request>)`. The matrix test
fails for any route of the app without a line here (and for any line without a route), so a new route cannot
ship undeclared. Path parameters are filled with ids of objects owned by enterprise A (`PATH_PARAMS`), so
every route is also an IDOR probe: B guessing A's ids must get 401, 403 or 404.

"Allowed" means the request got past authorization: a 2xx or 3xx (a redirect to /login is a denial), or a
business refusal such as 409 after another allowed actor already changed the state. "Denied" means 401, 403
or 404. Each rule also needs one allowed actor to succeed outright, so a broken probe body cannot hide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests.exchange.security.world import (
    ADMIN,
    ANON,
    MANAGER_OTHER,
    MEMBER_A,
    MEMBER_B,
    NEWCOMER,
    PDF,
    REGULATOR_OTHER,
    ROLES,
    World,
)
from tests.factories import PASSWORD

Who = frozenset[str]
EVERYONE: Who = frozenset(ROLES)
SIGNED_IN: Who = EVERYONE - {ANON}
NOBODY: Who = frozenset()
OWNER: Who = frozenset({MEMBER_A})  # members of the enterprise that owns the object (A)
OWNER_ADMIN: Who = frozenset({MEMBER_A, ADMIN})
MEMBERS: Who = frozenset({MEMBER_A, MEMBER_B})  # any enterprise member, acting on their own enterprise
SCOPED: Who = SIGNED_IN - {NEWCOMER}  # accounts tied to an enterprise, a park, a region (or admins)
ENTERPRISE_ACCOUNTS: Who = MEMBERS | {NEWCOMER}  # registering: members already have one (409), not a denial
STAFF: Who = frozenset({MANAGER_OTHER, REGULATOR_OTHER, ADMIN})  # dashboards: each within their own scope
ADMIN_ONLY: Who = frozenset({ADMIN})

Request = Callable[[World, str], Mapping[str, Any]]  # (world, role) -> httpx request kwargs


@dataclass(frozen=True)
class Rule:
    """Who may call a route, and how to call it (json / data / files / params; path params override)."""

    allow: Who
    request: Request | None = None
    path: Mapping[str, Callable[[World], object]] = field(default_factory=dict)
    query: Mapping[str, Callable[[World], object]] = field(default_factory=dict)
    why: str = ""


# Path parameter -> the object of A (or of the admin's victim) it names.
PATH_PARAMS: dict[str, Callable[[World], object]] = {
    "listing_id": lambda w: w.listing_a,
    "attachment_id": lambda w: w.attachment_a,
    "entry_id": lambda w: w.ledger_a,
    "token_id": lambda w: w.token_a,
    "user_id": lambda w: w.victim,
    "enterprise_id": lambda w: w.enterprise_a,
    "park_id": lambda w: w.park_a,
    "action": lambda w: "pause",
    "name": lambda w: "materials",
    "decision": lambda w: "approve",
    "fmt": lambda w: "csv",
    "round_id": lambda w: w.round_a,
    "number": lambda w: 1,
    "proposal_id": lambda w: w.proposal_a,
    "agreement_id": lambda w: w.agreement_a,
    "delivery_id": lambda w: w.delivery_a,
    "supply_listing_id": lambda w: w.pin[0],  # the pinned pair; the forbidden pair's routes override both
    "demand_listing_id": lambda w: w.pin[1],
}
FORBIDDEN_PAIR = {"supply_listing_id": lambda w: w.forbidden[0], "demand_listing_id": lambda w: w.forbidden[1]}


def _json(body: Callable[[World, str], Any]) -> Request:
    return lambda w, role: {"json": body(w, role)}


def _form(body: Callable[[World, str], dict[str, str]]) -> Request:
    return lambda w, role: {"data": body(w, role)}


def _ledger(w: World, role: str) -> dict[str, str]:
    return {"material_code": "steel_slag", "period": w.period, "generated_t": "10", "utilised_in_house_t": "10"}


def _ledger_csv(w: World, role: str) -> Mapping[str, Any]:
    text = f"material_code,period,generated_t,utilised_in_house_t\nsteel_slag,{w.period},10,10\n"
    return {"files": {"file": ("ledger.csv", text.encode(), "text/csv")}}


def _enterprise(w: World, role: str) -> dict[str, Any]:
    from tests.factories import valid_uscc

    return {
        "name": f"Registered by {role}",
        "uscc": valid_uscc(800_000 + len(role)),
        "industry": "cement",
        "address": "河北省邯郸市复兴区",
        "park_id": w.park_b,
        "lat": 36.6,
        "lon": 114.45,
    }


def _enterprise_form(w: World, role: str) -> dict[str, str]:
    return {k: str(v) for k, v in _enterprise(w, role).items()}


def _listing_csv(w: World, role: str) -> Mapping[str, Any]:
    return {"files": {"file": ("listings.csv", b"material_code,quantity_t\nsteel_slag,25\n", "text/csv")}}


def _listing_form(w: World, role: str) -> dict[str, str]:
    return {"kind": "supply", "material_code": "steel_slag", "quantity_t": "25", "quantity_basis": "per_month"}


def _listing_edit_form(w: World, role: str, anonymous: bool = False) -> dict[str, str]:
    return {
        "version": str(w.listing_a_anonymous_version if anonymous else w.listing_a_version),
        "kind": "supply",
        "material_code": "fly_ash",
        "quantity_t": "1200",
        "quantity_basis": "per_month",
        "price_cny_per_t": "35.50",
        "visibility": "anonymous" if anonymous else "park",
        "notes": f"edited by {role}",
    }


def _round(w: World, role: str) -> dict[str, Any]:
    """Each staff member's own scope: a manager their park, a regulator their province, an admin A's park."""
    if role == REGULATOR_OTHER:
        return {"scope": "regions", "regions": ["410000"], "period": w.period}
    return {"scope": "park", "period": w.period, **({"park_id": w.park_a} if role == ADMIN else {})}


def _round_in_park_a(w: World, role: str) -> dict[str, Any]:
    return {"scope": "park", "park_id": w.park_a, "period": w.period}


def _round_in_hebei(w: World, role: str) -> dict[str, Any]:
    return {"scope": "regions", "regions": ["130000"], "period": w.period}


def _round_form(body: Callable[[World, str], dict[str, Any]], action: str = "start") -> Request:
    """The new-round page's form: the API's body plus the settings fields and which button was pressed."""

    def request(w: World, role: str) -> Mapping[str, Any]:
        data = {k: str(v) if not isinstance(v, list) else v for k, v in body(w, role).items()}
        return {"data": {**data, "freight_cny_per_t_km": "0.35", "detour_factor": "1.3", "action": action}}

    return request


def _delivery(w: World, role: str) -> dict[str, str]:
    return {"delivered_on": date.today().isoformat(), "quantity_t": "1", "waybill_no": f"WB-{role}"}


_new_password = "another-horse-43-battery"

POLICY: dict[str, Rule | list[Rule]] = {
    # ---- infrastructure
    "GET /openapi.json": Rule(EVERYONE),
    "GET /docs": Rule(EVERYONE),
    "GET /healthz": Rule(EVERYONE),
    # ---- accounts (API)
    "POST /api/v1/auth/signup": Rule(
        EVERYONE,
        _json(lambda w, r: {"email": f"new-{r}@example.com", "display_name": "New", "password": _new_password}),
    ),
    "POST /api/v1/auth/login": Rule(EVERYONE, _json(lambda w, r: {"email": "a2@example.com", "password": PASSWORD})),
    "POST /api/v1/auth/logout": Rule(EVERYONE),
    "GET /api/v1/me": Rule(SIGNED_IN),
    "POST /api/v1/me/tokens": Rule(SIGNED_IN, _json(lambda w, r: {"name": "cli"})),
    "DELETE /api/v1/me/tokens/{token_id}": Rule(OWNER, why="only the token's own user; admins neither"),
    "POST /api/v1/users": Rule(
        ADMIN_ONLY,
        _json(
            lambda w, r: {
                "email": f"staff-{r}@example.com",
                "display_name": "Staff",
                "password": _new_password,
                "role": "regulator",
                "region_code": "130000",
            }
        ),
    ),
    "GET /api/v1/users": Rule(ADMIN_ONLY),
    "POST /api/v1/users/{user_id}/disable": Rule(ADMIN_ONLY),
    "POST /api/v1/users/{user_id}/enable": Rule(ADMIN_ONLY),
    # ---- accounts (pages)
    "GET /": Rule(EVERYONE),
    "GET /login": Rule(EVERYONE),
    "POST /login": Rule(EVERYONE, _form(lambda w, r: {"email": "a2@example.com", "password": PASSWORD})),
    "POST /logout": Rule(EVERYONE),
    "GET /signup": Rule(EVERYONE),
    "POST /signup": Rule(
        EVERYONE,
        _form(lambda w, r: {"email": f"page-{r}@example.com", "display_name": "New", "password": _new_password}),
    ),
    "POST /lang": Rule(EVERYONE, _form(lambda w, r: {"locale": "en"})),
    "GET /account": Rule(SIGNED_IN),
    "POST /account/tokens": Rule(SIGNED_IN, _form(lambda w, r: {"name": "page token"})),
    "POST /account/tokens/{token_id}/revoke": Rule(OWNER),
    "POST /account/password": Rule(
        SIGNED_IN, _form(lambda w, r: {"old_password": PASSWORD, "new_password": _new_password})
    ),
    # ---- ledgers (API): scoped lists (leaks are checked separately), A's entry by id only for A and admins
    "GET /api/v1/ledgers": [
        Rule(SCOPED),
        Rule(SCOPED, query={"enterprise_id": lambda w: w.enterprise_a}, why="filters within scope, never widens"),
    ],
    "PUT /api/v1/ledgers": Rule(MEMBERS, _json(_ledger)),
    "GET /api/v1/ledgers/prefill": Rule(
        MEMBERS, lambda w, r: {"params": {"material_code": "fly_ash", "period": w.period}}
    ),
    "GET /api/v1/ledgers/import-template.csv": Rule(EVERYONE, why="an empty template; nothing private"),
    "POST /api/v1/ledgers/import": Rule(MEMBERS, _ledger_csv),
    "GET /api/v1/ledgers/{entry_id}": Rule(OWNER_ADMIN),
    "GET /api/v1/ledgers/{entry_id}/history": Rule(OWNER_ADMIN),
    # ---- ledgers (pages)
    "GET /ledgers": Rule(SCOPED),
    "GET /ledgers/new": Rule(MEMBERS),
    "POST /ledgers/new": Rule(MEMBERS, _form(_ledger)),
    "GET /ledgers/import": Rule(MEMBERS),
    "POST /ledgers/import": Rule(MEMBERS, _ledger_csv),
    "GET /ledgers/{entry_id}": Rule(OWNER_ADMIN),
    # ---- listings (API): A's listing is park-only, so outside A's park only A and admins may see it
    "POST /api/v1/listings": Rule(MEMBERS, _json(lambda w, r: {"material_code": "steel_slag", "quantity_t": "50"})),
    "GET /api/v1/listings": [
        Rule(EVERYONE),
        Rule(MEMBERS, query={"mine": lambda w: "true"}, why="'mine' needs an enterprise"),
        Rule(EVERYONE, query={"park_id": lambda w: w.park_a}),
    ],
    "GET /api/v1/listings/attachments/{attachment_id}": Rule(OWNER_ADMIN),
    "POST /api/v1/listings/import": Rule(MEMBERS, _listing_csv),
    "GET /api/v1/listings/import/template.csv": Rule(EVERYONE),
    "GET /api/v1/listings/import/template.xlsx": Rule(EVERYONE),
    "GET /api/v1/listings/{listing_id}": [
        Rule(OWNER_ADMIN),
        Rule(EVERYONE, path={"listing_id": lambda w: w.listing_a_anonymous}, why="public, private fields withheld"),
    ],
    "PATCH /api/v1/listings/{listing_id}": [
        Rule(OWNER, _json(lambda w, r: {"notes": f"edited by {r}", "version": w.listing_a_version})),
    ],
    "POST /api/v1/listings/{listing_id}/{action}": [
        Rule(OWNER_ADMIN, why="pause: admins may moderate"),
        Rule(OWNER_ADMIN, path={"action": lambda w: "close"}),
        Rule(
            OWNER,
            path={"action": lambda w: "resume", "listing_id": lambda w: w.listing_a_paused},
            why="only the owner resumes",
        ),
        Rule(
            OWNER_ADMIN,
            path={"listing_id": lambda w: w.listing_a_anonymous},
            why="a listing outsiders can see still only changes by its owner",
        ),
    ],
    "GET /api/v1/listings/{listing_id}/history": [
        Rule(OWNER_ADMIN),
        Rule(OWNER_ADMIN, path={"listing_id": lambda w: w.listing_a_anonymous}),
    ],
    "GET /api/v1/listings/{listing_id}/attachments": Rule(OWNER_ADMIN),
    "POST /api/v1/listings/{listing_id}/attachments": [
        Rule(OWNER, lambda w, r: {"files": {"files": ("report.pdf", PDF, "application/pdf")}}),
        Rule(
            OWNER,
            lambda w, r: {"files": {"files": ("report.pdf", PDF, "application/pdf")}},
            path={"listing_id": lambda w: w.listing_a_anonymous},
        ),
    ],
    # ---- enterprises (API): public directory; contacts only for members and reviewers; pending ones hidden
    "POST /api/v1/enterprises": Rule(ENTERPRISE_ACCOUNTS, _json(_enterprise)),
    "GET /api/v1/enterprises": [
        Rule(EVERYONE),
        Rule(EVERYONE, query={"status": lambda w: "pending"}, why="outsiders' lists never hold the pending one"),
        Rule(EVERYONE, query={"q": lambda w: "Enterprise"}),
    ],
    "GET /api/v1/enterprises/{enterprise_id}": [
        Rule(EVERYONE, why="approved: public view, contacts withheld"),
        Rule(ADMIN_ONLY, path={"enterprise_id": lambda w: w.enterprise_pending}, why="pending: members, reviewers"),
    ],
    "PATCH /api/v1/enterprises/{enterprise_id}": [
        Rule(OWNER_ADMIN, _json(lambda w, r: {"contact_name": f"changed by {r}"})),
        Rule(ADMIN_ONLY, _json(lambda w, r: {"park_id": w.park_b}), why="the park is checked at approval"),
    ],
    "POST /api/v1/enterprises/{enterprise_id}/approve": Rule(
        ADMIN_ONLY, path={"enterprise_id": lambda w: w.enterprise_pending}, why="or the manager of its own park"
    ),
    "POST /api/v1/enterprises/{enterprise_id}/reject": Rule(
        ADMIN_ONLY, _json(lambda w, r: {"reason": "no"}), path={"enterprise_id": lambda w: w.enterprise_pending}
    ),
    "GET /api/v1/enterprises/{enterprise_id}/members": Rule(OWNER_ADMIN, why="or the manager of its own park"),
    "POST /api/v1/enterprises/{enterprise_id}/members": Rule(
        OWNER_ADMIN, _json(lambda w, r: {"email": f"colleague-{r}@a.example", "display_name": r, "password": PASSWORD})
    ),
    # ---- enterprises (pages)
    "GET /enterprises": Rule(EVERYONE),
    "GET /enterprises/new": Rule(SIGNED_IN, why="staff see why they cannot; members go to their own"),
    "POST /enterprises/new": Rule(ENTERPRISE_ACCOUNTS, _form(_enterprise_form)),
    "GET /enterprises/register": Rule(EVERYONE, why="an alias that redirects"),
    "GET /enterprises/pending": Rule(EVERYONE, why="an alias that redirects to /admin/approvals"),
    "GET /my/enterprise": Rule(SIGNED_IN),
    "GET /enterprises/{enterprise_id}": [
        Rule(EVERYONE),
        Rule(ADMIN_ONLY, path={"enterprise_id": lambda w: w.enterprise_pending}),
    ],
    "GET /enterprises/{enterprise_id}/edit": Rule(OWNER_ADMIN),
    "POST /enterprises/{enterprise_id}/members": Rule(
        OWNER_ADMIN,
        _form(lambda w, r: {"email": f"colleague-page-{r}@a.example", "display_name": r, "password": PASSWORD}),
    ),
    "POST /enterprises/{enterprise_id}/edit": Rule(
        OWNER_ADMIN,
        _form(
            lambda w, r: {
                "name": "Enterprise A",
                "uscc": w.uscc_a,
                "industry": "coal_power",
                "address": "河北省邯郸市",
                "park_id": str(w.park_a),
                "contact_name": f"changed by {r}",
            }
        ),
    ),
    # ---- parks: public; created by admins
    "GET /api/v1/parks": Rule(EVERYONE),
    "GET /api/v1/parks/{park_id}": Rule(EVERYONE),
    "POST /api/v1/parks": Rule(ADMIN_ONLY, _json(lambda w, r: {"name": f"New park {r}", "city_code": "130400"})),
    "GET /parks": Rule(EVERYONE),
    "GET /parks/{park_id}": Rule(EVERYONE),
    "POST /parks": Rule(ADMIN_ONLY, _form(lambda w, r: {"name": f"Page park {r}", "city_code": "130400"})),
    # ---- administration pages: approvals for admins and park managers (their own park's queue), users for admins
    "GET /admin": Rule(frozenset({MANAGER_OTHER, ADMIN})),
    "GET /admin/approvals": Rule(frozenset({MANAGER_OTHER, ADMIN}), why="a manager sees only their park's queue"),
    "POST /admin/approvals/{enterprise_id}/{decision}": [
        Rule(ADMIN_ONLY, path={"enterprise_id": lambda w: w.enterprise_pending}),
        Rule(
            ADMIN_ONLY,
            _form(lambda w, r: {"reason": "incomplete"}),
            path={"enterprise_id": lambda w: w.enterprise_pending, "decision": lambda w: "reject"},
        ),
    ],
    "GET /admin/users": Rule(ADMIN_ONLY),
    "GET /admin/users/new": Rule(ADMIN_ONLY),
    "POST /admin/users/new": Rule(
        ADMIN_ONLY,
        _form(
            lambda w, r: {
                "email": f"page-staff-{r}@example.com",
                "display_name": "Staff",
                "password": _new_password,
                "role": "park_manager",
                "park_id": str(w.park_b),
            }
        ),
    ),
    "POST /admin/users/{user_id}/{action}": [
        Rule(ADMIN_ONLY, path={"action": lambda w: "disable"}),
        Rule(ADMIN_ONLY, path={"action": lambda w: "enable"}),
    ],
    # ---- statistics: dashboards for staff within their scope; A's park is outside every outsider's scope
    "GET /api/v1/stats/dashboard": [
        Rule(STAFF),
        Rule(ADMIN_ONLY, query={"park_id": lambda w: w.park_a}),
        Rule(ADMIN_ONLY, query={"region": lambda w: "130400"}),
    ],
    "GET /api/v1/stats/tables/{name}": [
        Rule(STAFF),
        Rule(ADMIN_ONLY, query={"park_id": lambda w: w.park_a}),
        Rule(STAFF, query={"format": lambda w: "csv"}),
    ],
    "GET /api/v1/stats/boundaries": Rule(EVERYONE),
    "GET /api/v1/public/stats": Rule(EVERYONE),
    "GET /stats": [Rule(STAFF), Rule(ADMIN_ONLY, query={"park_id": lambda w: w.park_a})],
    "GET /public/stats": Rule(EVERYONE),
    # ---- listings (pages): the same rules as the API
    "GET /listings": [Rule(EVERYONE), Rule(EVERYONE, query={"park_id": lambda w: w.park_a})],
    "GET /listings/mine": Rule(MEMBERS),
    "GET /my/listings": Rule(EVERYONE, why="an alias that redirects"),
    "GET /listings/new": Rule(MEMBERS, why="posting needs an approved enterprise"),
    "POST /listings/new": Rule(MEMBERS, _form(_listing_form)),
    "GET /listings/import": Rule(MEMBERS),
    "POST /listings/import": Rule(MEMBERS, _listing_csv),
    "GET /listings/import/template.{fmt}": [Rule(EVERYONE), Rule(EVERYONE, path={"fmt": lambda w: "xlsx"})],
    "GET /listings/attachments/{attachment_id}": Rule(OWNER_ADMIN),
    "GET /listings/{listing_id:int}": [
        Rule(OWNER_ADMIN),
        Rule(EVERYONE, path={"listing_id": lambda w: w.listing_a_anonymous}, why="public, private fields withheld"),
        Rule(
            OWNER | STAFF,
            path={"listing_id": lambda w: w.listing_a_paused},
            why="paused and public: hidden from searches; staff see every status (listings.visibility_clause)",
        ),
    ],
    "GET /listings/{listing_id:int}/edit": Rule(OWNER, why="admins moderate (pause, close), never edit"),
    "POST /listings/{listing_id:int}/edit": [
        Rule(OWNER, _form(_listing_edit_form)),
        Rule(
            OWNER,
            _form(lambda w, r: _listing_edit_form(w, r, anonymous=True)),
            path={"listing_id": lambda w: w.listing_a_anonymous},
        ),
    ],
    "GET /listings/{listing_id:int}/history": [
        Rule(OWNER_ADMIN),
        Rule(OWNER_ADMIN, path={"listing_id": lambda w: w.listing_a_anonymous}),
    ],
    "POST /listings/{listing_id:int}/attachments": [
        Rule(OWNER, lambda w, r: {"files": {"attachments": ("report.pdf", PDF, "application/pdf")}}),
        Rule(
            OWNER,
            lambda w, r: {"files": {"attachments": ("report.pdf", PDF, "application/pdf")}},
            path={"listing_id": lambda w: w.listing_a_anonymous},
        ),
    ],
    "POST /listings/{listing_id:int}/{action}": [
        Rule(OWNER_ADMIN, why="pause: admins may moderate"),
        Rule(OWNER_ADMIN, path={"action": lambda w: "close"}),
        Rule(OWNER, path={"action": lambda w: "resume", "listing_id": lambda w: w.listing_a_paused}),
        Rule(OWNER_ADMIN, path={"listing_id": lambda w: w.listing_a_anonymous}),
    ],
    # ---- matching rounds (API): run by staff within their scope. A's rounds are in A's park, whose manager is
    # not an actor: among the actors only admins manage them, and enterprises never see a round itself.
    "POST /api/v1/rounds/preview": [
        Rule(STAFF, _json(_round), why="each within their own scope"),
        Rule(ADMIN_ONLY, _json(_round_in_park_a), why="another park's listings are not a manager's to count"),
        Rule(
            frozenset({MANAGER_OTHER, ADMIN}),
            _json(_round_in_hebei),
            why="issue 5: a manager may scope cities/provinces (listings they may see); a regulator only their own",
        ),
    ],
    "POST /api/v1/rounds": [
        Rule(STAFF, _json(_round)),
        Rule(ADMIN_ONLY, _json(_round_in_park_a)),
        Rule(frozenset({MANAGER_OTHER, ADMIN}), _json(_round_in_hebei)),
    ],
    "GET /api/v1/rounds": Rule(STAFF, why="each sees the rounds of their scope (A's round title is a leak marker)"),
    "GET /api/v1/rounds/{round_id}": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/status": Rule(ADMIN_ONLY),
    "POST /api/v1/rounds/{round_id}/cancel": Rule(ADMIN_ONLY, path={"round_id": lambda w: w.round_a_queued}),
    "POST /api/v1/rounds/{round_id}/runs": [
        Rule(ADMIN_ONLY, why="re-run after publishing"),
        Rule(ADMIN_ONLY, _json(lambda w, r: {"detour_factor": 1.4}), path={"round_id": lambda w: w.round_a_review}),
    ],
    "GET /api/v1/rounds/{round_id}/runs": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/runs/{number}": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/runs/{number}/problem": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/runs/{number}/solution": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/report": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/compare": Rule(ADMIN_ONLY, query={"a": lambda w: 1, "b": lambda w: 1}),
    "GET /api/v1/rounds/{round_id}/export": [
        Rule(ADMIN_ONLY),
        Rule(ADMIN_ONLY, query={"format": lambda w: "xlsx"}),
    ],
    "PUT /api/v1/rounds/{round_id}/pins": Rule(
        ADMIN_ONLY,
        _json(lambda w, r: {"supply_listing_id": w.pin[0], "demand_listing_id": w.pin[1], "quantity_t": "2"}),
    ),
    "DELETE /api/v1/rounds/{round_id}/pins/{supply_listing_id}/{demand_listing_id}": Rule(ADMIN_ONLY),
    "PUT /api/v1/rounds/{round_id}/forbidden": Rule(
        ADMIN_ONLY, _json(lambda w, r: {"supply_listing_id": w.pin[0], "demand_listing_id": w.pin[1]})
    ),
    "DELETE /api/v1/rounds/{round_id}/forbidden/{supply_listing_id}/{demand_listing_id}": Rule(
        ADMIN_ONLY, path=FORBIDDEN_PAIR
    ),
    "POST /api/v1/rounds/{round_id}/publish": Rule(
        ADMIN_ONLY, _json(lambda w, r: {"run": 1}), path={"round_id": lambda w: w.round_a_review}
    ),
    "GET /api/v1/rounds/{round_id}/proposals": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/agreements": Rule(ADMIN_ONLY),
    "GET /api/v1/rounds/{round_id}/audit": Rule(ADMIN_ONLY),
    # ---- proposals, agreements, deliveries (API): the two enterprises answer and deliver; the round's managers
    # (here: admins) may read and cancel, never answer or deliver for an enterprise
    "GET /api/v1/proposals": [Rule(MEMBERS), Rule(MEMBERS, query={"state": lambda w: "open"})],
    "GET /api/v1/proposals/{proposal_id}": Rule(OWNER_ADMIN),
    "POST /api/v1/proposals/{proposal_id}/accept": Rule(OWNER, _json(lambda w, r: {"reason": f"yes from {r}"})),
    "POST /api/v1/proposals/{proposal_id}/decline": Rule(OWNER, _json(lambda w, r: {"reason": f"no from {r}"})),
    "GET /api/v1/agreements": Rule(SIGNED_IN, why="one's own enterprise's; empty without an enterprise"),
    "GET /api/v1/agreements/{agreement_id}": Rule(OWNER_ADMIN),
    "POST /api/v1/agreements/{agreement_id}/cancel": Rule(OWNER_ADMIN, _json(lambda w, r: {"reason": "no"})),
    "GET /api/v1/agreements/{agreement_id}/deliveries": Rule(OWNER_ADMIN),
    "POST /api/v1/agreements/{agreement_id}/deliveries": Rule(OWNER, _json(_delivery)),
    "POST /api/v1/deliveries/{delivery_id}/confirm": Rule(OWNER, why="the partner recorded it; A confirms"),
    "GET /api/v1/notifications": [Rule(SIGNED_IN), Rule(SIGNED_IN, query={"unread": lambda w: "true"})],
    "POST /api/v1/notifications/read": Rule(SIGNED_IN, why="marks one's own enterprise's notices only"),
    # ---- matching rounds (pages): the manager's pages, the same rules as the API
    "GET /rounds": Rule(STAFF),
    "GET /rounds/new": Rule(STAFF),
    "POST /rounds/new": [
        Rule(STAFF, _round_form(_round)),
        Rule(STAFF, _round_form(_round, "preview")),
        Rule(ADMIN_ONLY, _round_form(_round_in_park_a)),
        Rule(frozenset({MANAGER_OTHER, ADMIN}), _round_form(_round_in_hebei, "preview")),
    ],
    "GET /rounds/{round_id:int}": [Rule(ADMIN_ONLY), Rule(ADMIN_ONLY, query={"run": lambda w: 1})],
    "GET /rounds/{round_id:int}/audit": Rule(ADMIN_ONLY),
    "GET /rounds/{round_id:int}/compare": Rule(ADMIN_ONLY, query={"a": lambda w: 1, "b": lambda w: 1}),
    "POST /rounds/{round_id:int}/cancel": Rule(ADMIN_ONLY, path={"round_id": lambda w: w.round_a_queued}),
    "POST /rounds/{round_id:int}/pins": Rule(
        ADMIN_ONLY,
        _form(lambda w, r: {"supply_listing_id": str(w.pin[0]), "demand_listing_id": str(w.pin[1]), "quantity_t": "2"}),
    ),
    "POST /rounds/{round_id:int}/pins/{supply_listing_id:int}/{demand_listing_id:int}/remove": Rule(ADMIN_ONLY),
    "POST /rounds/{round_id:int}/forbidden": Rule(
        ADMIN_ONLY, _form(lambda w, r: {"supply_listing_id": str(w.pin[0]), "demand_listing_id": str(w.pin[1])})
    ),
    "POST /rounds/{round_id:int}/forbidden/{supply_listing_id:int}/{demand_listing_id:int}/remove": Rule(
        ADMIN_ONLY, path=FORBIDDEN_PAIR
    ),
    "POST /rounds/{round_id:int}/runs": Rule(
        ADMIN_ONLY, _form(lambda w, r: {"freight_cny_per_t_km": "0.4", "detour_factor": "1.3"})
    ),
    "POST /rounds/{round_id:int}/publish": Rule(
        ADMIN_ONLY, _form(lambda w, r: {"run": "1"}), path={"round_id": lambda w: w.round_a_review}
    ),
    # ---- proposals, agreements, deliveries, notifications (pages): for enterprise members; staff follow rounds
    # on the round pages, but the round's managers (here: admins) may read and cancel an agreement
    "GET /my/proposals": Rule(MEMBERS),
    "POST /my/proposals/{proposal_id:int}/accept": Rule(OWNER),
    "POST /my/proposals/{proposal_id:int}/decline": Rule(OWNER, _form(lambda w, r: {"reason": f"no from {r}"})),
    "GET /my/agreements": Rule(MEMBERS),
    "GET /agreements/{agreement_id:int}": Rule(OWNER_ADMIN),
    "POST /agreements/{agreement_id:int}/cancel": Rule(OWNER_ADMIN, _form(lambda w, r: {"reason": "no"})),
    "POST /agreements/{agreement_id:int}/deliveries": Rule(OWNER, _form(_delivery)),
    "POST /deliveries/{delivery_id:int}/confirm": Rule(OWNER, why="the partner recorded it; A confirms"),
    "GET /notifications": Rule(MEMBERS),
    "POST /notifications/read": Rule(MEMBERS),
}
