"""`exchange solve INPUT.json [-o OUTPUT.json]`: the JSON contract on the command line.

Exit codes: 0 solved (optimal or feasible), 1 infeasible, 2 malformed input (message names the
field), 3 `--check` found a rule broken (a solver bug).  Output is byte-stable for the same
input except `summary.solve_seconds`; pass `--deterministic` to write 0.0 there instead.

Malformed input never ends in a traceback: a file that is not UTF-8 JSON, JSON nested too deeply,
a number too large for a float (or with more digits than Python reads) and tonnes over a billion
per lot are all reported as `error: <field or file>: <reason>`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from solver.contract import problem_from_json, solution_to_json
from solver.core import solve
from solver.model import ContractError, Status
from solver.validate import check_limits, violations


class InputError(Exception):
    """The input file cannot be read as JSON; the message says why, for a person."""


def _read(path: str) -> Any:
    """The parsed JSON of the file (or of stdin for '-')."""
    try:
        if path == "-":
            text = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        else:
            with open(path, "rb") as fh:
                text = fh.read()
        return json.loads(text.decode("utf-8-sig"))
    except OSError as err:
        raise InputError(err.strerror or str(err)) from None
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text (byte {err.start} is {text[err.start : err.start + 1]!r})") from None
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    except RecursionError:
        raise InputError("not valid JSON: lists or objects are nested too deeply") from None
    except ValueError as err:  # e.g. an integer with more digits than Python converts (4300)
        raise InputError(f"not valid JSON: {_short(str(err).split(';')[0])}") from None


def _huge_number(raw: Any) -> str | None:
    """The path (as the contract names fields) of the first integer too large for a float, if any."""
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                float(value)
            except OverflowError:
                return path or "(root)"
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return None


def _short(text: str, limit: int = 300) -> str:
    """A message that quotes a value can be huge (a megabyte string, a deep list): keep it readable."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exchange solve", description="Allocate supply lots to demands.")
    parser.add_argument("input", help="problem JSON file ('-' for stdin)")
    parser.add_argument("-o", "--output", help="write the solution here instead of stdout")
    parser.add_argument("--check", action="store_true", help="verify the solution independently")
    parser.add_argument(
        "--deterministic", action="store_true", help="write solve_seconds as 0.0 for byte-stable output"
    )
    args = parser.parse_args(argv)
    try:
        raw = _read(args.input)
    except InputError as err:
        print(f"error: cannot read {args.input}: {err}", file=sys.stderr)
        return 2
    try:
        huge = _huge_number(raw)
        if huge is not None:
            raise ContractError(huge, "must be a finite number, got a number too large for a float")
        problem = problem_from_json(raw)
        check_limits(problem)
    except ContractError as err:
        print(f"error: {err.field_path}: {_short(err.message)}", file=sys.stderr)
        return 2
    solution = solve(problem)
    if solution.status is Status.INVALID:
        print(f"error: {solution.error_field}: {solution.message}", file=sys.stderr)
        return 2
    text = json.dumps(solution_to_json(solution, timing=not args.deterministic), indent=2, sort_keys=True)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    if solution.status is Status.INFEASIBLE:
        print(f"infeasible: {solution.error_field}: {solution.message}", file=sys.stderr)
        return 1
    if args.check:
        broken = violations(problem, solution)
        for line in broken:
            print(f"check: {line}", file=sys.stderr)
        if broken:
            return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
