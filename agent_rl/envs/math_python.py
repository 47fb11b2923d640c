r"""``math_python``: math problems solved with a Python code interpreter, SPEAR's math setting.

SPEAR (arXiv 2509.22601) trains Qwen2.5-32B and Qwen3-32B on DAPO-Math-17k with one tool, a code
interpreter (``code_interpreter``, one string parameter ``code``), and validates on AIME 2024 and 2025
(``verl/recipe/spear`` of TencentYoutuResearch/SPEAR). Here the interpreter is agent_rl's local sandbox
(`agent_rl.envs.tools.python`, bubblewrap) instead of their SandboxFusion service.

- Splits: ``train`` (200) and ``test`` (50), shipped in ``agent_rl/envs/data/math_python`` (problems whose
  integer answers take computation: ``scripts/make_math_problems.py``), and, with ``$MATH_DATA`` holding the
  files of ``scripts/prepare_math.py``, ``dapo_math`` (DAPO-Math-17k), ``aime2024``, ``aime2025`` and
  ``aime`` (both years, SPEAR's validation set). ``task_type`` is the problem's kind: ``arithmetic``,
  ``number_theory``, ``combinatorics``; ``dapo_math``, ``aime2024``, ``aime2025``.
- A spec is ``{"split": "test", "index": 3}``, or ``{"problem": ..., "answer": ...}`` for a problem of one's
  own.
- An episode is a conversation: each turn the model may call the interpreter (the agent loop parses the
  Hermes calls into a `ToolTurn`; each call's output comes back as a tool message) or give its final answer.
  It ends with the answer or after ``max_steps`` turns.
- Final answer (``style``): ``agent_rl`` (default) asks for ``<answer>…</answer>`` (``\boxed{…}`` inside it
  is fine); ``spear`` asks as SPEAR's recipe does (``\boxed{…}``, no system message) and, as verl's tool
  agent loop there, ends the episode at the first turn without a well-formed call, grading its last
  ``\boxed{}``.
- Grading: math-verify (HuggingFace's ``math_verify``) compares the answer with the stored one, within
  ``grade_timeout_s`` (it runs off the main thread: math-verify's own signal-based timeouts do not, so a
  helper thread is given the time instead, and a grade that runs over counts as wrong). Plain decimal
  numbers are compared exactly without it (``42``, ``42.0`` and ``042`` are the same answer).
- Reward: 1.0 for a right answer, else 0.0 (``info["won"]``, ``info["score"]``); the training reward is
  ``env.success_reward * won``. ``info["tool_calls"]`` counts this turn's interpreter calls, which SPEAR's
  tool-call bonus counts (``counted_tool``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from agent_rl.envs.api import Info, ToolEnvironment, register_env
from agent_rl.envs.tools.python import SCHEMA, PythonTool
from agent_rl.envs.tools.sandbox import Limits, sandbox_missing

DATA_DIR = Path(__file__).parent / "data" / "math_python"
SHIPPED = ("train", "test")
PREPARED = {  # split -> the files of $MATH_DATA it reads (scripts/prepare_math.py writes them)
    "dapo_math": ("dapo_math.jsonl",),
    "aime2024": ("aime2024.jsonl",),
    "aime2025": ("aime2025.jsonl",),
    "aime": ("aime2024.jsonl", "aime2025.jsonl"),
}
STYLES = ("agent_rl", "spear")
TOOL_NAME = "code_interpreter"
MAX_ANSWER_CHARS = 1_000  # longer answers are wrong without being parsed (math-verify's time grows with them)
MAX_OUTPUT_CHARS = 16_384  # characters of a call's output the model reads (verl's max_tool_response_length)

# ------------------------------------------------------------------------------------------------- prompts
# Ours: what the tool is for, and the answer tag; short, so that most of the 2,048 prompt tokens are left to
# the problem.
SYSTEM_PROMPT = (
    "You are a careful mathematician with a Python interpreter. Solve the problem step by step. Whenever a "
    "computation is long or easy to get wrong, call the code_interpreter tool with Python code that prints "
    "what you need; its output comes back to you. When you are sure, give the final answer alone inside "
    "<answer></answer>, for example <answer>42</answer>."
)
# SPEAR's (verl/recipe/spear/retool.py): no system message; the problem (DAPO's rows keep DAPO's own
# instruction around it), then this line.
SPEAR_ANSWER_FORMAT = "\nThe answer format must be: \\boxed{'The final answer goes here.'}"
# retool.py's WRAPPER_CODE: SandboxFusion runs every call's code after these imports (common standard library
# modules, star-imported and by name, and numpy as np), so the policy may use sqrt or Counter unimported.
_PRELUDE_MODULES = (
    "string re datetime collections heapq bisect copy math random statistics itertools functools operator io "
    "sys json"
).split()
SPEAR_PRELUDE = "".join(
    ["import traceback\n"]
    + [f"from {m} import *\n" for m in (*_PRELUDE_MODULES, "builtins", "typing")]
    + [f"import {m}\n" for m in _PRELUDE_MODULES]
    + ["import numpy as np\n"]
)
DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'


def spear_user_text(problem: str, kind: str) -> str:
    """The user message of SPEAR's recipe: DAPO-Math-17k's prompt as the dataset has it (the problem inside
    DAPO's instruction) or another problem alone, followed by SPEAR's answer-format line."""
    text = DAPO_PREFIX + problem + DAPO_SUFFIX if kind == "dapo_math" else problem
    return text + SPEAR_ANSWER_FORMAT


# ---------------------------------------------------------------------------------------------------- data
def data_root() -> Path | None:
    """``$MATH_DATA``, the folder of the prepared files (None when unset)."""
    root = os.environ.get("MATH_DATA")
    return Path(root).expanduser() if root else None


def split_files(split: str) -> list[Path]:
    """The files of a split: shipped, or in ``$MATH_DATA`` (ValueError for a prepared split without it)."""
    if split in SHIPPED:
        return [DATA_DIR / f"{split}.jsonl"]
    if split not in PREPARED:
        raise ValueError(f"unknown math_python split {split!r}; valid: {', '.join((*SHIPPED, *PREPARED))}")
    root = data_root()
    if root is None:
        raise ValueError(missing_sentence(split))
    return [root / name for name in PREPARED[split]]


def missing_sentence(split: str) -> str | None:
    """Why a split's files cannot be read, in one sentence naming scripts/prepare_math.py, or None."""
    if split in SHIPPED or split not in PREPARED:
        return None
    root = data_root()
    missing = [name for name in PREPARED[split] if root is None or not (root / name).is_file()]
    if not missing:
        return None
    where = f"MATH_DATA={root} lacks {', '.join(missing)}" if root else "MATH_DATA is not set"
    return (
        f"env=math_python split {split!r} reads {', '.join(PREPARED[split])} from $MATH_DATA, and {where}: "
        f"fetch them with `python scripts/prepare_math.py DIR` on a connected machine, then set "
        f"MATH_DATA=DIR."
    )


@lru_cache(maxsize=16)
def _load(paths: tuple[Path, ...], stamps: tuple[float, ...]) -> tuple[dict[str, str], ...]:
    rows = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not (isinstance(row, dict) and isinstance(row.get("problem"), str) and "answer" in row):
                raise ValueError(f"{path}:{number}: expected {{'problem': ..., 'answer': ..., 'kind': ...}}")
            rows.append(
                {"problem": row["problem"], "answer": str(row["answer"]), "kind": str(row.get("kind"))}
            )
    return tuple(rows)


def load_split(split: str) -> tuple[dict[str, str], ...]:
    """The problems of a split, in file order (cached while its files are unchanged)."""
    problem = missing_sentence(split)
    if problem:
        raise FileNotFoundError(problem)
    paths = tuple(split_files(split))
    return _load(paths, tuple(p.stat().st_mtime for p in paths))


# ------------------------------------------------------------------------------------------------- grading
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_BOXED = "\\boxed{"


def plain_number(text: str) -> Fraction | None:
    """The value of a plain decimal number (``42``, ``-3.50``, ``1,000``; inside ``$…$`` or ``\\boxed{…}``
    too), else None."""
    text = text.strip().strip("$").strip()
    if text.startswith(_BOXED) and text.endswith("}"):
        text = text[len(_BOXED) : -1].strip()
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+", text):
        text = text.replace(",", "")
    return Fraction(text) if _NUMBER.fullmatch(text) else None


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` of ``text`` (braces balanced), else None."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, i = 1, start + len(_BOXED)
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + len(_BOXED) : i]
        i += 1
    return None


def as_latex(text: str) -> str:
    """The answer as math-verify reads it best: as it is when it has its own delimiters (``$…$``, ``\\(…\\)``,
    ``\\boxed{…}``), else inside ``\\boxed{…}`` (bare, ``2\\sqrt{2}`` would be read as 2)."""
    return text if any(mark in text for mark in ("$", "\\(", "\\[", _BOXED)) else f"{_BOXED}{text}}}"


def _math_verify(answer: str, gold: str) -> bool:
    """math-verify's verdict, without its signal-based timeouts (which only work in the main thread)."""
    from math_verify import parse, verify

    gold_parsed = parse(as_latex(gold), parsing_timeout=None) or parse(gold, parsing_timeout=None)
    answer_parsed = parse(as_latex(answer), parsing_timeout=None) or parse(answer, parsing_timeout=None)
    if not gold_parsed or not answer_parsed:
        return False
    return bool(verify(gold_parsed, answer_parsed, timeout_seconds=None))


def within(seconds: float, fn: Callable[[], bool]) -> bool:
    """``fn()`` in a daemon thread, given ``seconds``; False if it runs over or raises. (Python cannot stop a
    thread: one that runs over finishes in the background and its result is dropped.)"""
    result: list[bool] = []

    def run() -> None:
        try:
            result.append(bool(fn()))
        except Exception:  # noqa: BLE001 - a grader error is a wrong answer, never a crashed episode
            result.append(False)

    worker = threading.Thread(target=run, name="math-verify", daemon=True)
    worker.start()
    worker.join(seconds)
    return bool(result and result[0])


@lru_cache(maxsize=1)
def _import_math_verify() -> None:
    """Import math-verify here, not in the timed thread (the first import takes about a second), and quiet
    its once-per-process warning that its own timeouts are off (`within` times it instead)."""
    import math_verify  # noqa: F401

    logging.getLogger("math_verify").setLevel(logging.ERROR)


def grade(answer: str, gold: str, timeout_s: float = 5.0) -> bool:
    """Whether ``answer`` (the final answer's text) equals ``gold``: exactly for plain numbers, else by
    math-verify within ``timeout_s``. Never raises."""
    try:
        text = str(answer).strip()
        if not text or len(text) > MAX_ANSWER_CHARS:
            return False
        mine, theirs = plain_number(text), plain_number(str(gold))
        if mine is not None and theirs is not None:
            return mine == theirs
        _import_math_verify()
        return within(timeout_s, lambda: _math_verify(text, str(gold)))
    except Exception:  # noqa: BLE001 - hostile input: a wrong answer, never an exception
        return False


# ------------------------------------------------------------------------------------------------- lesson
LESSON_TOOL_CALL = (
    '<tool_call>\n{{"name": "code_interpreter", "arguments": {{"code": "print({expr})"}}}}\n</tool_call>'
)


def _lesson_problem(rng: random.Random) -> tuple[str, str, int]:
    """A one-line problem, the Python expression that solves it, and its answer."""
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    op = rng.choice(("+", "*", "-"))
    value = {"+": a + b, "*": a * b, "-": a - b}[op]
    word = {"+": "the sum of", "*": "the product of", "-": "the difference of"}[op]
    return f"What is {word} {a} and {b}?", f"{a} {op} {b}", value


# --------------------------------------------------------------------------------------------- environment
@register_env("math_python")
class MathPython(ToolEnvironment):
    """One math problem per episode, with the code interpreter.

    ``info``: ``task`` (the problem), ``task_type``, ``admissible_actions`` (empty: any text), ``style``,
    ``kind``, ``won``, ``score``, ``turns``, ``tool_calls`` (this turn's interpreter calls),
    ``total_tool_calls``, ``answer`` (the graded answer, None before), ``truncated``.

    Args:
        max_steps: turns per episode before it is cut (SPEAR: max_turns=8).
        timeout_s: wall-clock and CPU seconds per interpreter call (SPEAR: default_timeout 30).
        memory_mb: memory per interpreter call (SPEAR: memory_limit_mb 1024).
        style: ``agent_rl`` (system prompt, ``<answer>`` tag) or ``spear`` (SPEAR's prompt, ``\\boxed{}``).
        grade_timeout_s: seconds math-verify may take per answer.
        max_output_chars: characters of a call's stdout and stderr returned (verl's max_tool_response_length).
    """

    title = "Math with Python"
    # Every split a config may name; a prepared one whose files are missing is refused by `check`, with the
    # sentence that names scripts/prepare_math.py (agent-rl checks the split names first, so a split left out
    # here would be refused without saying where its data comes from).
    splits = (*SHIPPED, *PREPARED)
    checks_task_counts = True  # $MATH_DATA must hold the same files on every node
    ram_per_env_gb = 0.3
    data_variables = ("MATH_DATA",)
    tools = (SCHEMA,)
    counted_tool = TOOL_NAME

    # -- tasks -----------------------------------------------------------------------------------------------
    @classmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        return [({"split": split, "index": i}, row["kind"]) for i, row in enumerate(load_split(split))]

    def task_count(self, split: str) -> int | None:
        return len(load_split(split))

    @classmethod
    def check(cls, config: Any) -> str | None:
        """A chosen prepared split without its files, a style that does not exist, or no sandbox here."""
        env = config.env
        for key in ("train_split", "val_split"):
            problem = missing_sentence(str(env.get(key)))
            if problem:
                return problem
        style = (env.get("env_kwargs") or {}).get("style", "agent_rl")
        if style not in STYLES:
            return f"env.env_kwargs.style={style!r} is not a math_python style; valid: {', '.join(STYLES)}."
        return sandbox_missing()

    # -- the conversation's start ----------------------------------------------------------------------------
    @classmethod
    def messages(cls, task: str, info: Info) -> list[dict[str, str]]:
        if info.get("style") == "spear":
            return [{"role": "user", "content": spear_user_text(task, str(info.get("kind")))}]
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": task}]

    # -- the simulator ---------------------------------------------------------------------------------------
    def __init__(
        self,
        max_steps: int = 8,
        timeout_s: float = 30.0,
        memory_mb: int = 1024,
        style: str = "agent_rl",
        grade_timeout_s: float = 5.0,
        max_output_chars: int = MAX_OUTPUT_CHARS,
    ) -> None:
        if style not in STYLES:
            raise ValueError(f"math_python style must be one of {', '.join(STYLES)}, not {style!r}")
        self.max_steps = int(max_steps)
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self.style = style
        self.grade_timeout_s = float(grade_timeout_s)
        self.max_output_chars = int(max_output_chars)
        self._tool: Callable[[dict[str, Any]], str] | None = None
        self._gold = ""
        self._done = True
        self._info: Info = {}

    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        if spec.get("name", self.name) != self.name:
            raise ValueError(f"spec is for {spec.get('name')!r}, not {self.name}")
        if "problem" in spec:
            row = {"problem": str(spec["problem"]), "answer": str(spec["answer"]), "kind": spec.get("kind")}
        else:
            row = load_split(spec.get("split", "train"))[int(spec.get("index", 0))]
        kind = str(row.get("kind") or "custom")
        self._gold, self._done = row["answer"], False
        self._info = {
            "task": row["problem"],
            "task_type": kind,
            "admissible_actions": [],
            "style": self.style,
            "kind": kind,
            "won": False,
            "score": 0.0,
            "turns": 0,
            "tool_calls": 0,
            "total_tool_calls": 0,
            "answer": None,
            "truncated": False,
        }
        return row["problem"], dict(self._info)

    def step(self, turn: Any) -> tuple[list[str], float, bool, Info]:  # type: ignore[override]
        if self._done:
            return [], 0.0, True, dict(self._info, tool_calls=0)
        calls = self._calls(turn)
        results = [self._run(call) for call in calls]
        counted = sum(1 for call in calls if getattr(call, "name", None) == self.counted_tool)
        self._info["turns"] += 1
        self._info.update(tool_calls=counted, total_tool_calls=self._info["total_tool_calls"] + counted)
        answer = self._final_answer(turn, calls)
        if answer is not None:
            won = grade(answer, self._gold, self.grade_timeout_s)
            self._info.update(answer=answer, won=won, score=1.0 if won else 0.0)
            self._done = True
        elif self._info["turns"] >= self.max_steps:
            self._info["truncated"] = self._done = True
        won = bool(self._info["won"])
        return results, float(won), self._done, dict(self._info)

    def close(self) -> None:
        self._tool, self._done = None, True

    # -- pieces of a step ------------------------------------------------------------------------------------
    @staticmethod
    def _calls(turn: Any) -> list[Any]:
        """The turn's calls as a list; anything that is not a sequence of calls gives none."""
        calls = getattr(turn, "calls", ())
        return list(calls) if isinstance(calls, list | tuple) else []

    def _final_answer(self, turn: Any, calls: list[Any]) -> str | None:
        """The answer to grade: ``turn.answer``; with ``style=spear`` also a turn without a well-formed call,
        where verl's tool agent loop ends the episode: its last ``\\boxed{}`` ("" when it has none, a wrong
        answer as SPEAR's grader scores it)."""
        answer = getattr(turn, "answer", None)
        if isinstance(answer, str):
            return answer
        if self.style == "spear" and not calls:
            content = getattr(turn, "content", "")
            return last_boxed(content if isinstance(content, str) else "") or ""
        return None

    def _interpreter(self) -> Callable[[dict[str, Any]], str]:
        """The sandboxed interpreter, built on first use with this environment's limits."""
        if self._tool is None:
            limits = Limits(
                wall_s=self.timeout_s,
                cpu_s=max(1, round(self.timeout_s)),
                memory_mb=self.memory_mb,
                output_chars=self.max_output_chars,
            )
            self._tool = PythonTool(limits=limits)
        return self._tool

    def _run(self, call: Any) -> str:
        """One call's output text; an error text for anything that cannot run. Never raises."""
        name, arguments = getattr(call, "name", None), getattr(call, "arguments", None)
        if name != TOOL_NAME:
            return f"Error: unknown tool {name!r}; the only tool is {TOOL_NAME}."
        if not isinstance(arguments, dict) or not isinstance(arguments.get("code"), str):
            return 'Error: code_interpreter takes {"code": "<Python source>"}.'
        try:
            if self.style == "spear":
                arguments = {**arguments, "code": SPEAR_PRELUDE + arguments["code"]}
            return str(self._interpreter()(arguments))
        except Exception as err:  # noqa: BLE001 - the episode goes on; the model reads what went wrong
            return f"Error: the interpreter failed ({type(err).__name__}: {err})."

    # -- the tiny model's lesson -----------------------------------------------------------------------------
    @classmethod
    def lesson_corpus(cls) -> list[str]:
        """The system prompt, the shipped training problems and the two answer forms, for the tiny model's
        tokenizer (``model.lesson=math_python``)."""
        rng = random.Random(0)
        out = [SYSTEM_PROMPT, SPEAR_ANSWER_FORMAT, json.dumps(SCHEMA)]
        out += [row["problem"] for row in load_split("train")]
        for _ in range(100):
            problem, expr, value = _lesson_problem(rng)
            out += [problem, LESSON_TOOL_CALL.format(expr=expr), f"<answer>{value}</answer>"]
        return out

    @classmethod
    def lesson_example(cls, rng: random.Random) -> tuple[list[dict[str, str]], str]:
        """A first turn's messages (a one-line sum, product or difference) answered with a well-formed
        interpreter call or with the right ``<answer>``, half and half. The messages carry no tool
        rendering: the lesson teaches the answer's form."""
        problem, expr, value = _lesson_problem(rng)
        messages = cls.messages(problem, {"style": "agent_rl"})
        answer = LESSON_TOOL_CALL.format(expr=expr) if rng.random() < 0.5 else f"<answer>{value}</answer>"
        return messages, answer
