"""The paper recipes: every ``conf/experiment/<paper>/<row>.yaml`` composes, verl accepts what it builds, it
is the row of ``recipes/<paper>/table.yaml`` it names, it sets what the paper (or its code) states, and each
recipe README shows the numbers of its table.yaml.

The expected settings below are written out again from the sources (methods.md §2.2, §3.2-3.3, §4.1-4.2,
§5.2-5.3; the EPO and SPEAR scripts), not read back from the experiment files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from hydra import compose
from omegaconf import DictConfig, OmegaConf

from agent_rl.cli import train
from agent_rl.report.table import METRIC_KEYS, metric_spec

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = train.CONF_DIR / "experiment"
RECIPES = REPO / "recipes"
PAPERS = ("epo", "empg", "aem", "spear")
OURS = ("laptop",)  # recipes of our own, with no paper table (recipes/laptop: the learning check)
ROW_FIELDS = ("env", "algo", "method", "model")
TABLE_START, TABLE_END = "<!-- paper-table:start -->", "<!-- paper-table:end -->"
# The validation task types an environment's rows are scored on one by one where a paper reports them so:
# SPEAR's AIME24 / AIME25, task types aime2024 and aime2025 of env.val_split=aime (agent_rl/envs/math_python).
PER_TASK_TYPE = {"math_python": ("aime2024", "aime2025")}
ROW_PREFIX = {"math_python": "aime"}  # a row key starts with its env, or with what it validates on


def experiment_names() -> list[str]:
    files = (p for paper in PAPERS for p in (EXPERIMENTS / paper).rglob("*.yaml"))
    return sorted(str(p.relative_to(EXPERIMENTS).with_suffix("")) for p in files)


def load_table(paper: str) -> dict:
    return yaml.safe_load((RECIPES / paper / "table.yaml").read_text())


def table_row(name: str) -> dict:
    paper, row = name.split("/")
    return load_table(paper)["rows"][row]


def metric_names(table: dict) -> list[str]:
    """The metric columns of a table.yaml: a metric is its name, or a mapping with one."""
    return [m["name"] if isinstance(m, dict) else m for m in table["metrics"]]


def paper_cluster(name: str) -> tuple[str, int, int]:
    """(cluster, nodes, GPUs per node) the paper trained on: one node of 8 GPUs (EPO App. B.1.4, EMPG, AEM,
    SPEAR's ALFWorld/WebShop scripts), SPEAR's AIME scripts 16 nodes of 8 (run_qwen{2,3}-32b_*.sh:
    "NNODES=16", "GPUS_PER_NODE=8")."""
    return ("multinode", 16, 8) if name.startswith("spear/aime-") else ("8gpu", 1, 8)


@pytest.fixture(scope="module")
def configs(hydra_ctx):
    """Each experiment composed once (the checkpoint folder fixed, as Hydra would at launch)."""
    cache: dict[str, DictConfig] = {}

    def get(name: str) -> DictConfig:
        if name not in cache:
            overrides = [f"experiment={name}", "trainer.default_local_dir=/ckpt"]
            cache[name] = compose("config", overrides=overrides)
        return cache[name]

    return get


# ---------------------------------------------------------------------------------------------------------
# Files and tables


def test_every_table_row_has_an_experiment_file_and_every_file_a_row():
    assert sorted(p.name for p in EXPERIMENTS.iterdir() if p.is_dir()) == sorted(PAPERS + OURS)
    for paper in PAPERS:
        files = {p.stem for p in (EXPERIMENTS / paper).glob("*.yaml")}
        assert files == set(load_table(paper)["rows"]), paper
    counts = {paper: len(load_table(paper)["rows"]) for paper in PAPERS}
    assert counts == {"epo": 8, "empg": 16, "aem": 16, "spear": 12}  # SPEAR: 8 ALFWorld/WebShop + 4 AIME


@pytest.mark.parametrize("paper", PAPERS)
def test_table_yaml_follows_its_schema(paper):
    table = load_table(paper)
    assert set(table) == {"paper", "source", "metrics", "rows"}
    assert table["paper"] == paper
    arxiv = {"epo": "2509.22576", "empg": "2509.09265", "aem": "2605.00425", "spear": "2509.22601"}[paper]
    assert isinstance(table["source"], str) and arxiv in table["source"] and "methods.md" in table["source"]
    # a metric is a name, or a mapping table.py reads (metric_spec refuses a key or value it does not know)
    for m in table["metrics"]:
        assert isinstance(m, str) or (isinstance(m, dict) and "name" in m and set(m) <= set(METRIC_KEYS)), m
    specs = {s.name: s for s in (metric_spec(m, paper) for m in table["metrics"])}
    metrics = metric_names(table)
    assert metrics and all(isinstance(m, str) for m in metrics) and len(specs) == len(metrics)
    for key, row in table["rows"].items():
        assert set(row) <= {*ROW_FIELDS, "dr_bot_filters", *metrics}, key
        assert all(isinstance(row[f], str) for f in ROW_FIELDS), key
        assert row.get("dr_bot_filters", True) is True, key  # only ever set on, on Dr.BoT rows
        assert key.startswith(f"{ROW_PREFIX.get(row['env'], row['env'])}-"), key
        for m in metrics:
            value = row.get(m)
            assert value is None or (isinstance(value, float) and 0.0 <= value <= 100.0), (key, m)
        # which metrics a row has: those of its env's task types where the paper reports them one by one (AIME
        # rows), else the env-wide ones, less the score where the env has none (ALFWorld)
        per_type = [m for m in metrics if specs[m].task_type in PER_TASK_TYPE.get(row["env"], ())]
        env_wide = [m for m in metrics if specs[m].task_type == "all"]
        expected = per_type or [m for m in env_wide if m != "Score" or row["env"] == "webshop"]
        assert [m for m in metrics if m in row] == expected, key


def test_spear_aime_columns_are_the_final_accuracy_of_each_year():
    """SPEAR's README: AIME24 / AIME25 = accuracy on each year, read from the run's validation of that task
    type (val-aux/math_python/aime2024/won/mean@32), the last one, as Succ. is."""
    specs = [metric_spec(m, "spear") for m in load_table("spear")["metrics"]]
    assert [(s.name, s.quantity, s.agg, s.split, s.task_type) for s in specs] == [
        ("Succ.", "won", "final", None, "all"),
        ("AIME24", "won", "final", None, "aime2024"),
        ("AIME25", "won", "final", None, "aime2025"),
    ]


def _pairs(paper: str) -> list[tuple[str, str]]:
    rows = load_table(paper)["rows"]
    return [(k.rsplit("-", 1)[0], k) for k in rows if k.endswith(f"-{paper}")]


# The papers' own improvement columns, transcribed separately from their method rows: a typo in one of
# table.yaml's numbers breaks the difference. One gain per metric the row has, in the table's order. EPO
# Table 1 "Δ" rows (relative, %); EMPG Table 1, SPEAR README "(+x)" (absolute points; its AIME table:
# AIME24, AIME25); AEM: methods.md §4.3 lists before -> after only, so no check.
PAPER_GAINS = {
    "epo": {
        "scienceworld-7b-ppo": [54.8, 152.1, 71.5, 146.0],
        "scienceworld-7b-grpo": [2.1, 2.7, 4.5, 0.5],
        "alfworld-3b-ppo": [-10.9, 1.5, 4.8, 4.8],
        "alfworld-3b-grpo": [4.8, 19.8, 7.6, 18.7],
    },
    "empg": {
        "alfworld-1.5b-grpo": [8.1],
        "webshop-1.5b-grpo": [2.6],
        "alfworld-1.5b-dapo": [7.3],
        "webshop-1.5b-dapo": [0.6],
        "alfworld-7b-grpo": [3.7],
        "webshop-7b-grpo": [3.7],
        "alfworld-7b-dapo": [1.6],
        "webshop-7b-dapo": [3.1],
    },
    "spear": {
        "alfworld-1.5b-grpo": [16.1],
        "webshop-1.5b-grpo": [20.7],
        "alfworld-1.5b-drbot": [8.6],
        "webshop-1.5b-drbot": [13.9],
        "aime-qwen2.5-32b-drbot": [1.6, 6.1],
        "aime-qwen3-32b-drbot": [3.1, 3.2],
    },
}


@pytest.mark.parametrize("paper", sorted(PAPER_GAINS))
def test_table_numbers_agree_with_the_papers_stated_gains(paper):
    table = load_table(paper)
    gains = PAPER_GAINS[paper]
    assert {base for base, _ in _pairs(paper)} == set(gains)
    for base, with_method in _pairs(paper):
        metrics = [m for m in metric_names(table) if m in table["rows"][base]]
        assert metrics == [m for m in metric_names(table) if m in table["rows"][with_method]], base
        for metric, stated in zip(metrics, gains[base], strict=True):
            before, after = table["rows"][base][metric], table["rows"][with_method][metric]
            # the paper computed its gains from unrounded numbers: any value within the rounding (±0.05)
            # of the two shown ones, and the gain itself rounded to 0.1
            corners = [
                100 * (a - b) / b if paper == "epo" else a - b
                for a in (after - 0.05, after + 0.05)
                for b in (before - 0.05, before + 0.05)
            ]
            assert min(corners) - 0.05 <= stated <= max(corners) + 0.05, (base, metric, before, after)


def _readme_table(paper: str) -> tuple[list[str], list[list[str]]]:
    text = (RECIPES / paper / "README.md").read_text()
    assert text.count(TABLE_START) == 1 and text.count(TABLE_END) == 1, paper
    block = text.split(TABLE_START)[1].split(TABLE_END)[0].strip().splitlines()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block]
    header, rule, body = cells[0], cells[1], cells[2:]
    assert all(set(c) == {"-"} for c in rule)
    return header, body


@pytest.mark.parametrize("paper", PAPERS)
def test_readme_table_shows_the_numbers_of_table_yaml(paper):
    table = load_table(paper)
    header, body = _readme_table(paper)
    for metric in metric_names(table):
        assert f"{metric} paper" in header and f"{metric} ours" in header, metric
    rows = {line[0].strip("`"): dict(zip(header, line, strict=True)) for line in body}
    assert list(rows) == list(table["rows"])
    for key, row in table["rows"].items():
        shown = rows[key]
        assert [shown["Env"], shown["Algo"], shown["Model"]] == [row["env"], row["algo"], row["model"]]
        assert shown["Method"].split()[0] == row["method"]
        for metric in metric_names(table):
            expected = "n/a" if metric not in row else "—" if row[metric] is None else f"{row[metric]:.1f}"
            assert shown[f"{metric} paper"] == expected, (key, metric)


@pytest.mark.parametrize("paper", PAPERS)
def test_readme_has_one_command_per_row(paper):
    text = (RECIPES / paper / "README.md").read_text()
    commands = [line for line in text.splitlines() if line.startswith("agent-rl ")]
    named = [re.search(rf"experiment={paper}/(\S+)", c).group(1) for c in commands]
    assert named == list(load_table(paper)["rows"])
    assert all("seed=0,1,2" in c and " -m" in c for c in commands)


# ---------------------------------------------------------------------------------------------------------
# Each experiment file


SCALAR_LINE = re.compile(r"^\s*[\w.]+:\s*[^\s#]")  # `key: value` (not a block opener, not a list item)
SOURCE = re.compile(r'our choice|"|methods\.md|arXiv|Table|\.sh')


@pytest.mark.parametrize("name", experiment_names())
def test_every_value_in_an_experiment_file_names_its_source(name):
    lines = (EXPERIMENTS / f"{name}.yaml").read_text().splitlines()
    assert lines[0] == "# @package _global_"
    overrides = [line for line in lines if line.lstrip().startswith("- override /")]
    assert [o.split("/")[1].split(":")[0] for o in overrides] == ["env", "algo", "method", "model", "cluster"]
    for line in overrides + [line for line in lines if SCALAR_LINE.match(line)]:
        value, _, comment = line.partition(" # ")
        assert comment.strip(), f"{name}: no source for `{value.strip()}`"
        if not value.lstrip().startswith(("paper:", "row:", "tags:")):
            assert SOURCE.search(comment), f"{name}: `{comment}` quotes no source and is not 'our choice'"


@pytest.mark.parametrize("name", experiment_names())
def test_experiment_is_its_table_row(configs, name):
    cfg, row = configs(name), table_row(name)
    paper, key = name.split("/")
    assert (cfg.experiment.paper, cfg.experiment.row) == (paper, key)
    assert list(cfg.experiment.seeds) == [0, 1, 2]
    assert {f: cfg[f].name for f in ROW_FIELDS} == {f: row[f] for f in ROW_FIELDS}
    assert cfg.method.dr_bot_filters is row.get("dr_bot_filters", False)
    assert (cfg.cluster.name, cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node) == paper_cluster(name)
    resolved = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert resolved["run_name"] == f"{paper}-{key}-{cfg.env.val_split}-s0"


@pytest.mark.parametrize("name", experiment_names())
def test_verl_accepts_the_experiment(configs, name):
    """verl's own launch checks (batch sizes against GPUs and mini-batches, dataclass keys), without the
    critic's model download: the critic node is checked as a dataclass without its `model`."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    cfg = configs(name)
    train.check_fits(cfg)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=False)
    omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    assert need_critic(cfg) is (cfg.algo.name == "ppo")
    if need_critic(cfg):
        critic = OmegaConf.to_container(cfg.critic, resolve=True)
        critic.pop("model")
        omega_conf_to_dataclass(OmegaConf.create(critic)).validate(
            cfg.trainer.n_gpus_per_node * cfg.trainer.nnodes, cfg.data.train_batch_size
        )


