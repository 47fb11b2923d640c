"""W&B set-up of a run: tags and group from the choices, the run id kept with the checkpoints."""

from __future__ import annotations

from hydra import compose
from omegaconf import open_dict

from agent_rl.cli import train


def test_tags_and_group_come_from_the_choices(hydra_ctx):
    cfg = compose("config", overrides=["env=webshop", "method=aem", "algo=dapo"])
    assert train.wandb_tags(cfg) == ["env:webshop", "algo:dapo", "method:aem", "model:tiny", "cluster:cpu"]
    assert train.wandb_group(cfg) == "webshop-dapo-aem-tiny"  # no seed: the seeds of one choice together


def test_an_experiment_groups_by_its_paper_row(hydra_ctx):
    cfg = compose("config", overrides=["experiment=epo/alfworld-3b-grpo-epo"])
    assert train.wandb_group(cfg) == "epo/alfworld-3b-grpo-epo"
    tags = train.wandb_tags(cfg)
    assert "paper:epo" in tags and "model:qwen2.5-3b" in tags and len(tags) == len(set(tags))


def _with_checkpoints(cfg, folder, resume_mode="auto"):
    with open_dict(cfg):
        cfg.trainer.default_local_dir = str(folder)
        cfg.trainer.resume_mode = resume_mode
    return cfg


def test_the_run_id_is_kept_with_the_checkpoints_and_reused_on_resume(hydra_ctx, tmp_path):
    cfg = _with_checkpoints(compose("config"), tmp_path / "ckpt")
    first = train._wandb_run_id(cfg)
    assert (tmp_path / "ckpt" / "wandb_run_id").read_text().strip() == first
    assert train._wandb_run_id(cfg) == first  # resume_mode=auto continues the same W&B run
    fresh = train._wandb_run_id(_with_checkpoints(compose("config"), tmp_path / "ckpt", "disable"))
    assert fresh != first  # a run that does not resume is a new W&B run
    other = train._wandb_run_id(_with_checkpoints(compose("config"), tmp_path / "other"))
    assert other not in (first, fresh)


def test_an_evaluation_is_a_run_of_its_own(hydra_ctx, tmp_path):
    cfg = _with_checkpoints(compose("config"), tmp_path / "ckpt")
    trained = train._wandb_run_id(cfg)
    with open_dict(cfg):
        cfg.trainer.val_only = True
    assert train._wandb_run_id(cfg) != trained
    assert (tmp_path / "ckpt" / "wandb_run_id").read_text().strip() == trained  # untouched
