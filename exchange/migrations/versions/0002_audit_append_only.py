"""audit trail is append-only: the database refuses UPDATE and DELETE on auditevent

Revision ID: 0002_audit_append_only
Revises: 0001_initial

Hand-written (0001_initial is regenerated from the models; triggers are not part of the models). TRUNCATE stays
possible for the database owner (test fixtures, retention jobs run by an operator); the application never issues it.
"""

from typing import Sequence, Union

from alembic import op

revision: str = "0002_audit_append_only"
down_revision: Union[str, None] = "0001_initial"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MESSAGE = "audit log is append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION auditevent_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER auditevent_append_only BEFORE UPDATE OR DELETE ON auditevent "
            "FOR EACH ROW EXECUTE FUNCTION auditevent_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER auditevent_no_{verb.lower()} BEFORE {verb} ON auditevent "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS auditevent_append_only ON auditevent")
        op.execute("DROP FUNCTION IF EXISTS auditevent_append_only()")
        return
    op.execute("DROP TRIGGER IF EXISTS auditevent_no_update")
    op.execute("DROP TRIGGER IF EXISTS auditevent_no_delete")
