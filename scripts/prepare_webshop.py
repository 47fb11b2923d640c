#!/usr/bin/env python
"""Fetch WebShop's data files (needs internet) into a folder for ``$WEBSHOP_DATA``.

WebShop's ``setup.sh -d small|all`` downloads its data with ``gdown`` from Google Drive; this script
fetches the same files by the same Drive ids (listed in ``FILES``), over plain HTTPS from
``drive.usercontent.google.com``:

* default (``setup.sh -d small``, verl-agent's ``use_small=True``, the papers' setting):
  ``items_shuffle_1000.json`` (1,000 products), ``items_ins_v2_1000.json`` (their attributes and
  instructions) and ``items_human_ins.json`` (the human instructions);
* ``--full`` (``setup.sh -d all``) also: ``items_shuffle.json`` (1.18M products, several GB) and
  ``items_ins_v2.json``; ``env.env_kwargs.catalog=full`` then loads them.

Destination: the ``DIR`` argument, else ``$WEBSHOP_DATA``, else ``~/.cache/agent_rl/webshop``. Files
already there are kept (``-f`` fetches them again). ``--check`` downloads nothing: it counts the
products, goals and split sizes that ``agent_rl.envs.webshop`` would see in ``DIR`` (the small
catalog; with ``--full`` the full one too).

    python scripts/prepare_webshop.py                  # download the small set + check
    python scripts/prepare_webshop.py --full /data/webshop
    python scripts/prepare_webshop.py --check /data/webshop
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_rl.envs.webshop.catalog import CATALOGS, HUMAN_GOALS_FILE, draw_prices, load_original  # noqa: E402
from agent_rl.envs.webshop.goals import NUM_TEST_GOALS, make_goals, split_range  # noqa: E402

# Google Drive ids, as in WebShop's setup.sh.
FILES = {
    "items_shuffle_1000.json": "1EgHdxQ_YxqIQlvvq5iKlCrkEKR6-j0Ib",
    "items_ins_v2_1000.json": "1IduG0xl544V_A_jv3tHXC0kyFi7PnyBu",
    "items_human_ins.json": "14Kb5SPBk_jfdLZ_CDBNitW98QLDlKR5O",
    "items_shuffle.json": "1A2whVgOO0euk5O13n2iYDM0bQRkkRduB",
    "items_ins_v2.json": "1s2j6NgHljiZzQNL3veZaAiyW_qDEgBNi",
}
URL = "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"


def data_dir_from(arg: str | None) -> Path:
    return Path(arg or os.environ.get("WEBSHOP_DATA") or "~/.cache/agent_rl/webshop").expanduser().resolve()


def needed(full: bool) -> list[str]:
    catalogs = ("small", "full") if full else ("small",)
    return [name for c in catalogs for name in CATALOGS[c]] + [HUMAN_GOALS_FILE]


def fetch(name: str, dest: Path, force: bool) -> None:
    """Download the Drive file ``name`` into ``dest`` (skipped if already there, unless ``force``)."""
    target = dest / name
    if target.is_file() and not force:
        print(f"keeping {target}")
        return
    url = URL.format(id=FILES[name])
    print(f"downloading {name} from {url}")
    part = target.with_name(f"{name}.part")
    with urllib.request.urlopen(url) as response:
        if "text/html" in response.headers.get("Content-Type", ""):
            raise SystemExit(
                f"Google Drive answered with a web page instead of {name} (quota or a changed link); "
                f"download https://drive.google.com/uc?id={FILES[name]} by hand (or `gdown {FILES[name]}`) "
                f"into {dest}"
            )
        try:
            with part.open("wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    part.rename(target)


def check(data_dir: Path, catalog: str) -> bool:
    """Print what the loader sees of ``catalog`` in ``data_dir``; False if a file is missing."""
    try:
        products = load_original(data_dir, catalog, human_goals=True)
    except FileNotFoundError as err:
        print(f"{catalog}: {err}")
        return False
    with_instruction = sum(bool(p.instruction and p.instruction_attributes) for p in products)
    print(f"{catalog}: {len(products)} products ({with_instruction} with a synthetic instruction)")
    for human in (False, True):
        rng = random.Random(0)  # the env's default seed; the counts do not depend on it
        goals = make_goals(products, draw_prices(products, rng), rng, human=human)
        sizes = {s: len(split_range(s, len(goals))) for s in ("test", "train")}
        kind = "human" if human else "synthetic"
        print(f"  {kind:9s} goals: {len(goals):6d} (test {sizes['test']}, train {sizes['train']})")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", nargs="?", help="folder (default: $WEBSHOP_DATA or ~/.cache/agent_rl/webshop)")
    parser.add_argument("--full", action="store_true", help="also the full catalog (several GB)")
    parser.add_argument("--check", action="store_true", help="only count what is already in the folder")
    parser.add_argument("-f", "--force", action="store_true", help="download files that are already there")
    args = parser.parse_args(argv)

    data_dir = data_dir_from(args.dir)
    if not args.check:
        data_dir.mkdir(parents=True, exist_ok=True)
        for name in needed(args.full):
            fetch(name, data_dir, args.force)
    print(f"test split: goals[0:{NUM_TEST_GOALS}], train: the rest (env.env_kwargs.num_test_goals)")
    ok = check(data_dir, "small")
    if args.full:
        ok &= check(data_dir, "full")
    if ok:
        print(f"\nexport WEBSHOP_DATA={data_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
