"""A paper's table from our W&B runs: the paper's metrics computed from the runs of its recipe, written as
markdown beside the paper's numbers. ``scripts/make_table.py`` is the command line around this module.

Runs
----
A `Run` is the Hydra-resolved config (nested, as verl's tracker hands it to ``wandb.init``) plus the history
rows. `read_online_runs` gets them through ``wandb.Api`` (project ``entity/project``, runs whose config has
``experiment.paper`` = the paper). `read_offline_run` reads an offline run folder (``offline-run-*``): its
``run-*.wandb`` transaction log, parsed by wandb's own reader, ``wandb-core leet inspect --json`` (the
reader behind ``wandb leet inspect``; wandb 0.31 has no Python reader for these files any more). Nothing
else is read: no metrics.jsonl, no guessed values.

Quantities
----------
- Success of one evaluation = ``val-aux/<env>/all/won/mean@N`` x 100. ``won`` is 1 for an episode that
  solved its task, else 0; verl averages it over the N validation samples of each task (``mean@N``; the
  largest N if several are logged) and agent_rl's trainer adds the environment-wide value (``all``),
  weighted by the number of tasks of each type. It is the share of validation episodes won, in percent
  because every paper reports percent. A plain ``val-aux/<env>/all/won`` key is read the same way.
- WebShop score = ``val-aux/webshop/all/score/mean@N`` x 100 (the 0-1 WebShop reward of the purchase;
  the papers report it on 0-100).
- Of one task type: the same with the task type in place of ``all``. verl logs every validation metric per
  data source, and our rows' data source is ``<env>/<task type>`` (agent_rl/training/data.py), so e.g.
  SPEAR's AIME24 = ``val-aux/math_python/aime2024/won/mean@32`` x 100 (``env.val_split=aime`` validates on
  both years, task types ``aime2024`` and ``aime2025``).
- The training metric ``env/success_rate`` is not used: the papers' numbers are validation numbers.
- An evaluation's step is its row's ``training/global_step``, or W&B's ``_step`` where that is absent.

Metrics, one value per run (= seed), then the mean over seeds
-------------------------------------------------------------
- ``best`` (EPO's Succ.*): the maximum success over all evaluations of the run. EPO App. B.1.2: "average
  of maximum success rates across random seeds".
- ``window`` (EPO's Succ.): the mean success over the evaluations in the convergence window. EPO App.
  B.1.2: "average performance after convergence"; ALFWorld is averaged from step 125 onward (of K = 150
  steps, 3 seeds); ScienceWorld uses hand-picked windows per seed (GRPO 70-120, 90-120, 90-120; GRPO+EPO
  60-80, 80-120, 25-120; PPO 100-120, 105-120, 105-120; PPO+EPO 70-120, 60-120, 60-120), i.e. no rule we
  could apply. Our choice, one rule for every run: the evaluations at steps >= T - T/6, where T is the
  run's ``trainer.total_training_steps`` (the last logged step where that is not set). That is step 125
  for ALFWorld's T = 150, the paper's own window; for ScienceWorld's T = 120 it is 100-120, which lies
  inside 10 of the paper's 12 windows. ``window_fraction`` (default 1/6) changes the share;
  ``window_start`` fixes the first step of the window for every run instead. The paper's curves are
  smoothed by W&B (running average over 10); these numbers use the raw evaluations.
- ``final`` (EMPG, AEM, SPEAR): the success (or WebShop score) of the last evaluation of the run.

Seeds: the runs of one table row are grouped by config ``seed``; several runs of one seed (a run resumed
into a new W&B run) are merged by step, the later run winning on a shared step. The value shown is the mean
over the seeds that have one, ``± population std`` over seeds when there are two or more, ``(n=k)`` when
fewer seeds have the value than ran.

The paper's table: ``recipes/<paper>/table.yaml``
-------------------------------------------------
``paper:``, ``source:``, ``metrics: [...]``, ``rows: {<row>: {env:, algo:, method:, model:, <metric>:
value}}``. A metric is its column name; what it computes is read from the name (`metric_spec`): "score" ->
WebShop score, else success; "*", "star", "best" or "max" -> best; "window" or "conv" -> window; "final" or
"last" -> final; otherwise window for EPO and final for the other papers. "IID" / "OOD" in the name keep
only runs validated on that split (``env.val_split``; ALFWorld valid_seen / valid_unseen, ScienceWorld
L0-test / L1-test); a metric that names no split uses the IID runs of those two envs (the OOD runs of
EPO's recipe are separate runs of the same row, ``env.val_split=...``). A metric may also be a mapping
``{name:, quantity: won|score, agg: best|window|final, split:, task_type:}`` (the keys not given are read
from the name as above); ``task_type`` makes it the metric of that validation task type instead of the
environment-wide one (``all``): ``{name: AIME24, task_type: aime2024}``. Without ``metrics`` the defaults
are EPO: Succ.*, Succ.; others: Succ. (+ Score with WebShop).

Matching runs to rows: by config ``experiment.row`` when the run has one, else by every one of ``env``,
``algo``, ``method``, ``model`` (and ``val_split``) that the row names (model names compared without case
and without an "-instruct" suffix). Runs of another ``experiment.paper`` are left out. Runs that match no
row get a row of their own (no paper numbers); rows without runs, runs without validation metrics and
unreadable run folders are listed under the table, in "Notes".
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PERCENT = 100.0
WINDOW_FRACTION = 1.0 / 6.0
QUANTITIES = ("won", "score")
AGGREGATIONS = ("best", "window", "final")
ENV_WIDE = "all"  # the task type of the environment-wide validation metrics (agent_rl's trainer adds them)
METRIC_KEYS = ("name", "quantity", "agg", "split", "task_type")  # a table.yaml metric given as a mapping
MATCH_FIELDS = {
    "env": "env.name",
    "algo": "algo.name",
    "method": "method.name",
    "model": "model.name",
    "val_split": "env.val_split",
}


def paper_split(env: str | None, which: str) -> str | None:
    """The split an environment's papers call ``which`` ("iid" or "ood"; the class's ``paper_splits``), or
    None where it has no such pair (or is not known here)."""
    from agent_rl.envs.api import env_class

    try:
        return env_class(str(env)).paper_splits.get(which)
    except ValueError:
        return None


def reports_score(env: str | None) -> bool:
    """Whether the environment's papers report a score besides success (its class's ``reports_score``)."""
    from agent_rl.envs.api import env_class

    try:
        return env_class(str(env)).reports_score
    except ValueError:
        return False


ROW_FIELDS = ("env", "algo", "method", "model")
DEFAULT_METRICS = {"epo": ["Succ.*", "Succ."]}
MISSING = "—"


@dataclass(frozen=True)
class Run:
    """One W&B run: its config (nested dicts) and its history rows in logging order."""

    config: dict[str, Any]
    history: list[dict[str, Any]]
    name: str = ""
    source: str = ""  # the run folder or the W&B path
    start_time: str = ""
    run_id: str = ""
    group: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the column name, as in table.yaml
    quantity: str  # "won" (success) or "score"
    agg: str  # "best", "window" or "final"
    split: str | None = None  # "iid", "ood", a split name, or None for any
    task_type: str = ENV_WIDE  # the validation task type it is computed from; "all": the whole env


@dataclass
class RowResult:
    key: str
    fields: dict[str, Any]
    paper: dict[str, Any]
    seeds: list[Any] = field(default_factory=list)
    ours: dict[str, list[float]] = field(default_factory=dict)  # metric name -> one value per seed
    in_table: bool = True
    validation: list[str] = field(default_factory=list)  # the validation protocols of the row's runs


# ----------------------------------------------------------------------------------------------------------
# Reading runs


def _core_path() -> str:
    from wandb.util import get_core_path

    return get_core_path()


def _json_value(value: Any) -> Any:
    """wandb-core's JSON writes non-finite floats as strings."""
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    return value