def test_the_checks_above_can_fail(hydra_ctx):
    """verl refuses an ``actor.ppo_mini_batch_size`` larger than the task batch (counted in tasks), which is
    why the papers' mini-batches are set in step rows (``algo.mini_batch_rows``). verl checks it for fixed
    micro-batches only; the GPU clusters count micro-batches in tokens (use_dynamic_bsz)."""
    from verl.utils.config import validate_config

    overrides = [
        "experiment=epo/alfworld-3b-grpo",
        "actor_rollout_ref.actor.ppo_mini_batch_size=256",
        "actor_rollout_ref.actor.use_dynamic_bsz=false",
    ]
    cfg = compose("config", overrides=[*overrides, "trainer.default_local_dir=/ckpt"])
    with pytest.raises(ValueError, match=r"train_batch_size \(16\) must be >= actor.ppo_mini_batch_size"):
        validate_config(config=cfg, use_reference_policy=True, use_critic=False)


def _flat(cfg: DictConfig) -> dict[str, object]:
    out: dict[str, object] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    out["method.name"] = cfg.method.name  # an interpolation of the chosen methods (method.use)
    return out


@pytest.mark.parametrize("paper", PAPERS)
def test_a_method_row_differs_from_its_baseline_only_by_the_method(configs, paper):
    """Baseline and +method rows share every setting but the method's own keys (what conf/method/<m>.yaml
    sets, method.*, and EPO's entropy_coeff / SPEAR's loss mode, which replace the baseline's)."""
    method_keys = set(_flat(OmegaConf.load(train.CONF_DIR / "method" / f"{paper}.yaml")))
    for base, with_method in _pairs(paper):
        a, b = _flat(configs(f"{paper}/{base}")), _flat(configs(f"{paper}/{with_method}"))
        differing = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
        allowed = {k for k in differing if k.startswith(("method.", "experiment.")) or k in method_keys}
        allowed |= {k for k in differing if k.startswith("actor_rollout_ref.actor.policy_loss.")}
        assert differing - allowed == set(), (base, with_method)
        assert {"method.name", "experiment.row"} <= differing


