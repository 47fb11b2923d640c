#!/usr/bin/env python
"""Write a paper's table with our numbers beside the paper's, from the W&B runs of its recipe.

The paper's numbers come from ``recipes/<paper>/table.yaml``; ours are computed from the runs, read either
from offline run folders (``--runs``: every ``offline-run-*`` folder under the given paths, e.g. Hydra's
``outputs/`` or ``multirun/``) or from a W&B project (``--project entity/project``: the runs whose config
has ``experiment.paper`` = the paper). What each metric means (EPO's Succ.* and Succ., the convergence
window, the others' final success and WebShop score) is in ``agent_rl/report/table.py``.

    python scripts/make_table.py --paper epo --runs outputs multirun
    python scripts/make_table.py --table recipes/empg/table.yaml --project my-team/agent_rl --out table.md
    python scripts/make_table.py --paper epo --runs multirun --window-start 125
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent_rl.report.table import (
    WINDOW_FRACTION,
    build_table,
    load_table_spec,
    read_offline_runs,
    read_online_runs,
)

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--runs", nargs="+", metavar="DIR", help="folders searched for offline-run-* folders")
    src.add_argument("--project", metavar="ENTITY/PROJECT", help="W&B project to read the runs from")
    p.add_argument("--paper", help="epo, empg, aem, spear (default: table.yaml's paper)")
    p.add_argument("--table", type=Path, help="the paper's table (default: recipes/<paper>/table.yaml)")
    window = p.add_mutually_exclusive_group()
    window.add_argument(
        "--window-fraction",
        type=float,
        default=WINDOW_FRACTION,
        help="convergence window = the last FRACTION of training steps (default 1/6: steps 125-150 of 150)",
    )
    window.add_argument(
        "--window-start", type=float, help="convergence window = the steps >= this one, in every run"
    )
    p.add_argument("--out", type=Path, help="write the markdown here (default: stdout)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    table_path = args.table or (REPO / "recipes" / args.paper / "table.yaml" if args.paper else None)
    table = load_table_spec(table_path)
    if table_path is not None and not table:
        print(f"[make_table] no table at {table_path}: our numbers only", file=sys.stderr)
    if args.paper:
        table.setdefault("paper", args.paper)
    if args.project:
        runs, problems = read_online_runs(args.project, paper=table.get("paper")), []
    else:
        for path in args.runs:
            if not Path(path).exists():
                print(f"[make_table] {path} does not exist", file=sys.stderr)
        runs, problems = read_offline_runs(args.runs)
    print(f"[make_table] {len(runs)} runs read", file=sys.stderr)
    text = build_table(
        runs, table, window_start=args.window_start, window_fraction=args.window_fraction, notes=problems
    )
    if args.out:
        args.out.write_text(text)
        print(f"[make_table] wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
