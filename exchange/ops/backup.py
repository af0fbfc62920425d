"""Backup and restore for both databases: `exchange backup FILE` and `exchange restore FILE`.

SQLite: the online backup API copies a consistent snapshot while the app keeps running; restore copies the
snapshot back page by page (run it with the app stopped) and checks integrity.
PostgreSQL: `pg_dump --format=custom` of the exchange's schema, restored with `pg_restore --clean`; the
client tools of the server's major version must be on PATH.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from exchange.core.errors import Unprocessable


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _pg_args(url: str) -> tuple[list[str], str | None]:
    """libpq connection flags for pg_dump/pg_restore, and the schema named by `options=-csearch_path=...`."""
    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    conninfo = f"postgresql://{parts.netloc}{parts.path}"
    schema = None
    for option in parse_qs(parts.query).get("options", []):
        option = unquote(option)
        if option.startswith("-csearch_path="):
            schema = option.split("=", 1)[1].split(",")[0]
    return ["--dbname", conninfo], schema


def backup(database_url: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if database_url.startswith("sqlite"):
        source = sqlite3.connect(_sqlite_path(database_url))
        target = sqlite3.connect(dest)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return dest
    args, schema = _pg_args(database_url)
    cmd = ["pg_dump", "--format=custom", "--no-owner", "--file", str(dest), *args]
    if schema:
        cmd += ["--schema", schema]
    _run(cmd)
    return dest


def restore(database_url: str, src: Path) -> None:
    if not src.exists():
        raise Unprocessable(f"backup file {src} does not exist", field="file")
    if database_url.startswith("sqlite"):
        snapshot = sqlite3.connect(src)
        try:
            if snapshot.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise Unprocessable(f"{src} is not an intact SQLite database", field="file")
        except sqlite3.DatabaseError as exc:
            raise Unprocessable(f"{src} is not an SQLite database: {exc}", field="file") from exc
        target = sqlite3.connect(_sqlite_path(database_url))
        try:
            with target:
                snapshot.backup(target)
        finally:
            target.close()
            snapshot.close()
        return
    args, schema = _pg_args(database_url)
    cmd = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", *args]
    if schema:
        cmd += ["--schema", schema]
    _run([*cmd, str(src)])


def _run(cmd: list[str]) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise Unprocessable(f"{cmd[0]} is not installed (PostgreSQL client tools are needed)") from exc
    except subprocess.CalledProcessError as exc:
        raise Unprocessable(f"{cmd[0]} failed: {exc.stderr.strip()[:500]}") from exc
