"""The `exchange` command: serve, migrate, load-demo, solve, round, worker, create-admin, backup, restore."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from exchange.settings import get_settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    print(f"Serving the exchange on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        "exchange.app:serving_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning" if args.quiet else "info",
        access_log=not args.quiet,
        timeout_keep_alive=args.keep_alive_s,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from exchange.core.migrate import upgrade

    settings = get_settings()
    if settings.database_url.startswith("sqlite:///"):
        from pathlib import Path

        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def cmd_makemigration(args: argparse.Namespace) -> int:
    from alembic import command

    from exchange.core.migrate import alembic_config

    command.revision(alembic_config(get_settings().database_url), message=args.message, autogenerate=True)
    return 0


def cmd_load_demo(args: argparse.Namespace) -> int:
    from exchange.core.db import get_engine, session_scope
    from exchange.demo.load import load_demo

    with session_scope(get_engine(get_settings().database_url)) as session:
        report = load_demo(session, seed=args.seed, if_empty=args.if_empty)
    print(report)
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from solver.cli import main as solve_main

    argv = [args.input] + (["-o", args.output] if args.output else []) + (["--check"] if args.check else [])
    return solve_main(argv)


def cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from exchange.rounds.jobs import work

    settings = get_settings()
    if not settings.redis_url:
        print(
            "error: EXCHANGE_REDIS_URL is not set, so rounds run inside the app process and there is no queue to "
            "serve; set it (for example redis://127.0.0.1:6379/0) for the app and the worker",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    queue = args.queue or settings.queue_name
    until = " until it is empty" if args.burst else ""
    print(f"Serving matching rounds from the queue {queue!r}{until}", flush=True)
    work(settings, burst=args.burst, queue_name=queue)
    return 0


def cmd_round(args: argparse.Namespace) -> int:
    """A matching round from the shell, as the given account: the same services as the page and the API."""
    import json
    import time

    from pydantic import ValidationError
    from sqlmodel import select

    from exchange.accounts.models import User
    from exchange.core.db import get_engine, session_scope
    from exchange.core.errors import DomainError
    from exchange.rounds import export, service
    from exchange.rounds.models import RoundCreate

    settings = get_settings()
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        user = session.exec(select(User).where(User.email == args.as_email.strip().lower())).first()
        if user is None:
            print(f"error: --as: no account {args.as_email}", file=sys.stderr)
            return 2
        try:
            body = RoundCreate(
                scope=args.scope,
                park_id=args.park_id,
                regions=args.region or [],
                period=args.period,
                materials=args.material or [],
            )
            rnd = service.create_round(session, settings, user, body)
        except ValidationError as exc:
            first = exc.errors()[0]
            print(f"error: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}", file=sys.stderr)
            return 2
        except DomainError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 2
        round_id = rnd.id
        assert round_id is not None
        print(f"round {round_id} queued ({rnd.title})", file=sys.stderr, flush=True)
        deadline = time.monotonic() + args.timeout
        while True:  # the in-process worker thread (or an `exchange worker`) runs it
            session.expire_all()
            st = service.status(session, service.get_round(session, user, round_id))
            if st.done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not st.done:
            print(f"error: round {round_id} is still {st.run_state} after {args.timeout:g} s", file=sys.stderr)
            return 1
        run = service.get_run(session, service.get_round(session, user, round_id))
        out: dict[str, object] = {"round": round_id, "run": run.number, "state": run.state.value}
        if run.error:
            out["error"] = run.error
        out["summary"] = service.summary_of(run)
        if args.publish and run.state.value == "succeeded":
            try:
                out["proposals"] = len(service.publish(session, user, round_id, run.number))
            except DomainError as exc:
                print(f"error: publish: {exc.detail}", file=sys.stderr)
                return 2
        print(json.dumps(export.jsonable(out), ensure_ascii=False, indent=2))
        return 0 if run.state.value == "succeeded" else 1


def cmd_create_admin(args: argparse.Namespace) -> int:
    """The first admin, from the shell: the same policy, uniqueness and hashing as every other account."""
    from exchange.accounts.models import Role
    from exchange.accounts.service import check_new_account, new_account
    from exchange.audit import service as audit
    from exchange.core.db import get_engine, session_scope
    from exchange.core.errors import DomainError

    with session_scope(get_engine(get_settings().database_url)) as session:
        try:
            email = check_new_account(session, args.email, args.password)
        except DomainError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 2
        user = new_account(session, email, args.name, args.password, Role.ADMIN)
        audit.record(session, actor_id=None, action="user.create_admin", entity="user", entity_id=user.id)
        session.commit()
    print(f"admin {email} created")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from exchange.core.errors import DomainError
    from exchange.ops.backup import backup

    try:
        path = backup(get_settings().database_url, Path(args.file))
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    print(f"backup written to {path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from exchange.core.errors import DomainError
    from exchange.ops.backup import restore

    try:
        restore(get_settings().database_url, Path(args.file))
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 2
    print(f"database restored from {args.file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="exchange", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        return p

    p = add("serve", cmd_serve, "serve the web app and API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no access log (load tests, behind a logging proxy)")
    p.add_argument(
        "--keep-alive-s",
        type=int,
        default=65,
        help="how long an idle keep-alive connection stays open (above a proxy's usual 60 s, so the proxy closes "
        "first; uvicorn's 5 s made a client that paused about 5 s reuse a connection as it closed: a reset)",
    )
    p = add("migrate", cmd_migrate, "apply database migrations (Alembic)")
    p.add_argument("revision", nargs="?", default="head")
    p = add("makemigration", cmd_makemigration, "autogenerate a new migration from the models")
    p.add_argument("message")
    p = add("load-demo", cmd_load_demo, "load the demo region (parks, enterprises, listings, ledgers, accounts)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--if-empty", action="store_true", help="do nothing if enterprises already exist")
    p = add("solve", cmd_solve, "solve a matching problem given as JSON (see README: solver contract)")
    p.add_argument("input", help="input JSON file, or - for standard input")
    p.add_argument("-o", "--output", help="write the solution here instead of standard output")
    p.add_argument("--check", action="store_true", help="validate the solution independently before writing it")
    p = add("round", cmd_round, "run a matching round as an account and print its summary (optionally publish)")
    p.add_argument("--as", dest="as_email", required=True, help="the e-mail of the park manager, regulator or admin")
    p.add_argument("--scope", choices=("park", "regions", "visible"), default="park")
    p.add_argument("--park-id", type=int, help="scope=park: the park (default: the manager's own)")
    p.add_argument("--region", action="append", help="scope=regions: a province or city code (repeatable)")
    p.add_argument("--period", required=True, help="the month, YYYY-MM")
    p.add_argument("--material", action="append", help="a material code (repeatable; default: all)")
    p.add_argument("--publish", action="store_true", help="publish the run's pairs as proposals when it succeeds")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the run (default 600)")
    p = add("worker", cmd_worker, "serve the matching-round queue (needs EXCHANGE_REDIS_URL); start one per CPU")
    p.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    p.add_argument("--queue", help="the queue to serve (default: EXCHANGE_QUEUE_NAME, exchange-rounds)")
    p = add("backup", cmd_backup, "write a consistent backup of the database to FILE")
    p.add_argument("file")
    p = add("restore", cmd_restore, "restore the database from a backup FILE (stop the app first)")
    p.add_argument("file")
    p = add("create-admin", cmd_create_admin, "create an admin account")
    p.add_argument("email")
    p.add_argument("password")
    p.add_argument("--name", default="Administrator")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from sqlalchemy.exc import DBAPIError

    from exchange.core.dbfaults import classify

    try:
        result: int = args.func(args)
    except DBAPIError as exc:
        fault = classify(exc)  # unreachable, read-only or full: one sentence, not a traceback
        if fault is None:
            raise
        print(f"error: {fault.detail}", file=sys.stderr)
        return 3
    return result


if __name__ == "__main__":
    sys.exit(main())