def read_offline_run(path: str | os.PathLike) -> Run:
    """Read one offline run folder (``offline-run-*``, or its ``run-*.wandb`` file) with wandb's reader.

    Config = the run record's config plus later ``config`` records (top-level keys replaced, as W&B does);
    history = the ``history`` records' items. An incomplete file (a run still writing, or killed) gives the
    records written so far. Raises ``RuntimeError`` if wandb cannot read the file."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("run-*.wandb"))
        if len(files) != 1:
            raise RuntimeError(f"{path}: expected one run-*.wandb file, found {len(files)}")
        run_file = files[0]
    else:
        run_file = path
    args = [_core_path(), "leet", "inspect", "--json", "--no-observability", "--run-file", str(run_file)]
    proc = subprocess.run([*args, str(run_file.parent.parent)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wandb could not read {run_file}: {proc.stderr.strip() or proc.stdout[-500:]}")
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    name = start_time = run_id = group = ""
    tags: tuple[str, ...] = ()
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        kind = record.get("type")
        if kind == "run":
            run = record["run"]
            config.update((run.get("config") or {}).get("update") or {})
            name = run.get("display_name") or run.get("run_id") or ""
            start_time = run.get("start_time") or ""
            run_id, group, tags = (
                run.get("run_id") or "",
                run.get("run_group") or "",
                tuple(run.get("tags") or ()),
            )
        elif kind == "config":
            config.update(record["config"].get("update") or {})
            for key in record["config"].get("remove") or []:
                config.pop(key if isinstance(key, str) else ".".join(key), None)
        elif kind == "history":
            item = record["history"].get("item") or {}
            history.append({k: _json_value(v) for k, v in item.items()})
    config.pop("_wandb", None)
    return Run(
        config=config,
        history=history,
        name=name or path.name,
        source=str(path),
        start_time=start_time,
        run_id=run_id,
        group=group,
        tags=tags,
    )


def find_offline_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every ``offline-run-*`` folder under ``paths`` (a path may be one itself), without following links
    (``wandb/latest-run`` points at one of them), each once, sorted."""
    found: set[Path] = set()
    for top in map(Path, paths):
        if top.name.startswith("offline-run-") and top.is_dir():
            found.add(top.resolve())
            continue
        for root, dirs, _ in os.walk(top):
            for d in list(dirs):
                if d.startswith("offline-run-"):
                    found.add((Path(root) / d).resolve())
                    dirs.remove(d)
    return sorted(found)


