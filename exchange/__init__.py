"""The exchange platform: web app, API, domain services, persistence and CLI."""

from sqlmodel import SQLModel

# Constraint names must be identical on SQLite and PostgreSQL so Alembic migrations work on both.
# Set here, before any model module defines a table.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
