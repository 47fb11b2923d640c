"""Where an `agent-rl` process spends its start-up: the Ray actors of each job, from Ray's session logs.

    python scripts/ray_timeline.py .ray_tmp/e2e-main/session_latest   # every job of the e2e tests' cluster
    python scripts/ray_timeline.py .ray_tmp/session_latest --job 3    # one job

Ray writes, per worker process, ``worker-<id>-<job>-<pid>.out`` (whose first lines name the actor or task)
and ``python-core-worker-<id>_<pid>.log`` (timestamped from the process's start to its end); each driver
(one per `agent-rl` process, or per job of a multirun) has ``python-core-driver-<job>_<pid>.log``. This
prints, for each job, when each actor's process started and ended, relative to the driver's connection.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def _times(log: Path) -> tuple[datetime, datetime] | None:
    stamps = [m.group(1) for line in log.open(errors="replace") if (m := STAMP.match(line))]
    if not stamps:
        return None
    parse = lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return parse(stamps[0]), parse(stamps[-1])


def _files(logs: Path) -> list[Path]:
    return [*logs.glob("*"), *(logs / "old").glob("*")]  # Ray moves the logs of ended workers to old/


def drivers(logs: Path) -> dict[str, tuple[datetime, datetime]]:
    """``{job: (connected, ended)}`` of each driver, in the machine's local time."""
    spans = {}
    for log in (f for f in _files(logs) if f.name.startswith("python-core-driver-")):
        job = log.name.split("-")[3].split("_")[0][:8]
        if (span := _times(log)) is not None:
            spans[job] = span
    return spans


def timeline(logs: Path) -> dict[str, list[tuple[str, float, float]]]:
    """``{job: [(actor or task name, start s, end s), ...]}``, seconds after the job's driver connected."""
    files = _files(logs)
    drivers_ = drivers(logs)
    jobs: dict[str, list[tuple[str, float, float]]] = {}
    core_logs = {f.stem.rsplit("_", 1)[-1]: f for f in files if f.name.startswith("python-core-worker-")}
    for out in (f for f in files if f.name.startswith("worker-") and f.suffix == ".out"):
        _, _, job, pid = out.stem.rsplit("-", 3)
        name = next(
            (
                m.group(1)
                for line in out.open(errors="replace")
                if (m := re.match(r":(?:actor|task)_name:(\S+)", line))
            ),
            None,
        )
        core = core_logs.get(pid)
        if name is None or core is None or job not in drivers_ or (span := _times(core)) is None:
            continue
        origin = drivers_[job][0]
        jobs.setdefault(job, []).append(
            (name, (span[0] - origin).total_seconds(), (span[1] - origin).total_seconds())
        )
    for job, (start, end) in drivers_.items():
        jobs.setdefault(job, []).append(("(driver)", 0.0, (end - start).total_seconds()))
    return {job: sorted(rows, key=lambda r: r[1]) for job, rows in sorted(jobs.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("session", type=Path, help="a Ray session folder (its logs/ inside)")
    parser.add_argument("--job", help="only this job (its number, e.g. 3)")
    args = parser.parse_args(argv)
    logs = args.session / "logs" if (args.session / "logs").is_dir() else args.session
    for job, rows in timeline(logs).items():
        number = int.from_bytes(bytes.fromhex(job), "little")  # Ray's job id 01000000 is job 1
        if args.job and number != int(args.job):
            continue
        print(f"job {number}")
        for name, start, end in rows:
            print(f"  {start:7.1f} s -> {end:7.1f} s  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