def read_offline_runs(paths: Iterable[str | os.PathLike]) -> tuple[list[Run], list[str]]:
    """`read_offline_run` for every folder `find_offline_runs` finds: (runs, one note per unreadable one)."""
    runs, problems = [], []
    for folder in find_offline_runs(paths):
        try:
            runs.append(read_offline_run(folder))
        except (RuntimeError, OSError, ValueError) as e:
            problems.append(f"unreadable run folder `{folder}`: {e}")
    return runs, problems


def read_online_runs(project: str, paper: str | None = None, api: Any = None) -> list[Run]:
    """The runs of W&B project ``entity/project`` (all of them, or those whose config ``experiment.paper``
    is ``paper``; filtered here, not by the server), with their full history."""
    if api is None:
        import wandb

        api = wandb.Api()
    runs = []
    for r in api.runs(project):
        config = dict(r.config)
        if paper is not None and config_get(config, "experiment.paper") != paper:
            continue
        history = [dict(row) for row in r.scan_history()]
        runs.append(
            Run(
                config=config,
                history=history,
                name=r.name,
                source=f"{project}/{r.id}",
                start_time=str(getattr(r, "created_at", "") or ""),
            )
        )
    return runs


def load_table_spec(table_yaml: str | os.PathLike | Mapping | None) -> dict[str, Any]:
    """``recipes/<paper>/table.yaml`` as a dict (a mapping is taken as is; None or a missing file: {})."""
    if table_yaml is None:
        return {}
    if isinstance(table_yaml, Mapping):
        return dict(table_yaml)
    path = Path(table_yaml)
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


