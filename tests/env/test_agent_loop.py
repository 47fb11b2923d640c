"""The real agent loop on a real ALFWorld game, driven by a scripted generator in place of vLLM.

The generator answers each turn with the next step of the game's expert plan (one malformed answer
first, in one test), so the loop must build prompts, parse actions, step the environment through the
Ray pool and return one correctly formed sample per step.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from transformers import AutoTokenizer
from verl.experimental.agent_loop.agent_loop import DictConfigWrap
from verl.workers.rollout.replica import TokenOutput

from agent_rl.cli import train
from agent_rl.envs.alfworld import SHIPPED_GAMES
from agent_rl.models.tiny_model import build_tiny_model
from agent_rl.rollout.agent_loop import EnvAgentLoop
from agent_rl.training.data import env_rows

pytestmark = pytest.mark.env


class ScriptedServer:
    """Stands in for verl's LLM server client: replays a fixed list of answers, recording the prompts."""

    def __init__(self, tokenizer, answers: list[str]):
        self.tokenizer, self.answers, self.prompts, self.params = tokenizer, list(answers), [], []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs) -> TokenOutput:
        self.prompts.append(self.tokenizer.decode(prompt_ids))
        self.params.append(dict(sampling_params))
        ids = self.tokenizer.encode(self.answers.pop(0) + "<|im_end|>")
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), extra_fields={"min_global_steps": 0})


@pytest.fixture(scope="module")
def setup(ray_local):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(train.CONF_DIR), version_base=None):
        cfg = compose(
            "config",
            overrides=["env=alfworld", "model=tiny", "env.max_steps=20", "data.max_response_length=64"],
        )
    GlobalHydra.instance().clear()
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model())
    rows = env_rows(dict(cfg.env), "train", None, seed=0)
    return cfg, tokenizer, rows


def play(cfg, tokenizer, row, answers, session_id=3, server_cls=None):
    """One episode of the real agent loop against a scripted server (`ScriptedServer` by default)."""
    server = (server_cls or ScriptedServer)(tokenizer, answers)

    async def episode():  # built inside the event loop, as verl's agent-loop worker does
        loop = EnvAgentLoop(
            trainer_config=DictConfigWrap(cfg),
            server_manager=server,
            tokenizer=tokenizer,
            processor=None,
            dataset_cls=None,
            data_config=DictConfigWrap(cfg.data),
            hf_model_type="qwen2",
        )
        return await loop.run(
            {"temperature": 1.0},
            uid="u1",
            session_id=session_id,
            env_spec=row["env_spec"],
            extra_info=row["extra_info"],
        )

    return asyncio.run(episode()), server


def plan_of(row) -> list[str]:
    spec = json.loads(row["env_spec"])
    games = sorted(str(p) for p in SHIPPED_GAMES.rglob("game.tw-pddl"))
    return json.loads(Path(games[spec["task_id"]]).read_text())["walkthrough"]


@pytest.mark.parametrize("task_id", [0, 3])
def test_expert_answers_win_with_one_sample_per_step(setup, task_id):
    cfg, tokenizer, rows = setup
    row = rows[task_id]
    plan = plan_of(row)
    outputs, server = play(
        cfg, tokenizer, row, [f"<think>step {i}</think><action>{a}</action>" for i, a in enumerate(plan)]
    )
    assert len(outputs) == len(plan) == len(server.prompts)
    for turn, (out, action) in enumerate(zip(outputs, plan, strict=True)):
        expected = tokenizer.encode(f"<think>step {turn}</think><action>{action}</action><|im_end|>")
        assert out.response_ids == expected
        assert out.response_mask == [1] * len(expected)
        assert out.response_logprobs == [-0.5] * len(expected)
        assert tokenizer.decode(out.prompt_ids) == server.prompts[turn]
        assert out.reward_score == 10.0
        fields = out.extra_fields
        assert fields["turn"] == turn and fields["trajectory_id"] == "u1_3"
        assert fields["action_valid"] and fields["step_penalty"] == 0.0
        assert fields["won"] == 1.0 and fields["episode_length"] == len(plan)
        assert fields["env_reward"] == (10.0 if turn == len(plan) - 1 else 0.0)
        assert fields["reward_extra_info"]["won"] == 1.0
        assert fields["task_type"] == row["data_source"].split("/")[1]
        # GiGPO's anchor: the observation the action was taken in (the one this step's prompt shows)
        assert fields["anchor_obs"] and fields["anchor_obs"] in server.prompts[turn]
    assert outputs[0].extra_fields["anchor_obs"] != outputs[1].extra_fields["anchor_obs"]
    # the prompt carries the current observation, the admissible actions and the instruction
    assert "Your admissible actions of the current situation are" in server.prompts[1]
    assert f"'{plan[1]}'" in server.prompts[1]
    assert "<action> </action>" in server.prompts[0]
    # the second prompt shows the first action in its history
    assert plan[0] in server.prompts[1].split("current observation is")[0]


