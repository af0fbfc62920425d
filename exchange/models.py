"""Import every domain's tables so SQLModel.metadata is complete (for Alembic and tests)."""

from __future__ import annotations

import importlib
import pkgutil

from sqlmodel import SQLModel

import exchange


def load_all_models() -> type[SQLModel]:
    for pkg in pkgutil.iter_modules(exchange.__path__):
        if pkg.ispkg:
            try:
                importlib.import_module(f"exchange.{pkg.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"exchange.{pkg.name}.models":
                    raise
    return SQLModel