# ----------------------------------------------------------------------------------------------------------
# One run's numbers


def config_get(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``config["a"]["b"]`` for ``"a.b"`` (or a flat ``config["a.b"]``)."""
    if dotted in config:
        return config[dotted]
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _step(row: Mapping[str, Any]) -> float | None:
    for key in ("training/global_step", "_step"):
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def validation_key(
    keys: Iterable[str], env: str | None, quantity: str = "won", task_type: str = ENV_WIDE
) -> str | None:
    """The history key of the validation ``quantity`` of ``task_type`` (``all``: the whole env):
    ``val-aux/<env>/<task_type>/<quantity>/mean@N``, the largest N, or the plain
    ``val-aux/<env>/<task_type>/<quantity>``. ``env=None``: any env, if only one has it."""
    env_re = re.escape(env) if env else r"[^/]+"
    name = f"{re.escape(task_type)}/{re.escape(quantity)}"
    pattern = re.compile(rf"^val-(?:aux|core)/({env_re})/{name}(?:/mean@(\d+))?$")
    matches = [(m.group(1), int(m.group(2) or 0), k) for k in set(keys) if (m := pattern.match(k))]
    if not matches or len({m[0] for m in matches}) > 1:
        return None
    return max(matches)[2]


def evaluations(run: Run, quantity: str = "won", task_type: str = ENV_WIDE) -> dict[float, float]:
    """{step: value in percent} of the run's validation ``quantity`` of ``task_type`` (finite values only)."""
    keys = {k for row in run.history for k in row}
    key = validation_key(keys, config_get(run.config, "env.name"), quantity, task_type)
    if key is None:
        return {}
    out = {}
    for row in run.history:
        value, step = row.get(key), _step(row)
        if isinstance(value, int | float) and math.isfinite(value) and step is not None:
            out[step] = float(value) * PERCENT
    return out


def last_step(run: Run) -> float | None:
    """``trainer.total_training_steps`` of the run, else the largest step it logged."""
    total = config_get(run.config, "trainer.total_training_steps")
    if isinstance(total, int | float) and total > 0:
        return float(total)
    steps = [s for row in run.history if (s := _step(row)) is not None]
    return max(steps) if steps else None


def window_start_step(total_steps: float, window_fraction: float = WINDOW_FRACTION) -> float:
    """First step of the convergence window: ``T - T * fraction`` (125 for T = 150 and 1/6)."""
    return total_steps - total_steps * window_fraction


def aggregate(evals: Mapping[float, float], agg: str, window_start: float | None = None) -> float | None:
    """One run's metric from its {step: value} evaluations; None when there is nothing to aggregate."""
    if not evals:
        return None
    if agg == "best":
        return max(evals.values())
    if agg == "final":
        return evals[max(evals)]
    if agg == "window":
        if window_start is None:
            raise ValueError("agg='window' needs window_start")
        inside = [v for s, v in evals.items() if s >= window_start - 1e-9]
        return statistics.fmean(inside) if inside else None
    raise ValueError(f"unknown aggregation {agg!r}; expected one of {AGGREGATIONS}")


def metric_spec(metric: str | Mapping[str, Any], paper: str | None = None) -> MetricSpec:
    """What a table.yaml metric computes (module docstring): from its name, or from a mapping."""
    if isinstance(metric, Mapping):
        if "name" not in metric or set(metric) - set(METRIC_KEYS):
            raise ValueError(f"metric {dict(metric)!r}: a mapping needs `name` and may set {METRIC_KEYS[1:]}")
        name = str(metric["name"])
        parsed = metric_spec(name, paper)
        spec = MetricSpec(
            name=name,
            quantity=metric.get("quantity", parsed.quantity),
            agg=metric.get("agg", parsed.agg),
            split=metric.get("split", parsed.split),
            task_type=str(metric.get("task_type", ENV_WIDE)),
        )
    else:
        name = str(metric)
        n = re.sub(r"\s+", "", name.lower())
        quantity = "score" if "score" in n else "won"
        if any(t in n for t in ("*", "star", "best", "max")):
            agg = "best"
        elif any(t in n for t in ("window", "conv")):
            agg = "window"
        elif any(t in n for t in ("final", "last")):
            agg = "final"
        else:
            agg = "window" if (paper or "").lower() == "epo" and quantity == "won" else "final"
        split = "ood" if "ood" in n else "iid" if "iid" in n else None
        spec = MetricSpec(name=name, quantity=quantity, agg=agg, split=split)
    if spec.quantity not in QUANTITIES or spec.agg not in AGGREGATIONS:
        raise ValueError(f"metric {name!r}: quantity must be one of {QUANTITIES}, agg one of {AGGREGATIONS}")
    if not spec.task_type or "/" in spec.task_type:
        raise ValueError(f"metric {name!r}: task_type {spec.task_type!r} is not a task type name")
    return spec


def validation_protocol(run: Run) -> str:
    """How the run validated (``env.val_protocol``): the same tasks every evaluation, or EPO's fresh draw."""
    if config_get(run.config, "env.val_protocol", "fixed") == "epo":
        return f"epo ({config_get(run.config, 'env.val_tasks_per_eval', 16)} fresh tasks per eval)"
    tasks = config_get(run.config, "env.max_val_tasks")
    return "fixed" + (f" ({tasks} tasks)" if tasks is not None else "")


def _split_ok(run: Run, split: str | None) -> bool:
    """Whether ``run`` validated on ``split`` ("iid", "ood" or a split name); no split named: the IID split
    where the env has an IID/OOD pair, else any."""
    env = config_get(run.config, "env.name")
    val_split = config_get(run.config, "env.val_split")
    if split is None:
        iid = paper_split(env, "iid")
        return iid is None or val_split is None or val_split == iid
    return val_split == (paper_split(env, split) if split in ("iid", "ood") else None) or val_split == split


# ----------------------------------------------------------------------------------------------------------
# Runs -> rows -> markdown


def _norm(field_name: str, value: Any) -> str:
    text = str(value).strip().lower()
    return text.removesuffix("-instruct") if field_name == "model" else text


def _run_fields(run: Run) -> dict[str, Any]:
    return {f: config_get(run.config, path) for f, path in MATCH_FIELDS.items()}


def _matches(run: Run, row: Mapping[str, Any]) -> bool:
    named = [f for f in MATCH_FIELDS if row.get(f) is not None]
    values = _run_fields(run)
    return bool(named) and all(_norm(f, row[f]) == _norm(f, values[f]) for f in named)


def _metrics_of(spec: Mapping[str, Any], paper: str | None) -> list[MetricSpec]:
    metrics = spec.get("metrics")
    if not metrics:
        metrics = DEFAULT_METRICS.get((paper or "").lower())
    if not metrics:
        rows = (spec.get("rows") or {}).values()
        metrics = ["Succ."] + (["Score"] if any(reports_score((r or {}).get("env")) for r in rows) else [])
    return [metric_spec(m, paper) for m in metrics]


def compute_rows(
    runs: Iterable[Run],
    table: Mapping[str, Any],
    *,
    window_start: float | None = None,
    window_fraction: float = WINDOW_FRACTION,
) -> tuple[list[MetricSpec], list[RowResult], list[str]]:
    """The numbers behind `build_table`: (metric specs, one result per row, notes on what is missing)."""
    paper = table.get("paper")
    specs = _metrics_of(table, paper)
    table_rows: dict[str, dict[str, Any]] = {
        str(k): dict(v or {}) for k, v in (table.get("rows") or {}).items()
    }
    notes: list[str] = []

    # 1. runs -> rows
    members: dict[str, list[Run]] = {key: [] for key in table_rows}
    extra_fields: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: (r.start_time, r.source)):
        run_paper = config_get(run.config, "experiment.paper")
        if paper and run_paper and str(run_paper) != str(paper):
            continue
        row_name = config_get(run.config, "experiment.row")
        if row_name is not None and paper:
            row_name = str(row_name).removeprefix(f"{paper}/")
        if row_name is not None and str(row_name) in table_rows:
            keys = [str(row_name)]
        elif row_name is None:
            keys = [k for k, row in table_rows.items() if _matches(run, row)]
        else:
            keys = []
        if not keys:
            fields = {f: v for f, v in _run_fields(run).items() if f != "val_split"}
            key = str(row_name) if row_name is not None else "-".join(str(v) for v in fields.values())
            extra_fields.setdefault(key, fields)
            members.setdefault(key, [])
            keys = [key]
        for key in keys:
            members[key].append(run)

    # 2. rows -> one value per seed and metric
    wanted = list(dict.fromkeys((s.task_type, s.quantity) for s in specs))  # the metrics the specs read
    without_val: set[str] = set()
    used: set[str] = set()
    results = []
    order = [*table_rows, *sorted(k for k in members if k not in table_rows)]
    for key, row_runs in ((k, members[k]) for k in order):
        in_table = key in table_rows
        row = table_rows.get(key, {})
        fields = {f: row.get(f) for f in ROW_FIELDS} if in_table else extra_fields[key]
        result = RowResult(
            key=key,
            fields=fields,
            paper={s.name: row.get(s.name) for s in specs},
            in_table=in_table,
        )
        results.append(result)
        if not row_runs:
            notes.append(f"row `{key}`: no runs")
            continue
        result.validation = list(dict.fromkeys(validation_protocol(r) for r in row_runs))
        by_seed: dict[Any, list[Run]] = {}
        for run in row_runs:
            by_seed.setdefault(config_get(run.config, "seed", run.name), []).append(run)
            if run.source not in without_val and not any(evaluations(run, q, t) for t, q in wanted):
                without_val.add(run.source)
                env = config_get(run.config, "env.name") or "<env>"
                names = " or ".join(f"`val-aux/{env}/{t}/{q}`" for t, q in wanted)
                notes.append(f"run `{run.name}` ({run.source}, row `{key}`): no validation metric {names}")
        for seed, seed_runs in sorted(by_seed.items(), key=lambda kv: _seed_order(kv[0])):
            if len(seed_runs) > 1:
                notes.append(
                    f"row `{key}`, seed {seed}: {len(seed_runs)} runs merged by step (the later run wins "
                    "on a shared step)"
                )
            has_any = False
            for spec in specs:
                chosen = [r for r in seed_runs if _split_ok(r, spec.split)]
                used.update(r.source for r in chosen)
                evals: dict[float, float] = {}
                for r in chosen:  # later runs (resumed ones) win on a shared step
                    evals.update(evaluations(r, spec.quantity, spec.task_type))
                has_any |= bool(evals)
                start = window_start
                if spec.agg == "window" and start is None:
                    total = last_step(chosen[-1]) if chosen else None
                    if total is None:
                        continue
                    start = window_start_step(total, window_fraction)
                value = aggregate(evals, spec.agg, start)
                if value is not None:
                    result.ours.setdefault(spec.name, []).append(value)
            if has_any:
                result.seeds.append(seed)
        for run in row_runs:
            if run.source not in used:
                split = config_get(run.config, "env.val_split")
                notes.append(
                    f"run `{run.name}` ({run.source}): no metric of the table uses val_split {split}"
                )
    return specs, results, notes


