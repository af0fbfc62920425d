from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from exchange.accounts.models import User
from exchange.core.errors import Unprocessable
from exchange.enterprises.models import Enterprise
from exchange.ops.backup import backup, restore


def counts(session: Session) -> tuple[int, int]:
    return (
        session.exec(select(func.count()).select_from(User)).one(),
        session.exec(select(func.count()).select_from(Enterprise)).one(),
    )


def test_backup_and_restore_round_trip(settings, session: Session, make_user, make_enterprise, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ent = make_enterprise(name="Handan No. 3 Power Plant (demo)")
    make_user(enterprise=ent)
    before = counts(session)
    dump = backup(settings.database_url, tmp_path / "backup.dump")
    assert dump.stat().st_size > 0

    # Damage: delete data after the backup, then restore and find it back.
    session.delete(session.get(User, 1))
    session.commit()
    assert counts(session) != before
    session.close()
    restore(settings.database_url, dump)
    assert counts(session) == before
    assert session.exec(select(Enterprise.name)).one() == "Handan No. 3 Power Plant (demo)"


def test_restoring_a_file_that_is_not_a_backup_is_refused(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"this is not a database")
    with pytest.raises(Unprocessable):
        restore(settings.database_url, junk)
    with pytest.raises(Unprocessable, match="does not exist"):
        restore(settings.database_url, tmp_path / "missing.dump")