def test_malformed_answer_costs_the_penalty_and_the_episode_goes_on(setup):
    cfg, tokenizer, rows = setup
    row = rows[0]
    plan = plan_of(row)
    answers = ["I will just " + plan[0]]  # no tags: invalid, and "Nothing happens."
    answers += [f"<think>ok</think><action>{a}</action>" for a in plan]
    outputs, _ = play(cfg, tokenizer, row, answers)
    assert len(outputs) == len(plan) + 1
    first = outputs[0].extra_fields
    assert not first["action_valid"] and first["invalid_reason"] == "missing_action_tags"
    assert first["step_penalty"] == pytest.approx(0.1)
    assert all(o.extra_fields["step_penalty"] == 0.0 for o in outputs[1:])
    assert outputs[-1].extra_fields["won"] == 1.0
    assert outputs[-1].extra_fields["valid_action_ratio"] == pytest.approx(len(plan) / (len(plan) + 1))


def test_episode_is_cut_at_max_steps(setup):
    cfg, tokenizer, rows = setup
    cfg = cfg.copy()
    cfg.env.max_steps = 2
    outputs, _ = play(cfg, tokenizer, rows[0], ["<think>x</think><action>look</action>"] * 2)
    assert len(outputs) == 2
    assert [o.extra_fields["turn"] for o in outputs] == [0, 1]
    assert all(o.reward_score == 0.0 and o.extra_fields["won"] == 0.0 for o in outputs)


def test_long_prompts_are_cut_to_the_prompt_length_and_flagged(setup):
    cfg, tokenizer, rows = setup
    cfg = cfg.copy()
    cfg.data.max_prompt_length = 64
    outputs, server = play(cfg, tokenizer, rows[0], ["<think>x</think><action>look</action>"] * 2 + [""] * 18)
    assert all(len(o.prompt_ids) == 64 for o in outputs)
    assert all(o.extra_fields["prompt_truncated"] for o in outputs)
    # the end of the prompt (the instruction) is what is kept
    assert server.prompts[0].endswith("<|im_start|>assistant\n")


def test_validation_rows_sample_with_a_seed_per_task_member_and_turn(setup):
    """A validation row's requests carry vLLM seeds derived from its spec, group member and turn (the same in
    every evaluation, so the same weights validate alike); training rows carry none (the control);
    ``env.val_seeded=false`` turns it off."""
    cfg, tokenizer, rows = setup
    val_row = env_rows(dict(cfg.env), "valid_seen", None, seed=0, table="val")[0]
    answers = ["<think>x</think><action>look</action>"] * 2
    capped = cfg.copy()
    capped.env.max_steps = 2
    _, first = play(capped, tokenizer, val_row, list(answers))
    _, again = play(capped, tokenizer, val_row, list(answers))
    _, other_member = play(capped, tokenizer, val_row, list(answers), session_id=4)
    seeds = [p["seed"] for p in first.params]
    assert len(seeds) == 2 and len(set(seeds)) == 2  # one per turn
    assert [p["seed"] for p in again.params] == seeds
    assert not set(seeds) & {p["seed"] for p in other_member.params}
    _, training = play(capped, tokenizer, rows[0], list(answers))
    assert all("seed" not in p for p in training.params)
    capped.env.val_seeded = False
    _, unseeded = play(capped, tokenizer, val_row, list(answers))
    assert all("seed" not in p for p in unseeded.params)


class PieceServer(ScriptedServer):
    """Returns each answer as one token per character: ids that decode to the answer but are not its
    encoding, so a loop that decoded and re-encoded the model's tokens would train on other tokens."""

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs) -> TokenOutput:
        self.prompts.append(self.tokenizer.decode(prompt_ids))
        self.params.append(dict(sampling_params))
        answer = self.answers.pop(0)
        ids = [i for ch in answer for i in self.tokenizer.encode(ch)] + self.tokenizer.encode("<|im_end|>")
        return TokenOutput(
            token_ids=ids, log_probs=[-0.25 - 0.001 * k for k in range(len(ids))], extra_fields={}
        )


