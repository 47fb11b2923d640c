"""`agent-rl-eval`: validate a checkpoint on a split, report success per task type; no training.

    agent-rl-eval checkpoint=outputs/<run>/checkpoints/global_step_2
    agent-rl-eval checkpoint=outputs/<run>/checkpoints env.val_split=valid_unseen   # its latest step
    agent-rl-eval checkpoint=... env=webshop env.max_val_tasks=100 logger=console

The config is agent-rl's own (`conf/config.yaml`, whose top-level ``checkpoint`` only this command
reads): pass the env/algo/model/cluster choices the checkpoint was trained with. agent-rl's checks,
preparation and verl run are reused; verl's trainer loads the checkpoint before anything runs (its
``_setup``, then ``on_init_end`` syncs the loaded weights into vLLM), validates once
(``val_before_train``) and stops there (``val_only``): no training step, no new checkpoint. Every task
of ``env.val_split`` is evaluated unless ``env.max_val_tasks`` says otherwise. The table (task type,
tasks, success %) is printed and written to ``eval.json`` in the run's output folder, beside
``metrics.jsonl``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from agent_rl.cli.train import CONF_DIR, ConfigError, check, prepare, run, validate

STEP_DIR = re.compile(r"global_step_(\d+)")
TRACKER = "latest_checkpointed_iteration.txt"
EXPECTED = (
    "a checkpoint folder written by agent-rl: <run>/checkpoints/global_step_N (holding actor/), or "
    f"<run>/checkpoints (holding {TRACKER}; the step it names is evaluated), or the run folder <run>"
)


def resolve_checkpoint(path: str | Path | None) -> Path:
    """The ``global_step_N`` folder to evaluate, from that folder itself or from a checkpoints root."""
    if path is None or str(path).strip() == "":
        raise ConfigError(f"checkpoint=... is required: {EXPECTED}.")
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"checkpoint={path} is not a folder; expected {EXPECTED}.")
    if not STEP_DIR.fullmatch(folder.name):
        root = folder if (folder / TRACKER).is_file() else folder / "checkpoints"
        if not (root / TRACKER).is_file():
            raise ConfigError(
                f"checkpoint={path} is neither a global_step_N folder nor holds {TRACKER}; "
                f"expected {EXPECTED}."
            )
        step = (root / TRACKER).read_text().strip()
        folder = root / f"global_step_{step}"
        if not folder.is_dir():
            raise ConfigError(f"{root / TRACKER} names step {step}, but {folder} does not exist.")
    if not (folder / "actor").is_dir():
        raise ConfigError(f"checkpoint={path}: {folder} has no actor/ folder; expected {EXPECTED}.")
    return folder


def overridden(overrides: list[str], key: str) -> bool:
    """Whether the command line set ``key`` (``key=...``, ``+key=...``, ``++key=...``)."""
    return any(o.split("=", 1)[0].lstrip("+~") == key for o in overrides)


def configure(cfg: DictConfig, checkpoint: Path, overrides: list[str]) -> None:
    """verl's validation-only run from ``checkpoint`` on every task of the split (unless the command line
    set ``env.max_val_tasks``), with its metrics in the run's folder."""
    with open_dict(cfg):
        cfg.checkpoint = str(checkpoint)
        if not overridden(overrides, "env.max_val_tasks") and "max_val_tasks" in cfg.env:
            cfg.env.max_val_tasks = None
        if not overridden(overrides, "env.val_protocol"):
            cfg.env.val_protocol = "fixed"  # an evaluation covers its tasks once, not a fresh draw
        if not overridden(overrides, "trainer.experiment_name"):
            cfg.trainer.experiment_name = f"eval-{cfg.trainer.experiment_name}"
        trainer = cfg.trainer
        trainer.resume_mode = "resume_path"
        trainer.resume_from_path = str(checkpoint)
        trainer.del_local_ckpt_after_load = False
        trainer.val_before_train = True
        trainer.val_only = True
        if "file" not in trainer.logger:  # the report is read back from metrics.jsonl
            trainer.logger = [*trainer.logger, "file"]


def check_critic(cfg: DictConfig, checkpoint: Path) -> None:
    """verl builds (and loads) the critic whenever the algorithm uses one."""
    from verl.trainer.ppo.utils import need_critic

    if need_critic(cfg) and not (checkpoint / "critic").is_dir():
        raise ConfigError(
            f"algo={cfg.algo.name} needs a critic, but {checkpoint} has none; pass the algo the checkpoint "
            f"was trained with."
        )