# ---------------------------------------------------------------------------------------------------------
# What the papers state


def _actor(cfg):
    return cfg.actor_rollout_ref.actor


@pytest.mark.parametrize("name", [n for n in experiment_names() if n.startswith("epo/")])
def test_epo_rows_set_the_papers_settings(configs, name):
    """EPO App. B.1.4 Tables 2 (ScienceWorld) and 3 (ALFWorld), and examples/general_running_server.sh."""
    cfg = configs(name)
    env, algo, method = cfg.env.name, cfg.algo.name, cfg.method.name
    sci = env == "scienceworld"
    actor, optim = _actor(cfg), _actor(cfg).optim
    assert cfg.model.name == ("qwen2.5-7b" if sci else "qwen2.5-3b")
    assert cfg.trainer.total_training_steps == (125 if sci else 150)
    assert cfg.trainer.test_freq == 5 and cfg.trainer.val_before_train is True
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (2048, 512)
    assert cfg.env.max_steps == (30 if sci else 50)
    assert cfg.env.val_split == ("L0-test" if sci else "valid_seen")  # IID; OOD is a command-line override
    assert math.isclose(optim.lr, 3e-6 if (sci and algo == "ppo") else 5e-6)
    assert (optim.lr_scheduler_type, optim.num_cycles) == ("cosine", 0.5)
    assert (optim.lr_warmup_steps_ratio, optim.min_lr_ratio) == (0.1, 0.2)
    assert (actor.use_kl_loss, actor.kl_loss_coef, actor.kl_loss_type) == (True, 0.01, "low_var_kl")
    # group of 8 for GRPO; PPO folds the group into the batch: 16 x 8 = 128 tasks, one rollout each
    n, tasks = cfg.actor_rollout_ref.rollout.n, cfg.data.train_batch_size
    assert (n, tasks) == ((1, 128) if algo == "ppo" else (8, 16))
    micro = {("scienceworld", "ppo"): 8, ("scienceworld", "grpo"): 16}.get((env, algo), 32)
    assert actor.ppo_micro_batch_size_per_gpu == micro
    # mini-batches in step rows (verl-agent runs rollout.n=1): Table 2 "64 (PPO) / 128 (GRPO)", Table 3 256
    rows = {("scienceworld", "ppo"): 64, ("scienceworld", "grpo"): 128}.get((env, algo), 256)
    assert cfg.algo.mini_batch_rows == rows and cfg.algo.get("group_stats") == (
        None if algo == "ppo" else "step_rows"
    )
    if algo == "ppo":
        assert math.isclose(cfg.critic.optim.lr, optim.lr)
        assert cfg.critic.ppo_micro_batch_size_per_gpu == (4 if sci else 16)
        assert cfg.critic.enable is True
    assert cfg.actor_rollout_ref.rollout.val_kwargs.temperature == 0.4
    if method == "epo":
        m = cfg.method
        assert m.alpha == (0.05 if sci else 0.1)  # "λk" row: 0.05 ScienceWorld, 0.1 ALFWorld
        assert (m.entropy_coeff, m.kappa_l, m.kappa_r, m.gamma) == (0.001, 0.0, 2.0, 3.0)
        assert m.variant == "paper"
        assert actor.entropy_coeff == 0 and actor.calculate_entropy is True  # EPO's term replaces verl's
    else:
        assert actor.entropy_coeff == 0.001