def _seed_order(seed: Any) -> tuple[int, Any]:
    return (0, seed) if isinstance(seed, int | float) and not isinstance(seed, bool) else (1, str(seed))


def _qualifiers(spec: MetricSpec) -> str:
    """What restricts a metric's runs and tasks: " (iid, task type aime2024)", or "" for nothing."""
    parts = ([spec.split] if spec.split else []) + (
        [f"task type {spec.task_type}"] if spec.task_type != ENV_WIDE else []
    )
    return f" ({', '.join(parts)})" if parts else ""


def _fmt(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:.1f}"
    return str(value)


def _fmt_ours(values: list[float], seeds: int) -> str:
    if not values:
        return MISSING
    text = f"{statistics.fmean(values):.1f}"
    if len(values) > 1:
        text += f" ± {statistics.pstdev(values):.1f}"
    if len(values) < seeds:
        text += f" (n={len(values)})"
    return text


def render_markdown(
    table: Mapping[str, Any],
    specs: list[MetricSpec],
    results: list[RowResult],
    notes: list[str],
    *,
    window_start: float | None = None,
    window_fraction: float = WINDOW_FRACTION,
) -> str:
    """The markdown page: a title, how the numbers were computed, the table, then the notes."""
    paper = table.get("paper") or "runs"
    lines = [f"## {paper}: paper vs. ours", ""]
    if table.get("source"):
        lines += [f"Paper numbers: {table['source']}.", ""]
    what = {
        "best": "max over the run's validation evaluations",
        "window": "mean over the evaluations in the convergence window, steps >= "
        + (
            f"{window_start:g}"
            if window_start is not None
            else f"T - T*{window_fraction:.3g} (T = training steps)"
        ),
        "final": "last validation evaluation",
    }
    keys = "Success = `val-aux/<env>/all/won` × 100, score = `val-aux/<env>/all/score` × 100"
    if any(s.task_type != ENV_WIDE for s in specs):
        keys += "; of one task type, the same with `<task type>` in place of `all`"
    lines.append(
        "Ours: mean over seeds (± population std over seeds) of each run's "
        + "; ".join(f"{s.name} = {what[s.agg]}" + _qualifiers(s) for s in specs)
        + f". {keys}. "
        "Validation: `fixed` = the same tasks at every evaluation; `epo` = tasks drawn afresh for each "
        "evaluation (EPO's protocol, `env.val_protocol=epo`)."
    )
    lines.append("")
    header = ["Row", "Env", "Algo", "Method", "Model", "Seeds", "Validation"]
    for s in specs:
        header += [f"{s.name} paper", f"{s.name} ours"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for r in results:
        cells = [r.key + ("" if r.in_table else " (not in table)")]
        cells += [MISSING if r.fields.get(f) is None else str(r.fields[f]) for f in ROW_FIELDS]
        cells.append(", ".join(str(s) for s in r.seeds) if r.seeds else MISSING)
        cells.append(", ".join(r.validation) if r.validation else MISSING)
        for s in specs:
            cells += [_fmt(r.paper.get(s.name)), _fmt_ours(r.ours.get(s.name, []), len(r.seeds))]
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def build_table(
    runs: Iterable[Run],
    table_yaml: str | os.PathLike | Mapping | None,
    *,
    window_start: float | None = None,
    window_fraction: float = WINDOW_FRACTION,
    notes: Iterable[str] = (),
) -> str:
    """Markdown: the rows of ``table_yaml`` (``recipes/<paper>/table.yaml``, or the same as a dict) with
    the paper's numbers beside ours, computed from ``runs``. ``notes`` (e.g. unreadable run folders) are
    listed under the table with the missing rows and runs."""
    table = load_table_spec(table_yaml)
    specs, results, missing = compute_rows(
        runs, table, window_start=window_start, window_fraction=window_fraction
    )
    return render_markdown(
        table,
        specs,
        results,
        [*missing, *notes],
        window_start=window_start,
        window_fraction=window_fraction,
    )