def play_rows(cfg, tokenizer, row, answers, rows: str, server_cls=None):
    """`play` with ``agent.rows=rows``."""
    cfg = cfg.copy()
    cfg.agent.rows = rows
    return play(cfg, tokenizer, row, answers, server_cls=server_cls)


def test_trajectory_rows_hold_every_turn_exactly_as_generated(setup):
    """``agent.rows=trajectory``: one row; its response mask covers exactly the model's tokens, which are the
    ids the server returned (not a re-encoding: `PieceServer`), with their log-probs; each token's turn is
    recorded; the same episode as step rows has the same turns, validity and outcome."""
    cfg, tokenizer, rows = setup
    cfg = cfg.copy()
    cfg.data.max_response_length = 2048
    row = rows[0]
    plan = plan_of(row)
    answers = ["I will just " + plan[0]] + [f"<think>ok</think><action>{a}</action>" for a in plan]
    (out,), server = play_rows(cfg, tokenizer, row, list(answers), "trajectory", PieceServer)
    steps, _ = play_rows(cfg, tokenizer, row, list(answers), "step", PieceServer)
    generated = [
        [i for ch in a for i in tokenizer.encode(ch)] + tokenizer.encode("<|im_end|>") for a in answers
    ]
    assert generated[1] != tokenizer.encode(answers[1] + "<|im_end|>")  # the ids are not the canonical ones
    mask = out.response_mask
    model_tokens = [t for t, m in zip(out.response_ids, mask, strict=True) if m]
    assert model_tokens == [t for g in generated for t in g]
    assert [s.response_ids for s in steps] == generated  # step rows: the same tokens, one turn per row
    assert [lp for lp, m in zip(out.response_logprobs, mask, strict=True) if m] == [
        -0.25 - 0.001 * k for g in generated for k in range(len(g))
    ]
    fields = out.extra_fields
    turns = fields["token_turn"]
    assert len(turns) == len(out.response_ids)
    for k, g in enumerate(generated):  # each turn's tokens carry its index, in order
        assert [t for t, m, tt in zip(out.response_ids, mask, turns, strict=True) if m and tt == k] == g
    # between the turns: the environment's next observation, under mask 0
    between = tokenizer.decode([t for t, m in zip(out.response_ids, mask, strict=True) if not m])
    assert "Your admissible actions of the current situation are" in between
    assert fields["rows"] == "trajectory" and fields["num_steps"] == len(steps) == len(answers)
    assert fields["turn_valid"] == [s.extra_fields["action_valid"] for s in steps]
    assert fields["turn_penalty"] == [s.extra_fields["step_penalty"] for s in steps]
    assert fields["turn_anchor"][0] == steps[0].extra_fields["anchor_obs"]
    assert out.reward_score == steps[0].reward_score == 10.0 and fields["won"] == 1.0
    # the conversation: turn 2's context holds turn 1's answer and the observation that followed
    assert answers[0] in server.prompts[1] and server.prompts[1].startswith(server.prompts[0])


def test_trajectory_rows_stop_at_the_response_budget(setup):
    cfg, tokenizer, rows = setup
    cfg = cfg.copy()
    cfg.data.max_response_length = 700
    (out,), server = play_rows(
        cfg, tokenizer, rows[0], ["<think>x</think><action>look</action>"] * 20, "trajectory"
    )
    assert len(out.response_ids) <= 700 and out.extra_fields["num_steps"] == len(server.prompts) < 20
    assert len(server.prompts) >= 2 and all(p["max_tokens"] <= 700 for p in server.params)
    assert server.params[1]["max_tokens"] < server.params[0]["max_tokens"]  # what is left of the budget


# ---- a tool environment (env=math_python): the conversation with tool calls ------------------------------
CALL = '<tool_call>\n{"name": "code_interpreter", "arguments": {"code": "print(6 * 7)"}}\n</tool_call>'
BAD_CALL = '<tool_call>\n{"name": "code_interpreter", "arguments": {"code": </tool_call>'


@pytest.fixture(scope="module")
def math_setup(ray_local):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(train.CONF_DIR), version_base=None):
        cfg = compose("config", overrides=["env=math_python", "model=tiny", "data.max_response_length=1024"])
    GlobalHydra.instance().clear()
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model())
    row = {
        "env_spec": json.dumps({"name": "math_python", "problem": "What is 6 times 7?", "answer": "42"}),
        "extra_info": {"table": "train"},
    }
    return cfg, tokenizer, row