@pytest.mark.parametrize("name", [n for n in experiment_names() if n.startswith(("empg/", "aem/"))])
def test_empg_and_aem_rows_set_the_papers_settings(configs, name):
    """EMPG / AEM on verl-agent: 16 tasks x group 8, 150 steps; DAPO's clip-higher; the methods' constants."""
    cfg = configs(name)
    actor = _actor(cfg)
    assert (cfg.data.train_batch_size, cfg.actor_rollout_ref.rollout.n) == (16, 8)
    assert cfg.trainer.total_training_steps == 150
    assert math.isclose(actor.optim.lr, 1e-6)
    assert cfg.env.max_steps == {"alfworld": 50, "webshop": 15}[cfg.env.name]
    assert (cfg.env.success_reward, cfg.env.invalid_action_penalty) == (10.0, 0.1)
    # verl-agent's example scripts (neither paper states it): step rows per update, its GRPO statistics
    assert cfg.algo.mini_batch_rows == {"alfworld": 256, "webshop": 64}[cfg.env.name]
    assert cfg.algo.group_stats == "step_rows"
    if cfg.algo.name == "dapo":
        assert (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.28)
        assert actor.use_kl_loss is False and actor.loss_agg_mode == "token-mean"
        assert cfg.algorithm.filter_groups.enable is True
    else:
        assert actor.use_kl_loss is True and actor.kl_loss_coef == 0.01
        assert actor.clip_ratio_high == 0.2 and cfg.algorithm.filter_groups.enable is False
    if cfg.method.name == "empg":
        assert (cfg.method.k, cfg.method.k_next, cfg.method.zeta) == (1.0, 1.0, 0.05)
    if cfg.method.name == "aem":
        assert (cfg.method.lam, cfg.method.min_range) == (1.0, 0.1)
    assert cfg.method.dr_bot_filters is False


