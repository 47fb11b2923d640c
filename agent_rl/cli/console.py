"""What a run shows on the console: one line per training step and a short summary; the rest in train.log.

By default (`session(..., verbose=False)`) the driver's file descriptors 1 and 2 point at
``<run>/train.log`` for the whole run, so everything printed there lands in the log: verl's config dump,
Ray's messages, the output of every Ray worker (vLLM, FSDP, the environments), which Ray forwards to this
driver (``ray.init(log_to_driver=True)``, its default, also when joining a running cluster with
``ray_kwargs.ray_init.address``), and C-level prints, since the redirection is made with ``dup2`` below
Python. The console keeps:

- agent_rl's own messages (`say`, `error`): where the outputs go, one-sentence errors;
- one line per training step (`step_line`), read from ``metrics.jsonl`` as verl's file logger writes it
  (`StepWatcher`): step/total, train success, validation success when validated, mean return, mean token
  entropy, episode length, step time with its generation and update parts, and the time left (ETA);
- Python tracebacks written to train.log by any process (a worker's error that verl survives, too), in
  full (`TracebackFilter`);
- the error that ends a run, with its traceback (Hydra prints it once the console is back), and a
  `summary` at the end: where the outputs went, the best validation success.

On a terminal a rich progress bar (spinner while Ray and the workers start, then steps done and time
elapsed) sits below the step lines; piped output (CI, tests) gets the plain lines only. ``verbose=true``
shows everything on the console as before and still writes train.log (two ``tee`` processes, one for
stdout and one for stderr). rich is the progress library (already a dependency of Ray's and vLLM's
command-line tools); nothing here draws escape codes by hand.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

LOG_NAME = "train.log"

_active: RunConsole | None = None


# ---- what a step line says (pure functions of one metrics.jsonl record) ---------------------------------
def train_success(data: dict[str, Any]) -> float | None:
    """The step's training success rate (multi-turn envs), else verl's mean score (single-turn)."""
    for key in ("env/success_rate", "critic/score/mean"):
        if key in data:
            return float(data[key])
    return None


_VAL_ALL = re.compile(r"^val-aux/[^/]+/all/won/mean@\d+$")
_VAL_CORE = re.compile(r"^val-core/.+/(?:acc|reward)/mean@\d+$")  # data sources may hold a "/"


def validation_success(data: dict[str, Any]) -> float | None:
    """The environment-wide validation success of a record (``val-aux/<env>/all/won/mean@N``), or for
    rows without episodes (env=arith) the mean of verl's per-source ``val-core`` accuracy; None when the
    step did not validate."""
    for key, value in data.items():
        if _VAL_ALL.match(key):
            return float(value)
    core = [float(v) for k, v in data.items() if _VAL_CORE.match(k)]
    return sum(core) / len(core) if core else None


def _num(data: dict[str, Any], key: str, fmt: str) -> str:
    value = data.get(key)
    return "-" if value is None else format(float(value), fmt)


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def step_line(step: int, total: int | None, data: dict[str, Any], eta_s: float | None = None) -> str:
    """One training step, e.g.
    ``step 2/2 | success 0.00 | val 0.17 | return -0.01 | entropy 0.276 | length 4.0 | 18.1s (gen 8.0s,
    update 6.0s) | ETA 0s``."""
    success = train_success(data)
    val = validation_success(data)
    parts = [
        f"step {step}/{total}" if total else f"step {step}",
        f"success {'-' if success is None else format(success, '.2f')}",
        *([f"val {val:.2f}"] if val is not None else []),
        f"return {_num(data, 'env/return/mean', '.2f')}",
        f"entropy {_num(data, 'actor/entropy', '.3f')}",
        f"length {_num(data, 'env/episode_length/mean', '.1f')}",
        f"{_num(data, 'timing_s/step', '.1f')}s (gen {_num(data, 'timing_s/gen', '.1f')}s, "
        f"update {_num(data, 'timing_s/update_actor', '.1f')}s)",
    ]
    if total:
        parts.append(f"ETA {duration(eta_s)}")
    return " | ".join(parts)


class Progress:
    """The run's steps as they come: ETA from the wall time of the steps this launch has trained, best
    validation success so far."""

    def __init__(self, total: int | None):
        self.total = total
        self.first_step: int | None = None
        self.started: float | None = None  # wall time when this launch's first step began
        self.steps = 0
        self.best: tuple[float, int] | None = None  # (validation success, step)
        self.last_step: int | None = None
        self.startup: dict[str, float] = {}  # the trainer's startup/* metrics (seconds after launch)

    def add(self, step: int, data: dict[str, Any], now: float | None = None) -> str:
        now = time.time() if now is None else now
        if self.started is None:
            first = float(data.get("timing_s/step", 0.0)) + float(data.get("timing_s/testing", 0.0))
            self.started, self.first_step = now - first, step
        self.steps += 1
        self.last_step = step
        self.startup.update({k: float(v) for k, v in data.items() if k.startswith("startup/")})
        val = validation_success(data)
        if val is not None and (self.best is None or val > self.best[0]):
            self.best = (val, step)
        eta = None
        if self.total:
            per_step = (now - self.started) / self.steps
            eta = max(self.total - step, 0) * per_step
        return step_line(step, self.total, data, eta)


# ---- train.log: Python tracebacks are passed on to the console ----------------------------------------
_PREFIX = re.compile(r"^(?:\x1b\[[0-9;]*m)?\([^)]*pid=\d+[^)]*\)(?:\x1b\[0m)? ?")  # Ray's "(Worker pid=1) "


class TracebackFilter:
    """Feed it the log's lines; it returns the lines of every Python traceback among them, from ``Traceback
    (most recent call last):`` through the exception line, each with the Ray prefix naming its process."""

    def __init__(self):
        self.inside = False

    def feed(self, line: str) -> list[str]:
        body = _PREFIX.sub("", line, count=1)
        if body.startswith("Traceback (most recent call last):"):
            self.inside = True
        elif not self.inside:
            return []
        elif body.strip() and not body.startswith((" ", "\t")):
            self.inside = False  # the exception line ends it (a chained traceback starts anew)
        return [line]


class StepWatcher(threading.Thread):
    """Follows ``metrics.jsonl`` (one line per step, verl's file logger) and ``train.log`` (tracebacks)
    while the run trains, and hands what it finds to the console."""

    def __init__(self, console: RunConsole, metrics: Path | None, log: Path | None, interval: float = 0.5):
        super().__init__(name="agent_rl-console", daemon=True)
        self.console, self.metrics, self.log = console, metrics, log
        self.interval = interval
        self.done = threading.Event()
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, str] = {}
        self.tracebacks = TracebackFilter()
        if log is not None and log.exists():
            self._offsets[log] = log.stat().st_size  # only what this launch writes

    def _new_lines(self, path: Path | None) -> list[str]:
        if path is None or not path.exists():
            return []
        offset = self._offsets.get(path, 0)
        if path.stat().st_size < offset:  # a new file of the same name
            offset = 0
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
        self._offsets[path] = offset + len(chunk)
        text = self._partial.pop(path, "") + chunk.decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines[-1]:
            self._partial[path] = lines[-1]  # an unfinished line waits for its end
        return lines[:-1]

    def poll(self) -> None:
        for line in self._new_lines(self.log):
            for shown in self.tracebacks.feed(line):
                self.console.error(shown, echo=False)  # it is in the log already
        for line in self._new_lines(self.metrics):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if any(k.startswith(("actor/", "env/", "timing_s/step")) for k in record.get("data", {})):
                self.console.step(int(record["step"]), record["data"])

    def run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                self.poll()
            except Exception as err:  # noqa: BLE001 - the console must never stop training
                logging.getLogger(__name__).warning("agent_rl console: %r", err)

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join(timeout=5)
        self.poll()  # the last lines


# ---- the console of one run -------------------------------------------------------------------------
class RunConsole:
    """The terminal of one run; see the module docstring. Use `session`."""

    def __init__(self, out_dir: Path, verbose: bool):
        self.out_dir, self.verbose = Path(out_dir), verbose
        self.log = self.out_dir / LOG_NAME
        self.progress: Progress | None = None
        self.watcher: StepWatcher | None = None
        self._saved: dict[int, int] = {}
        self._tees: list[subprocess.Popen] = []
        self._handlers: list[logging.Handler] = []
        self.out: TextIO = sys.stdout
        self.err: TextIO = sys.stderr
        self._bar = None
        self._lock = threading.Lock()
        self.started = time.time()

    # -- file descriptors
    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = {fd: os.dup(fd) for fd in (1, 2)}
        # Hydra's job logging writes <run>/<job name>.log itself; the redirected stdout carries it now
        root = logging.getLogger()
        self._handlers = [
            h
            for h in root.handlers
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == self.log.resolve()
        ]
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.close()
        if self.verbose:
            for fd in (1, 2):
                tee = subprocess.Popen(
                    ["tee", "-a", str(self.log)], stdin=subprocess.PIPE, stdout=self._saved[fd]
                )
                os.dup2(tee.stdin.fileno(), fd)
                tee.stdin.close()
                self._tees.append(tee)
            return
        log_fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for fd in (1, 2):
            os.dup2(log_fd, fd)
        os.close(log_fd)
        self.out = os.fdopen(os.dup(self._saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
        self.err = os.fdopen(os.dup(self._saved[2]), "w", buffering=1, encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if not self._saved:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = {}
        for tee in self._tees:
            try:
                tee.wait(timeout=5)
            except subprocess.TimeoutExpired:  # a process that outlived the run still holds the pipe
                tee.kill()
        self._tees = []
        for stream in (self.out, self.err):
            if stream not in (sys.stdout, sys.stderr):
                stream.close()
        self.out, self.err = sys.stdout, sys.stderr
        root = logging.getLogger()
        for handler in self._handlers:
            root.addHandler(logging.FileHandler(handler.baseFilename, mode="a"))
            root.handlers[-1].setFormatter(handler.formatter)
            root.handlers[-1].setLevel(handler.level)
        self._handlers = []

    @property
    def quiet(self) -> bool:
        return bool(self._saved) and not self.verbose

    # -- writing
    def _write(self, stream: TextIO, line: str, echo: bool = True) -> None:
        with self._lock:
            if self._bar is not None and stream is self.out:
                self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
            else:
                stream.write(line + "\n")
                stream.flush()
            if echo and self.quiet:  # the log holds the console's lines too, in their place
                print(line, file=sys.stdout if stream is self.out else sys.stderr, flush=True)

    def say(self, message: str) -> None:
        self._write(self.out, message)

    def error(self, message: str, echo: bool = True) -> None:
        self._write(self.err, message, echo)

    def step(self, step: int, data: dict[str, Any]) -> None:
        line = self.progress.add(step, data) if self.progress else step_line(step, None, data)
        if self.verbose:
            return  # verl's own console logger prints every metric there
        self.say(line)
        if self._bar is not None:
            self._bar.update(self._task, completed=step, description="training")

    # -- training
    def watch(self, metrics: Path | None, total: int | None, first_step: int = 0) -> None:
        """Start showing steps (and tracebacks) as the run writes them; a bar on a terminal."""
        self.progress = Progress(total)
        if self.quiet and self.out.isatty():
            from rich import progress as bar
            from rich.console import Console

            self._bar = bar.Progress(
                bar.SpinnerColumn(),
                bar.TextColumn("{task.description}"),
                bar.BarColumn(),
                bar.MofNCompleteColumn(),
                bar.TimeElapsedColumn(),
                console=Console(file=self.out),
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(
                f"starting Ray, workers and vLLM (log: {self.log})", total=total, completed=first_step
            )
            self._bar.start()
        self.watcher = StepWatcher(self, metrics, self.log if self.quiet else None)
        self.watcher.start()

    def summary(self) -> list[str]:
        """The end of a run: how long, steps trained, best validation success."""
        p = self.progress
        elapsed = duration(time.time() - self.started)
        if p is None or not p.steps:
            return [f"[agent_rl] finished in {elapsed}; no training step logged"]
        best = (
            f"; best validation success {p.best[0]:.2f} (step {p.best[1]})" if p.best else "; not validated"
        )
        trained = f"steps {p.first_step}-{p.last_step}" if p.steps > 1 else f"step {p.last_step}"
        lines = [f"[agent_rl] trained {trained}; {elapsed} in all (start-up included){best}"]
        if "startup/first_step_end_s" in p.startup:
            first, end = p.startup.get("startup/first_generation_s"), p.startup["startup/first_step_end_s"]
            generated = f"first generation {first:.0f} s after launch, " if first is not None else ""
            lines.append(f"[agent_rl] start-up: {generated}first step ended at {end:.0f} s")
        return lines

    def failed(self, err: BaseException) -> None:
        if self.watcher is not None:  # what the log holds so far; the error itself comes from Hydra
            self.watcher.stop()
            self.watcher = None
        if not self._saved:
            return
        traceback.print_exception(err, file=sys.stderr)  # into train.log (the console gets it from Hydra)
        sys.stderr.flush()


@contextlib.contextmanager
def session(out_dir: Path, verbose: bool = False, redirect: bool = True) -> Iterator[RunConsole]:
    """The run's console from here on: quiet (train.log takes the rest) unless ``verbose`` (all of it on
    the console and in train.log); ``redirect=False`` leaves the output as it is (a dry run)."""
    global _active
    console = RunConsole(out_dir, verbose)
    if redirect:
        console.start()
    _active = console
    try:
        yield console
    except SystemExit:
        raise
    except BaseException as err:
        quiet = console.quiet
        console.failed(err)
        console.stop()
        if quiet:
            console.error(f"[agent_rl] the run failed; everything it printed is in {console.log}; the error:")
        raise
    finally:
        console.stop()
        _active = None


def say(message: str) -> None:
    """An agent_rl message for the user: on the console (and in train.log) during a session."""
    if _active is not None:
        _active.say(message)
    else:
        print(message, flush=True)


def error(message: str) -> None:
    if _active is not None:
        _active.error(message)
    else:
        print(message, file=sys.stderr, flush=True)