@pytest.mark.parametrize("rows", ["step", "trajectory"])
def test_tool_calls_run_in_the_sandbox_and_the_answer_ends_the_episode(math_setup, rows):
    """A call, a malformed call (an invalid step: the penalty, and the error back as a tool message), then
    the right answer: the tools reach the model through the chat template, each result comes back as a
    ``<tool_response>``, the episode is won; step rows hold each turn's whole context as its prompt."""
    cfg, tokenizer, row = math_setup
    cfg = cfg.copy()
    cfg.env.invalid_action_penalty = 0.1
    answers = [f"Let me compute. {CALL}", BAD_CALL, "<answer>42</answer>"]
    outputs, server = play_rows(cfg, tokenizer, row, answers, rows)
    assert len(server.prompts) == 3
    assert "<tools>" in server.prompts[0] and '"name": "code_interpreter"' in server.prompts[0]
    assert "<tool_response>\n42\n</tool_response>" in server.prompts[1]
    assert "tool call 1" in server.prompts[2].split("<tool_response>")[-1]  # the malformed call's error
    for later, earlier in zip(server.prompts[1:], server.prompts, strict=False):
        assert later.startswith(earlier)  # one conversation, appended to
    generated = [tokenizer.encode(a + "<|im_end|>") for a in answers]
    if rows == "step":
        assert [o.response_ids for o in outputs] == generated
        assert [tokenizer.decode(o.prompt_ids) for o in outputs] == server.prompts
        fields = [o.extra_fields for o in outputs]
        assert [f["action_valid"] for f in fields] == [True, False, True]
        assert [f["step_penalty"] for f in fields] == [0.0, 0.1, 0.0]
        assert fields[1]["invalid_reason"] == "bad_json" and fields[0]["tool_results"] == ["42"]
        assert [json.loads(c)["arguments"] for c in fields[0]["tool_calls"]] == [{"code": "print(6 * 7)"}]
        fields = fields[-1]
    else:
        (out,) = outputs
        fields = out.extra_fields
        assert [t for t, m in zip(out.response_ids, out.response_mask, strict=True) if m] == sum(
            generated, []
        )
        assert fields["turn_valid"] == [True, False, True] and fields["turn_penalty"] == [0.0, 0.1, 0.0]
        assert fields["turn_tool_results"][0] == ["42"] and fields["step_penalty"] == pytest.approx(0.1)
        between = tokenizer.decode(
            [t for t, m in zip(out.response_ids, out.response_mask, strict=True) if not m]
        )
        assert "<tool_response>\n42\n</tool_response>" in between
    assert (
        fields["won"] == 1.0 and fields["episode_tool_calls"] == 1.0
    )  # one well-formed call of the counted tool
    assert outputs[-1].reward_score == float(cfg.env.success_reward)


def test_a_wrong_answer_loses_and_an_answerless_turn_is_told_what_it_lacks(math_setup):
    cfg, tokenizer, row = math_setup
    (out,), server = play_rows(cfg, tokenizer, row, ["I think so.", "<answer>41</answer>"], "trajectory")
    assert "neither a tool call nor a final answer" in server.prompts[1]
    assert out.extra_fields["turn_valid"] == [False, True] and out.extra_fields["won"] == 0.0
    assert out.reward_score == 0.0


def test_step_rows_of_a_conversation_stop_when_the_context_fills_vllms_window(math_setup):
    """Step rows of a conversation: each turn's context is the whole conversation so far; the episode stops
    before a turn whose context would leave vLLM no room to generate (``rollout.max_model_len``)."""
    cfg, tokenizer, row = math_setup
    cfg = cfg.copy()
    cfg.actor_rollout_ref.rollout.max_model_len = 1200
    outputs, server = play_rows(cfg, tokenizer, row, [f"Again. {CALL}"] * 8, "step")
    assert 1 <= len(outputs) < 8 and len(server.prompts) == len(outputs)
    assert all(
        p["max_tokens"] <= 1200 - len(tokenizer.encode(q))
        for p, q in zip(server.params, server.prompts, strict=True)
    )


def test_a_trajectory_row_cut_at_max_steps_ends_with_the_models_tokens(setup):
    cfg, tokenizer, rows = setup
    cfg = cfg.copy()
    cfg.env.max_steps, cfg.data.max_response_length = 2, 2048
    (out,), server = play_rows(
        cfg, tokenizer, rows[0], ["<think>x</think><action>look</action>"] * 2, "trajectory"
    )
    assert out.extra_fields["num_steps"] == 2 and out.response_mask[-1] == 1
    assert tokenizer.decode(out.response_ids[-8:]).endswith("</action><|im_end|>")