SPEAR_AIME = [n for n in experiment_names() if n.startswith("spear/aime-")]
SPEAR_AGENTS = [n for n in experiment_names() if n.startswith("spear/") and n not in SPEAR_AIME]


@pytest.mark.parametrize("name", SPEAR_AGENTS)
def test_spear_rows_set_the_scripts_settings(configs, name):
    """verl-agent/examples/grpo_trainer/run_<env>[_drbot|_spear].sh of TencentYoutuResearch/SPEAR."""
    cfg = configs(name)
    actor, alf = _actor(cfg), cfg.env.name == "alfworld"
    drbot, spear = name.split("-1.5b-")[1].startswith("drbot"), cfg.method.name == "spear"
    assert cfg.algo.name == "grpo" and cfg.model.name == "qwen2.5-1.5b"
    assert (cfg.data.train_batch_size, cfg.actor_rollout_ref.rollout.n) == (32, 8)
    assert cfg.env.max_val_tasks == 128 and cfg.env.max_steps == (50 if alf else 15)
    assert cfg.data.max_prompt_length == (2048 if alf else 4096) and cfg.data.max_response_length == 512
    assert cfg.trainer.total_training_steps == (200 if alf else 350) and cfg.trainer.test_freq == 5
    assert math.isclose(actor.optim.lr, 1e-6)
    assert actor.ppo_micro_batch_size_per_gpu == (8 if alf else 4)
    assert cfg.algo.mini_batch_rows == (1024 if alf else 256) and cfg.algo.group_stats == "step_rows"
    # no KL in any of the scripts, the GRPO baseline included
    assert actor.use_kl_loss is False and actor.kl_loss_coef == 0 and cfg.algorithm.use_kl_in_reward is False
    assert actor.clip_ratio_c == 10.0 and actor.entropy_coeff == 0.001 and actor.clip_ratio_low == 0.2
    # Dr.BoT's switches, and only on Dr.BoT rows
    assert cfg.method.dr_bot_filters is drbot
    assert actor.clip_ratio_high == (0.28 if drbot else 0.2)
    assert cfg.algorithm.norm_adv_by_std_in_grpo is (not drbot)
    assert actor.loss_agg_mode == ("seq-mean-token-sum-norm" if drbot else "token-mean")
    assert cfg.algorithm.filter_groups.enable is False
    assert actor.policy_loss.loss_mode == ("clip_cov" if spear else "vanilla")
    if spear:
        m = cfg.method
        assert (m.bonus_mode, m.bonus_steps, m.replay_warmup_steps) == ("cosine", 200, 200)
        assert (m.replay_capacity, m.baseline_capacity, m.tolerate_steps, m.replay_loss_coef) == (
            2048,
            10240,
            5,
            1.0,
        )
        policy = actor.policy_loss
        assert (policy.clip_cov_ratio, policy.clip_cov_lb, policy.clip_cov_ub) == (0.0002, 1.0, 5.0)


