"""Print the demo logins: `python -m exchange.demo.logins` (`make run` shows them before serving).

Reads the accounts the demo loader created (emails under @demo.example) from the configured database, so it
prints only logins that exist, with what each acts for.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sqlmodel import Session, col, select

from exchange.accounts.models import Role, User, UserStatus
from exchange.demo.generate import DEMO_PASSWORDS
from exchange.enterprises.models import Enterprise
from exchange.parks.models import Park
from exchange.reference.places import load_divisions

DEMO_DOMAIN = "@demo.example"
ROLE_ORDER = {Role.ADMIN: 0, Role.PARK_MANAGER: 1, Role.REGULATOR: 2, Role.ENTERPRISE: 3}


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str
    acts_for: str


def demo_logins(session: Session) -> list[DemoLogin]:
    users = session.exec(
        select(User).where(col(User.email).endswith(DEMO_DOMAIN), User.status == UserStatus.ACTIVE)
    ).all()
    parks = {p.id: p for p in session.exec(select(Park))}
    ent_ids = {u.enterprise_id for u in users if u.enterprise_id is not None}
    ents = {e.id: e for e in session.exec(select(Enterprise).where(col(Enterprise.id).in_(ent_ids)))}
    divisions = load_divisions()
    out: list[DemoLogin] = []
    for u in sorted(users, key=lambda u: (ROLE_ORDER[u.role], u.id or 0)):
        if u.role is Role.ADMIN:
            acts_for = "the whole platform"
        elif u.role is Role.PARK_MANAGER:
            park = parks.get(u.park_id)
            acts_for = f"park: {park.name}" if park else "no park"
        elif u.role is Role.REGULATOR:
            region = divisions.find(u.region_code or "")
            acts_for = f"region: {region.name_zh} ({region.code})" if region else f"region {u.region_code}"
        else:
            ent = ents.get(u.enterprise_id)
            acts_for = f"enterprise: {ent.name}" if ent else "no enterprise yet"
        out.append(DemoLogin(u.email, DEMO_PASSWORDS[u.role.value], u.role.value, acts_for))
    return out


def format_logins(logins: list[DemoLogin]) -> str:
    if not logins:
        return "No demo logins in this database (run `exchange load-demo`)."
    width = max(len(x.email) for x in logins)
    lines = ["Demo logins (email / password / role / acts for):"]
    for x in logins:
        lines.append(f"  {x.email:<{width}}  {x.password:<20}  {x.role:<12}  {x.acts_for}")
    return "\n".join(lines)


def main() -> int:
    from exchange.core.db import get_engine
    from exchange.settings import get_settings

    with Session(get_engine(get_settings().database_url)) as session:
        print(format_logins(demo_logins(session)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