def _metric(metrics: dict[str, Any], source: str, names: tuple[str, ...]) -> tuple[str, float] | None:
    """The first of ``names`` (``won/mean@N``, ...) that verl reported for ``source``."""
    for name in names:
        for section in ("val-aux", "val-core"):
            key = f"{section}/{source}/{name}"
            if key in metrics:
                return name, float(metrics[key])
    return None


def report(
    metrics: dict[str, Any], tasks_per_source: dict[str, int], n: int, checkpoint: Path, step: int, split: str
) -> dict[str, Any]:
    """Success per task type (verl's ``val-aux/<env>/<type>/won/mean@n``) and for the whole environment."""
    names = (f"won/mean@{n}", f"acc/mean@{n}", f"reward/mean@{n}")  # env=arith has no `won`
    rows, used = [], set()
    for source, tasks in sorted(tasks_per_source.items()):
        found = _metric(metrics, source, names)
        used.add(found[0] if found else None)
        rows.append(
            {
                "task_type": source.split("/", 1)[-1],
                "tasks": tasks,
                "success_pct": None if found is None else 100.0 * found[1],
            }
        )
    envs = sorted({s.split("/", 1)[0] for s in tasks_per_source})
    total = sum(tasks_per_source.values())
    overall = _metric(metrics, f"{envs[0]}/all", names) if len(envs) == 1 else None
    if overall is not None:
        success = 100.0 * overall[1]
    elif rows and all(r["success_pct"] is not None for r in rows):
        success = sum(r["success_pct"] * r["tasks"] for r in rows) / total
    else:
        success = None
    return {
        "checkpoint": str(checkpoint),
        "step": step,
        "env": "/".join(envs),
        "split": split,
        "metric": ", ".join(sorted(str(u) for u in used)),
        "rows": rows,
        "all": {"task_type": "all", "tasks": total, "success_pct": success},
        "metrics": metrics,
    }


def format_table(result: dict[str, Any]) -> str:
    rows = [*result["rows"], result["all"]]
    width = max(len("task type"), *(len(r["task_type"]) for r in rows))

    def line(r: dict[str, Any]) -> str:
        pct = "-" if r["success_pct"] is None else f"{r['success_pct']:.1f}"
        return f"{r['task_type']:<{width}}  {r['tasks']:>6}  {pct:>9}"

    header = f"{'task type':<{width}}  {'tasks':>6}  {'success %':>9}"
    return "\n".join([header, *(line(r) for r in result["rows"]), "-" * len(header), line(result["all"])])


def read_validation(metrics_file: Path) -> tuple[int, dict[str, Any]]:
    """The step and metrics of the one validation line verl logged (val_only: nothing else is logged)."""
    lines = [json.loads(x) for x in metrics_file.read_text().splitlines() if x.strip()]
    val = [x for x in lines if any(k.startswith("val-") for k in x["data"])]
    if not val:
        raise RuntimeError(f"no validation metrics in {metrics_file}")
    return int(val[-1]["step"]), val[-1]["data"]


def tasks_per_source(val_files: Any) -> dict[str, int]:
    import pandas as pd

    files = [val_files] if isinstance(val_files, str) else list(val_files)
    frame = pd.concat([pd.read_parquet(f, columns=["data_source"]) for f in files])
    return dict(Counter(frame["data_source"]))


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        checkpoint = resolve_checkpoint(cfg.get("checkpoint"))
        check(cfg, dict(hydra_cfg.runtime.choices))
        check_critic(cfg, checkpoint)
    except ConfigError as err:
        print(f"agent-rl-eval: {err}", file=sys.stderr)
        sys.exit(2)
    configure(cfg, checkpoint, list(hydra_cfg.overrides.task))
    prepare(cfg, out_dir)
    validate(cfg)
    split = str(cfg.env.get("val_split", "val"))
    if cfg.dry_run:
        OmegaConf.save(cfg, out_dir / "resolved_config.yaml")
        print(f"[agent_rl] dry run: would evaluate {checkpoint} on {split}; resolved config in {out_dir}")
        return
    print(f"[agent_rl] eval {cfg.run_name}: {checkpoint} on {cfg.env.name}/{split}; outputs in {out_dir}")
    run(cfg)
    step, metrics = read_validation(out_dir / "metrics.jsonl")
    n = int(cfg.actor_rollout_ref.rollout.val_kwargs.n)
    result = report(metrics, tasks_per_source(cfg.data.val_files), n, checkpoint, step, split)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    print(f"[agent_rl] {checkpoint.name} (step {step}) on {result['env']}/{split}; {result['metric']}:")
    print(format_table(result))
    print(f"[agent_rl] table and all validation metrics: {out_dir / 'eval.json'}")


if __name__ == "__main__":
    main()