@pytest.mark.parametrize("name", SPEAR_AIME)
def test_spear_aime_rows_set_the_scripts_settings(configs, name):
    """verl/recipe/spear/run_qwen{2,3}-32b_drbot.sh and run_qwen3-32b_spear.sh of TencentYoutuResearch/SPEAR
    (run_qwen2-32b_spear.sh is a 2-GPU placeholder: a 3B model, batch 4, buffer 32; both SPEAR rows use the
    Qwen3 script's settings), with sandbox_fusion_tool_config.yaml and the fork's actor.yaml defaults."""
    cfg = configs(name)
    actor, rollout, spear = _actor(cfg), cfg.actor_rollout_ref.rollout, cfg.method.name == "spear"
    assert cfg.algo.name == "grpo" and cfg.env.name == "math_python"
    assert cfg.model.name == ("qwen3-32b" if "-qwen3-" in name else "qwen2.5-32b")
    # data: train_files DAPO-Math-17k, test_files AIME 2024 + 2025 (all 60 problems), 8 turns of one call
    assert (cfg.env.train_split, cfg.env.val_split, cfg.env.max_val_tasks) == ("dapo_math", "aime", None)
    assert (cfg.env.max_steps, cfg.env.max_tool_calls_per_turn) == (8, 1)
    kwargs = cfg.env.env_kwargs
    assert (kwargs.style, kwargs.timeout_s, kwargs.memory_mb) == ("spear", 30, 1024)  # retool.py, sandbox
    assert (cfg.data.train_batch_size, rollout.n) == (128, 16)
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (2048, 16384)
    # our choice: one pass over DAPO-Math-17k's 17,917 distinct problems at 128 a step (the script: 1 epoch)
    assert cfg.trainer.total_training_steps == 140
    assert (cfg.trainer.test_freq, cfg.trainer.save_freq, cfg.trainer.val_before_train) == (5, 5, True)
    assert math.isclose(actor.optim.lr, 1e-6)
    # ppo_mini_batch_size=64 tasks, counted as verl counts them; verl's GRPO, one score per trajectory
    assert actor.ppo_mini_batch_size == 64 and cfg.algo.mini_batch_rows is None
    assert cfg.algo.group_stats == "trajectory"
    assert (actor.ulysses_sequence_parallel_size, rollout.tensor_model_parallel_size) == (8, 4)
    assert rollout.gpu_memory_utilization == 0.9
    assert (actor.fsdp_config.param_offload, actor.fsdp_config.optimizer_offload) == (True, True)
    # actor_max_token_len_per_gpu = (2048 + 16384) * 1, log_prob_max_token_len_per_gpu = 4 x that
    assert cfg.cluster.tokens_per_gpu == 18432 and actor.ppo_max_token_len_per_gpu == 18432
    assert cfg.actor_rollout_ref.ref.log_prob_max_token_len_per_gpu == 73728
    val = rollout.val_kwargs
    assert (val.n, val.temperature, val.top_p, val.do_sample) == (32, 1.0, 0.6, True)
    # Dr.BoT in both rows: no KL, clip 0.2 / 0.28, no std normalisation, its loss and filters
    assert actor.use_kl_loss is False and actor.kl_loss_coef == 0 and cfg.algorithm.use_kl_in_reward is False
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.clip_ratio_c) == (0.2, 0.28, 10.0)
    assert cfg.algorithm.norm_adv_by_std_in_grpo is False
    assert actor.loss_agg_mode == "seq-mean-token-sum-norm"
    assert cfg.method.dr_bot_filters is True and cfg.algorithm.filter_groups.enable is False
    assert actor.entropy_coeff == 0  # not set by the scripts: the fork's actor.yaml "entropy_coeff: 0"
    assert actor.policy_loss.loss_mode == ("clip_cov" if spear else "vanilla")
    if spear:
        m = cfg.method
        # use_toolcall_reward="cosine", max_toolcall_steps=200, max_replay_loss_ascending_steps=300
        assert (m.bonus_mode, m.bonus_steps, m.replay_warmup_steps) == ("cosine", 200, 300)
        assert (m.replay_capacity, m.baseline_capacity, m.tolerate_steps, m.replay_loss_coef) == (
            2048,
            10240,
            5,
            1.0,
        )
        assert m.replay_weight_decay is None  # weight_decay_trajectory_replay=-1: the P50 baseline
        assert (m.replay_clip_cov.ratio, m.replay_clip_cov.lb, m.replay_clip_cov.ub) == (0.02, 1.0, 40.0)
        policy = actor.policy_loss  # the fork's actor.yaml defaults (the script sets only the replay's)
        assert (policy.clip_cov_ratio, policy.clip_cov_lb, policy.clip_cov_ub) == (0.0002, 1.0, 5.0)


def test_dr_bot_filters_compose_under_every_method(hydra_ctx):
    """method=none (Dr.BoT without SPEAR) must accept `method.dr_bot_filters=true` like spear does."""
    for method in train.group_options("method"):
        cfg = compose("config", overrides=[f"method={method}", "method.dr_bot_filters=true"])
        assert cfg.method.dr_bot_filters is True
        assert compose("config", overrides=[f"method={method}"]).method.dr_bot_filters is False
