"""env=math_python: its tasks and splits, grading (math-verify, off the main thread too), the interpreter's
calls, SPEAR's style, hostile turns, the prepared data's refusals, and the shipped problems' generator."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from agent_rl.envs import math_python
from agent_rl.envs.api import env_class, make_env
from agent_rl.envs.math_python import MathPython, grade, within
from agent_rl.envs.tools.calls import ToolCall, ToolTurn, parse_tool_turn

pytestmark = pytest.mark.env
REPO = Path(__file__).resolve().parents[2]
SIX_BY_SEVEN = {"problem": "What is 6 times 7?", "answer": "42"}


def answer_turn(text: str) -> ToolTurn:
    """The turn the agent loop parses from ``text``."""
    return parse_tool_turn(text, MathPython.tools, max_calls=1)


def code_turn(code: str) -> ToolTurn:
    return ToolTurn(calls=(ToolCall("code_interpreter", {"code": code}),))


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sandbox_or_skip() -> None:
    from agent_rl.envs.tools.sandbox import sandbox_missing

    reason = sandbox_missing()
    if reason:
        pytest.skip(reason)


# ---------------------------------------------------------------------------------------------- tasks
def test_registered_with_its_title_tool_and_splits():
    cls = env_class("math_python")
    assert cls is MathPython and cls.title == "Math with Python" and cls.counted_tool == "code_interpreter"
    assert [t["function"]["name"] for t in cls.tools] == ["code_interpreter"]
    assert cls.tools[0]["function"]["parameters"]["required"] == ["code"]
    assert set(cls.splits) == {"train", "test", "dapo_math", "aime2024", "aime2025", "aime"}
    assert cls.data_variables == ("MATH_DATA",) and cls.ram_per_env_gb == 0.3


def test_tasks_are_deterministic_and_the_shipped_splits_disjoint():
    train, test = MathPython.tasks("train", {}), MathPython.tasks("test", {})
    assert train == MathPython.tasks("train", {}) and (len(train), len(test)) == (200, 50)
    assert train[3] == ({"split": "train", "index": 3}, train[3][1])
    assert {kind for _, kind in train + test} == {"arithmetic", "number_theory", "combinatorics"}
    problems = {split: {r["problem"] for r in math_python.load_split(split)} for split in ("train", "test")}
    assert len(problems["train"]) == 200 and len(problems["test"]) == 50
    assert not problems["train"] & problems["test"]
    assert all(r["answer"].lstrip("-").isdigit() for r in math_python.load_split("test"))


def test_reset_gives_the_problem_and_its_kind():
    env = make_env("math_python")
    row = math_python.load_split("test")[4]
    observation, info = env.reset({"name": "math_python", "split": "test", "index": 4})
    assert observation == info["task"] == row["problem"]
    assert info["task_type"] == row["kind"] and info["admissible_actions"] == []
    assert (info["won"], info["score"], info["turns"], info["tool_calls"]) == (False, 0.0, 0, 0)
    messages = MathPython.messages(observation, info)
    assert [m["role"] for m in messages] == ["system", "user"] and messages[1]["content"] == row["problem"]
    assert "<answer>" in messages[0]["content"] and "code_interpreter" in messages[0]["content"]


# -------------------------------------------------------------------------------------------- grading
@pytest.mark.parametrize(
    "text",
    [
        "<answer>42</answer>",
        "<answer>\\boxed{42}</answer>",
        "<answer>42.0</answer>",
        "<answer> $42$ </answer>",
    ],
)
def test_a_right_answer_wins_and_ends_the_episode(text):
    env = MathPython()
    env.reset(SIX_BY_SEVEN)
    results, reward, done, info = env.step(answer_turn(text))
    assert (results, reward, done) == ([], 1.0, True)
    assert info["won"] is True and info["score"] == 1.0 and info["answer"] is not None


@pytest.mark.parametrize("text", ["<answer>41</answer>", "<answer>\\boxed{43}</answer>", "<answer></answer>"])
def test_a_wrong_answer_loses_and_ends_the_episode(text):
    env = MathPython()
    env.reset(SIX_BY_SEVEN)
    _, reward, done, info = env.step(answer_turn(text))
    assert (reward, done, info["won"], info["score"]) == (0.0, True, False, 0.0)


def test_math_verify_grades_off_the_main_thread():
    """The environment runs in a Ray actor's thread, where math-verify's signal-based timeouts fail."""
    out: dict[str, object] = {}

    def run() -> None:
        env = MathPython()
        env.reset({"problem": "Half of one?", "answer": "\\frac{1}{2}"})
        out["right"] = env.step(answer_turn("<answer>0.5</answer>"))[3]["won"]
        env.reset({"problem": "Root of eight?", "answer": "2\\sqrt{2}"})
        out["equal"] = env.step(answer_turn("<answer>\\sqrt{8}</answer>"))[3]["won"]
        out["wrong"] = grade("\\sqrt{2}", "2")

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(60)
    assert out == {"right": True, "equal": True, "wrong": False}


def test_a_grade_that_runs_over_its_time_is_wrong():
    start = time.perf_counter()
    assert within(0.2, lambda: time.sleep(2) or True) is False
    assert time.perf_counter() - start < 1.5
    assert within(5, lambda: 1 / 0) is False and within(5, lambda: True) is True


# ------------------------------------------------------------------------------------------ tool calls
def test_a_code_call_returns_the_interpreters_output():
    sandbox_or_skip()
    env = MathPython()
    env.reset(SIX_BY_SEVEN)
    results, reward, done, info = env.step(code_turn("print(6 * 7)"))
    assert (results, reward, done) == (["42"], 0.0, False)
    assert info["tool_calls"] == 1 and info["total_tool_calls"] == 1 and info["turns"] == 1
    results, *_ = env.step(code_turn("raise ValueError('no')"))
    assert "ValueError: no" in results[0]


def test_calls_reach_the_tool_with_the_environments_limits(monkeypatch):
    """The plumbing without a sandbox: each call's arguments reach the interpreter, one result per call;
    calls the interpreter cannot take come back as error texts."""
    seen = []
    env = MathPython(timeout_s=7, memory_mb=256)
    env._tool = lambda arguments: seen.append(arguments) or f"ran {arguments['code']}"
    env.reset(SIX_BY_SEVEN)
    turn = ToolTurn(
        calls=(
            ToolCall("code_interpreter", {"code": "a"}),
            ToolCall("search", {"q": "x"}),
            ToolCall("code_interpreter", {"code": 5}),
        )
    )
    results, _, done, info = env.step(turn)
    assert results[0] == "ran a" and results[1].startswith("Error: unknown tool") and "code" in results[2]
    assert seen == [{"code": "a"}] and info["tool_calls"] == 2 and not done
    env._tool = lambda arguments: 1 / 0
    assert env.step(code_turn("x"))[0][0].startswith("Error: the interpreter failed (ZeroDivisionError")


def test_the_interpreter_is_built_with_the_configured_limits(monkeypatch):
    sandbox_or_skip()
    env = MathPython(timeout_s=7, memory_mb=256, max_output_chars=100)
    limits = env._interpreter().limits
    assert (limits.wall_s, limits.cpu_s, limits.memory_mb, limits.output_chars) == (7.0, 7, 256, 100)


def test_the_episode_is_cut_after_max_steps():
    env = MathPython(max_steps=2)
    env._tool = lambda arguments: "1"
    env.reset(SIX_BY_SEVEN)
    assert env.step(code_turn("1"))[2] is False
    _, _, done, info = env.step(code_turn("1"))
    assert done and info["truncated"] and not info["won"] and info["total_tool_calls"] == 2
    assert env.step(answer_turn("<answer>42</answer>"))[1:3] == (0.0, True)  # over: nothing more counts


@pytest.mark.parametrize(
    "turn",
    [
        None,
        "<answer>42</answer>",
        42,
        ToolTurn(calls=(ToolCall("code_interpreter", None),)),  # type: ignore[arg-type]
        ToolTurn(calls="not calls"),  # type: ignore[arg-type]
        ToolTurn(answer=["42"]),  # type: ignore[arg-type]
        ToolTurn(answer="9" * 100_000),
        ToolTurn(answer="\\frac{" * 500),
        ToolTurn(errors=("tool call 1: invalid JSON",), reason="bad_json"),
    ],
)
def test_a_malformed_turn_never_raises(turn):
    env = MathPython()
    env._tool = lambda arguments: "ran"
    env.reset(SIX_BY_SEVEN)
    results, reward, done, info = env.step(turn)
    assert isinstance(results, list) and reward == 0.0 and not info["won"]


def test_random_text_through_the_parser_never_raises():
    rng = random.Random(0)
    pieces = [
        "<tool_call>",
        "</tool_call>",
        "<answer>",
        "</answer>",
        '{"name": "code_interpreter"',
        "}",
        "42",
        "\\boxed{",
    ]
    env = MathPython()
    env._tool = lambda arguments: "ran"
    for _ in range(200):
        env.reset(SIX_BY_SEVEN)
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        env.step(answer_turn(text))


# ---------------------------------------------------------------------------------------- SPEAR style
def test_spear_style_asks_for_a_boxed_answer_and_ends_at_a_turn_without_a_call():
    env = MathPython(style="spear")
    env._tool = lambda arguments: "ran"
    observation, info = env.reset(SIX_BY_SEVEN)
    (message,) = MathPython.messages(observation, info)
    assert message == {"role": "user", "content": observation + math_python.SPEAR_ANSWER_FORMAT}
    assert env.step(code_turn("print(42)"))[2] is False
    _, reward, done, info = env.step(answer_turn("So the product is \\boxed{42}."))
    assert (reward, done, info["answer"]) == (1.0, True, "42")
    env.reset(SIX_BY_SEVEN)
    assert env.step(answer_turn("It is 42."))[1:3] == (0.0, True)  # no \boxed{}: a wrong answer
    dapo = MathPython.messages("Find x.", {"style": "spear", "kind": "dapo_math"})[0]["content"]
    assert dapo.startswith("Solve the following math problem step by step.") and "\n\nFind x.\n\n" in dapo


def test_spear_style_runs_the_code_after_retools_imports():
    sandbox_or_skip()
    env = MathPython(style="spear")
    env.reset(SIX_BY_SEVEN)
    assert env.step(code_turn("print(int(sqrt(1764)), Counter('aab')['a'])"))[0] == ["42 2"]


# ---------------------------------------------------------------------------------------- prepared data
def write_prepared(root: Path) -> None:
    for name, count in (("dapo_math", 5), ("aime2024", 30), ("aime2025", 30)):
        rows = [{"problem": f"{name} problem {i}", "answer": str(i), "kind": name} for i in range(count)]
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def config(**env) -> OmegaConf:
    return OmegaConf.create({"env": {"train_split": "train", "val_split": "test", "env_kwargs": {}, **env}})


def test_check_refuses_a_prepared_split_without_its_file(monkeypatch, tmp_path):
    monkeypatch.delenv("MATH_DATA", raising=False)
    refusal = MathPython.check(config(train_split="dapo_math"))
    assert "MATH_DATA is not set" in refusal and "scripts/prepare_math.py" in refusal
    assert refusal.count(". ") == 0  # one sentence
    monkeypatch.setenv("MATH_DATA", str(tmp_path))
    (tmp_path / "aime2024.jsonl").write_text('{"problem": "p", "answer": "1", "kind": "aime2024"}\n')
    refusal = MathPython.check(config(val_split="aime"))
    assert "lacks aime2025.jsonl" in refusal and "scripts/prepare_math.py" in refusal
    assert MathPython.check(config(val_split="aime2024")) in (None, math_python_sandbox_reason())
    assert "not a math_python style" in MathPython.check(config(env_kwargs={"style": "paper"}))


def math_python_sandbox_reason():
    from agent_rl.envs.tools.sandbox import sandbox_missing

    return sandbox_missing()


def test_prepared_splits_read_math_data(monkeypatch, tmp_path):
    monkeypatch.setenv("MATH_DATA", str(tmp_path))
    write_prepared(tmp_path)
    aime = MathPython.tasks("aime", {})
    assert len(aime) == 60 and [kind for _, kind in aime] == ["aime2024"] * 30 + ["aime2025"] * 30
    assert [kind for _, kind in MathPython.tasks("dapo_math", {})] == ["dapo_math"] * 5
    env = MathPython()
    assert env.task_count("aime2025") == 30
    observation, info = env.reset({"split": "aime", "index": 31})
    assert observation == "aime2025 problem 1" and info["task_type"] == "aime2025"


def test_prepare_math_keeps_the_problem_and_counts_the_files(tmp_path, capsys):
    prepare = load_script("prepare_math")
    prompt = math_python.DAPO_PREFIX + "Find $x$ if $2x = 4$.\n\nGive x." + math_python.DAPO_SUFFIX
    assert prepare.dapo_problem(prompt) == "Find $x$ if $2x = 4$.\n\nGive x."
    assert prepare.distinct([{"problem": "a", "answer": "1"}] * 3) == [{"problem": "a", "answer": "1"}]
    write_prepared(tmp_path)
    assert prepare.main([str(tmp_path), "--check", "--only", "aime2024", "aime2025"]) == 0
    assert prepare.main([str(tmp_path), "--check"]) == 1  # 5 DAPO problems: unexpected
    out = capsys.readouterr().out
    assert "aime2024" in out and "ok" in out and "unexpected" in out
    (tmp_path / "aime2025.jsonl").unlink()
    assert prepare.count_status("aime2025", None) == "missing"


# ---------------------------------------------------------------------------------------- generator, lesson
def test_the_generator_rewrites_the_shipped_files_byte_for_byte(tmp_path):
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_math_problems.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for split in ("train", "test"):
        shipped = math_python.DATA_DIR / f"{split}.jsonl"
        assert (tmp_path / f"{split}.jsonl").read_bytes() == shipped.read_bytes(), split


def test_the_generators_answers_are_right():
    make = load_script("make_math_problems")
    assert make.primes_below(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert make.divisor_count(360) == 24 and make.divisor_count(97) == 2
    assert [make.derangements(n) for n in range(6)] == [1, 0, 1, 2, 9, 44]
    assert make.numbers_with_digit_sum(2, 10) == 9  # 19, 28, ..., 91
    rng = random.Random(1)
    text, answer = make.blocked_paths(rng)
    assert answer > 0 and "avoid" in text


def test_the_lesson_answers_with_a_well_formed_call_or_the_right_answer():
    rng = random.Random(0)
    forms = set()
    for _ in range(20):
        messages, answer = MathPython.lesson_example(rng)
        assert [m["role"] for m in messages] == ["system", "user"]
        turn = answer_turn(answer)
        assert turn.valid, answer
        if turn.calls:
            forms.add("call")
            assert turn.calls[0].name == "code_interpreter"
        else:
            forms.add("answer")
    assert forms == {"call", "answer"}
    corpus = MathPython.lesson_corpus()
    assert math_python.SYSTEM_PROMPT in corpus and len(corpus) > 300


def test_a_machine_without_bubblewrap_is_refused_before_ray_with_the_install_command(monkeypatch):
    """`agent-rl env=math_python`'s checks (before Ray starts) refuse, in one sentence naming the install
    command, where bubblewrap is missing; code never runs unsandboxed (the tool refuses to build too)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from agent_rl.cli import train
    from agent_rl.envs.tools import python, sandbox

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(train.CONF_DIR), version_base=None):
        cfg = compose("config", overrides=["env=math_python", "model=tiny"])
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sandbox, "_bwrap", lambda: None)
    sandbox.sandbox_missing.cache_clear()
    try:
        with pytest.raises(train.ConfigError) as refused:
            train.check_environment(cfg)
        message = str(refused.value)
        assert "apt-get install" in message and "bubblewrap" in message and message.count(". ") == 0
        with pytest.raises(RuntimeError):
            python.PythonTool()
    finally:
        sandbox.sandbox_missing.cache_clear()
