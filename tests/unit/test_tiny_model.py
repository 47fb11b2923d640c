"""The tiny model is built locally, deterministically, with head_dim 64 and a chat template."""

from __future__ import annotations

import hashlib
import json

import pytest

from agent_rl.models import tiny_model


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The default model twice: from the run cache (which the end-to-end runs have built already) and built
    anew into an empty cache, so that the two can be compared file by file."""
    first = tiny_model.build_tiny_model()
    mp = pytest.MonkeyPatch()
    mp.setenv("AGENT_RL_CACHE", str(tmp_path_factory.mktemp("fresh_cache")))
    second = tiny_model.build_tiny_model()
    mp.undo()
    assert first != second  # two builds, not one cache hit
    return first, second


def test_same_seed_same_files(built):
    first, second = built
    assert first.name == second.name
    assert digest(first) == digest(second)


def test_other_seed_other_weights(tmp_path, monkeypatch, built):
    """Another seed, with a short format lesson (the weights differ from the first initialisation on)."""
    monkeypatch.setenv("AGENT_RL_CACHE", str(tmp_path))
    other = tiny_model.build_tiny_model(tiny_model.TinyModelSpec(seed=1, format_steps=2))
    assert other.name != built[0].name
    assert digest(other)["model.safetensors"] != digest(built[0])["model.safetensors"]
    assert digest(other)["tokenizer.json"] == digest(built[0])["tokenizer.json"]


def test_cached_build_is_reused(built, monkeypatch):
    monkeypatch.setenv("AGENT_RL_CACHE", str(built[0].parents[1]))
    before = (built[0] / "model.safetensors").stat().st_mtime_ns
    assert tiny_model.build_tiny_model() == built[0]
    assert (built[0] / "model.safetensors").stat().st_mtime_ns == before


def test_shape_and_tokenizer(built):
    from transformers import AutoTokenizer

    config = json.loads((built[0] / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["hidden_size"] // config["num_attention_heads"] == 64
    tok = AutoTokenizer.from_pretrained(built[0])
    assert config["vocab_size"] == len(tok)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "go to countertop 1"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\ngo to countertop 1<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # trained on our text: environment words are single tokens
    assert len(tok.tokenize(" countertop")) == 1
    assert tok.decode(tok.encode("<action>take apple 1</action>")) == "<action>take apple 1</action>"


def test_head_dim_other_than_64_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_RL_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="must be 64"):
        tiny_model.build_tiny_model(tiny_model.TinyModelSpec(hidden_size=64, num_attention_heads=4))


def test_the_model_answers_in_the_agent_format(built):
    """After its format lesson, the model's sampled answers to a long, real-looking prompt are mostly
    valid steps (a purely random model writes none), and not all alike."""
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from agent_rl.envs.corpus import lines
    from agent_rl.rollout.parsing import parse_action

    tok = AutoTokenizer.from_pretrained(built[0])
    model = Qwen2ForCausalLM.from_pretrained(built[0])
    prompt = " ".join(lines()[:40])  # ~500 tokens, longer than anything in the lesson
    ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
    ids = torch.tensor([list(ids["input_ids"] if hasattr(ids, "keys") else ids)] * 8)
    torch.manual_seed(0)
    out = model.generate(
        ids, max_new_tokens=48, do_sample=True, temperature=1.0, pad_token_id=tok.pad_token_id
    )
    answers = [tok.decode(row[ids.shape[1] :], skip_special_tokens=True) for row in out]
    valid = [parse_action(a, "alfworld").valid for a in answers]
    assert sum(valid) >= 6, answers
    assert len({parse_action(a, "alfworld").action for a in answers}) >= 2, answers
