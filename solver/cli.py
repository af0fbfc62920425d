"""`exchange solve INPUT.json [-o OUTPUT.json]`: the JSON contract on the command line.

Exit codes: 0 solved (optimal or feasible), 1 infeasible, 2 malformed input (message names the
field), 3 `--check` found a rule broken (a solver bug).  Output is byte-stable for the same
input except `summary.solve_seconds`; pass `--deterministic` to write 0.0 there instead.
"""

from __future__ import annotations

import argparse
import json
import sys

from solver.contract import problem_from_json, solution_to_json
from solver.core import solve
from solver.model import ContractError, Status
from solver.validate import violations


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
        if args.input == "-":
            raw = json.load(sys.stdin)
        else:
            with open(args.input, encoding="utf-8") as fh:
                raw = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        print(f"error: cannot read {args.input}: {err}", file=sys.stderr)
        return 2
    try:
        problem = problem_from_json(raw)
    except ContractError as err:
        print(f"error: {err.field_path}: {err.message}", file=sys.stderr)
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
