"""Reading run folders: the per-step metrics (every launch of a resumed run) and the sampled trajectories."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_rl.training import trajectories

METRICS = "metrics.jsonl"
_EARLIER = re.compile(r"metrics\.(\d+)\.jsonl")  # an earlier launch of a resumed run (agent_rl.cli.train)


class NotARun(ValueError):
    """A folder that holds no run of agent-rl; the message says so in one sentence."""


@dataclass
class Run:
    path: Path
    label: str
    steps: dict[int, dict[str, Any]]  # step -> that step's metrics (training steps only)
    samples: list[dict[str, Any]] = field(default_factory=list)  # agent_rl.training.trajectories step samples

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """The steps that logged ``key`` and its values."""
        xs = [s for s in sorted(self.steps) if isinstance(self.steps[s].get(key), int | float)]
        return xs, [float(self.steps[s][key]) for s in xs]

    def keys(self, prefix: str) -> list[str]:
        return sorted({k for data in self.steps.values() for k in data if k.startswith(prefix)})


def is_run(folder: Path) -> bool:
    return (folder / METRICS).is_file() or any(
        _EARLIER.fullmatch(p.name) for p in folder.glob("metrics.*.jsonl")
    )


def metrics_files(folder: Path) -> list[Path]:
    """Every launch's metrics file, oldest first: metrics.1.jsonl, metrics.2.jsonl, ..., metrics.jsonl."""
    earlier = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _EARLIER.fullmatch(p.name)))
    latest = [folder / METRICS] if (folder / METRICS).is_file() else []
    return [p for _, p in earlier] + latest


def read_steps(folder: Path) -> dict[int, dict[str, Any]]:
    """Step -> metrics over every launch (a later launch's line for the same step wins); validation-only
    lines (verl's ``val_before_train`` at step 0) are kept under their step too."""
    steps: dict[int, dict[str, Any]] = {}
    for path in metrics_files(folder):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line being written while we read
                continue
            steps.setdefault(int(record["step"]), {}).update(record.get("data", {}))
    return steps


def find_runs(paths: list[str | Path]) -> list[Path]:
    """The run folders named on the command line; a folder holding runs (a sweep's) stands for them."""
    found: list[Path] = []
    for given in paths:
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise NotARun(
                f"{given} is not a folder; give agent-rl-report the folder of a run (outputs/<run>)."
            )
        if is_run(folder):
            found.append(folder)
            continue
        inside = sorted(p for p in folder.iterdir() if p.is_dir() and is_run(p))
        if not inside:
            raise NotARun(
                f"{given} is not a run folder of agent-rl: it holds no {METRICS} (nor do its sub-folders)."
            )
        found.extend(inside)
    return found


def labels(folders: list[Path]) -> list[str]:
    """Each run's name (its folder's), with its parent's where two would read the same."""
    names = [f.name for f in folders]
    return [f"{f.parent.name}/{f.name}" if names.count(f.name) > 1 else f.name for f in folders]


def load_runs(paths: list[str | Path]) -> list[Run]:
    folders = find_runs(paths)
    runs = [
        Run(path=f, label=label, steps=read_steps(f), samples=trajectories.read_steps(f))
        for f, label in zip(folders, labels(folders), strict=True)
    ]
    if not any(run.steps for run in runs):
        raise NotARun(f"{', '.join(str(r.path) for r in runs)}: no step logged yet in {METRICS}.")
    return runs
