#!/usr/bin/env python
"""Fetch ALFWorld's full text game set (needs internet) into ``$ALFWORLD_DATA``.

ALFWorld's own ``alfworld-download`` pulls its data from GitHub releases. For the
text environment only two archives are needed, and this script fetches just
those (same URLs as ALFWorld 0.4.2):

* ``json_2.1.1_json.zip``: ``json_2.1.1/<split>/<task>/<trial>/traj_data.json``;
* ``json_2.1.2_tw-pddl.zip``: the matching ``game.tw-pddl`` files.

``--full`` runs ``alfworld-download`` itself instead (also the PDDL states and the
MaskRCNN detector of the visual THOR setting, ~0.5 GB more).

Destination: ``--data-dir``, else ``$ALFWORLD_DATA``, else ``~/.cache/alfworld``
(ALFWorld's default). Afterwards ``agent_rl.envs.alfworld.ALFWorldEnv`` picks the
games up whenever ``ALFWORLD_DATA`` points there. ``--check`` only counts games.

    python scripts/prepare_alfworld.py                 # download + check
    ALFWORLD_DATA=/data/alfworld python scripts/prepare_alfworld.py
    python scripts/prepare_alfworld.py --check
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

URLS = (
    "https://github.com/alfworld/alfworld/releases/download/0.2.2/json_2.1.1_json.zip",
    "https://github.com/alfworld/alfworld/releases/download/0.4.0/json_2.1.2_tw-pddl.zip",
)
# Solvable text games per split as reported by ALFWorld (task types 1-6).
EXPECTED = {"train": 3553, "valid_seen": 140, "valid_unseen": 134}


def data_dir_from(arg: str | None) -> Path:
    return Path(arg or os.environ.get("ALFWORLD_DATA") or "~/.cache/alfworld").expanduser().resolve()


def fetch(url: str, dest: Path, force: bool) -> None:
    """Download ``url`` and unzip it into ``dest`` (skipping files already there)."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / url.rsplit("/", 1)[-1]
        print(f"downloading {url}")
        with urllib.request.urlopen(url) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if force or not (dest / n).exists()]
            print(f"extracting {len(names)} files into {dest}")
            zf.extractall(dest, members=names)


def check(data_dir: Path) -> bool:
    """Count the games ``ALFWorldEnv`` sees per split; True if they match ALFWorld's numbers."""
    from agent_rl.envs.alfworld import list_games

    root = data_dir / "json_2.1.1"
    ok = True
    for split, expected in EXPECTED.items():
        n = len(list_games(str(root), split)) if (root / split).is_dir() else 0
        ok &= n == expected
        print(f"{split:13s} {n:5d} games (ALFWorld reports {expected})")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="destination (default: $ALFWORLD_DATA or ~/.cache/alfworld)")
    parser.add_argument("--full", action="store_true", help="run ALFWorld's own alfworld-download instead")
    parser.add_argument("--check", action="store_true", help="only count the games already there")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite files already extracted")
    args = parser.parse_args(argv)

    data_dir = data_dir_from(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if not args.check:
        if args.full:
            script = Path(sys.executable).with_name("alfworld-download")  # the venv's console script
            script = str(script) if script.exists() else "alfworld-download"
            cmd = [script, "--data-dir", str(data_dir)] + (["-f"] if args.force else [])
            subprocess.run(cmd, check=True, env={**os.environ, "ALFWORLD_DATA": str(data_dir)})
        else:
            for url in URLS:
                fetch(url, data_dir, args.force)
    ok = check(data_dir)
    print(f"\nexport ALFWORLD_DATA={data_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
