"""Fetch the data of SPEAR's math recipe for ``env=math_python``, on a connected machine.

What it fetches, from the Hugging Face hub (through the ``datasets`` library), and what it writes into
``DIR`` (then run with ``MATH_DATA=DIR``):

=================  ==========================================  ===================================
file               source (hub dataset, split)                 rows written
=================  ==========================================  ===================================
dapo_math.jsonl    ``BytedTsinghua-SIA/DAPO-Math-17k``, train  the distinct problems (the hub's
                                                               1.79M rows hold each ~100 times)
aime2024.jsonl     ``Maxwell-Jia/AIME_2024``, train            30 (AIME 2024 I and II)
                   (else ``HuggingFaceH4/aime_2024``)
aime2025.jsonl     ``yentinglin/aime_2025``, train             30 (AIME 2025 I and II)
                   (else ``opencompass/AIME2025``,
                   configs AIME2025-I and AIME2025-II, test)
=================  ==========================================  ===================================

The first source of each is the one SPEAR's scripts read (``verl/recipe/spear/run_qwen*-32b_*.sh``:
``datasets/Maxwell-Jia/AIME_2024``, ``datasets/yentinglin/aime_2025``). Each line is ``{"problem": ...,
"answer": "...", "kind": ...}``, the format of the shipped problems (``kind``: ``dapo_math``, ``aime2024``,
``aime2025``). DAPO's prompts wrap each problem in an instruction ("Solve the following math problem step
by step. The last line of your response should be of the form Answer: ..."): the wrapper is removed and
``problem`` is the problem alone; ``env.env_kwargs.style=spear`` puts it back
(`agent_rl.envs.math_python.spear_user_text`).

    python scripts/prepare_math.py DIR            # fetch all three (DAPO-Math-17k: a ~300 MB download)
    python scripts/prepare_math.py DIR --only aime2024 aime2025
    python scripts/prepare_math.py DIR --check    # count the rows of each file: ok / missing / unexpected

Nothing in agent_rl runs this at training or test time; ``env=math_python`` refuses a prepared split whose
file is missing, naming this script.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

FILES = ("dapo_math", "aime2024", "aime2025")
# Rows expected per file: AIME has 30 problems a year (two contests of 15). DAPO-Math-17k's card states
# "17K prompts"; its hub split holds 1,791,700 rows, 100 copies of each of 17,917 (not verified here:
# no hub access on the machine this was written on), so --check accepts a count in DAPO_RANGE.
EXPECTED = {"aime2024": 30, "aime2025": 30}
DAPO_RANGE = (17_000, 17_917)

DAPO_PREFIX = re.compile(r"^Solve the following math problem step by step\..*?\n\n", re.DOTALL)
DAPO_SUFFIX = re.compile(r"\n\nRemember to put your answer on its own line after \"Answer:\"\.\s*$")

Row = dict[str, str]


def dapo_problem(prompt: str) -> str:
    """The problem of a DAPO-Math-17k prompt, without DAPO's instruction before and after it."""
    return DAPO_SUFFIX.sub("", DAPO_PREFIX.sub("", prompt.strip(), count=1)).strip()


def row(problem: object, answer: object, kind: str) -> Row:
    return {"problem": str(problem).strip(), "answer": str(answer).strip(), "kind": kind}


def distinct(rows: Iterable[Row]) -> list[Row]:
    """The rows in their first order, each (problem, answer) once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in rows:
        key = (r["problem"], r["answer"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def load(name: str, config: str | None = None, split: str = "train"):
    from datasets import load_dataset

    return load_dataset(name, config, split=split)


def fetch_dapo() -> list[Row]:
    data = load("BytedTsinghua-SIA/DAPO-Math-17k")
    rows = (
        row(dapo_problem(r["prompt"][0]["content"]), r["reward_model"]["ground_truth"], "dapo_math")
        for r in data
    )
    return distinct(rows)


def fetch_aime2024() -> list[Row]:
    try:
        data = load("Maxwell-Jia/AIME_2024")
        return [row(r["Problem"], r["Answer"], "aime2024") for r in data]
    except Exception as err:  # noqa: BLE001 - any failure of the first source: try the second
        print(f"Maxwell-Jia/AIME_2024: {err}; trying HuggingFaceH4/aime_2024", file=sys.stderr)
        data = load("HuggingFaceH4/aime_2024")
        return [row(r["problem"], r["answer"], "aime2024") for r in data]


def fetch_aime2025() -> list[Row]:
    try:
        data = load("yentinglin/aime_2025")
        return [row(r["problem"], r["answer"], "aime2025") for r in data]
    except Exception as err:  # noqa: BLE001 - any failure of the first source: try the second
        print(f"yentinglin/aime_2025: {err}; trying opencompass/AIME2025", file=sys.stderr)
        rows = []
        for config in ("AIME2025-I", "AIME2025-II"):
            rows += [
                row(r["question"], r["answer"], "aime2025")
                for r in load("opencompass/AIME2025", config, "test")
            ]
        return rows


FETCHERS: dict[str, Callable[[], list[Row]]] = {
    "dapo_math": fetch_dapo,
    "aime2024": fetch_aime2024,
    "aime2025": fetch_aime2025,
}


def write(path: Path, rows: list[Row]) -> None:
    """The rows as JSON lines, written to a temporary file first (an interrupted run leaves no half file)."""
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def count_status(name: str, count: int | None) -> str:
    """``ok``, ``missing`` or ``unexpected (...)`` for a file of ``count`` rows (None: no file)."""
    if count is None:
        return "missing"
    low, high = (EXPECTED[name], EXPECTED[name]) if name in EXPECTED else DAPO_RANGE
    if low <= count <= high:
        return "ok"
    return f"unexpected (expected {low}" + (f"-{high})" if high != low else ")")


def check(root: Path, names: Iterable[str]) -> bool:
    """Print each file's row count and status; True when every one is ok."""
    good = True
    for name in names:
        path = root / f"{name}.jsonl"
        count = sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.exists() else None
        status = count_status(name, count)
        good &= status == "ok"
        print(f"{name:10s} {'-' if count is None else count:>6} {status}  {path}")
    return good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", type=Path, help="folder to write into (MATH_DATA)")
    parser.add_argument(
        "--only", nargs="+", choices=FILES, default=list(FILES), help="fetch these files only"
    )
    parser.add_argument("--check", action="store_true", help="count the rows of each file; fetch nothing")
    args = parser.parse_args(argv)
    root = args.dir.expanduser()
    if args.check:
        return 0 if check(root, args.only) else 1
    root.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        rows = FETCHERS[name]()
        write(root / f"{name}.jsonl", rows)
        print(f"{name}: {len(rows)} problems -> {root / f'{name}.jsonl'}")
    return 0 if check(root, args.only) else 1


if __name__ == "__main__":
    sys.exit(main())
