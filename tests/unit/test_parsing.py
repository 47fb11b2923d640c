"""Tests for agent_rl.rollout.parsing: verl-agent's action projection, hardened.

``verl_agent_projection`` below is verl-agent's ``alfworld_projection`` / ``webshop_projection``
(EPO copy, ``agent_system/environments/env_package/*/projection.py``) for one response, kept as
the reference: where we call a step valid, verl-agent must too, with the same action.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time

import pytest

from agent_rl.rollout import parsing
from agent_rl.rollout.parsing import ParsedAction, parse_action


def verl_agent_projection(text: str, tail: int, lower: bool = True) -> tuple[str, int]:
    """verl-agent's projection of one response (ALFWorld: tail=30, WebShop: tail=20); with
    ``lower=False`` EPO's ``sciworld_projection`` (tail=20, no lower-casing)."""
    lowered = text.lower() if lower else text
    start_idx, end_idx = lowered.find("<action>"), lowered.find("</action>")
    if start_idx == -1 or end_idx == -1:
        return lowered[-tail:], 0
    action, valid = lowered[start_idx + len("<action>") : end_idx].strip(), 1
    if text.find("<think>") == -1 or text.find("</think>") == -1:
        valid = 0
    if re.search(r"[\u4e00-\u9fff]", text):
        valid = 0
    return action, valid


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def oracle(text: str, tail: int, lower: bool) -> ParsedAction:
    """An independent statement of our rules (str.find on an ASCII-lower-cased copy)."""
    folded = text.translate(_ASCII_LOWER) if lower else text
    a0, a1 = folded.find("<action>"), folded.find("</action>")
    if a0 == -1 or a1 == -1:
        t = text[-tail:] if tail else ""
        return ParsedAction(t.lower() if lower else t, False, "missing_action_tags")
    if a1 < a0:
        return ParsedAction("", False, "misordered_action_tags")
    action = text[a0 + 8 : a1].strip()
    action = action.lower() if lower else action
    if not action:
        return ParsedAction(action, False, "empty_action")
    t0 = text.find("<think>")
    t1 = text.find("</think>", t0 + 7) if t0 != -1 else -1
    if t1 == -1:
        return ParsedAction(action, False, "missing_think_tags")
    if not text[t0 + 7 : t1].strip():
        return ParsedAction(action, False, "empty_think")
    if any("\u4e00" <= c <= "\u9fff" for c in text):
        return ParsedAction(action, False, "chinese_characters")
    return ParsedAction(action, True, "ok")


GOOD = "<think>The mug is on the counter.</think>\n<action>Take Mug 1 from Countertop 1</action>"


# ------------------------------------------------------------------------------------------- basics
def test_valid_response():
    assert parse_action(GOOD, "alfworld") == ParsedAction("take mug 1 from countertop 1", True, "ok")
    assert parse_action(GOOD, "webshop").action == "take mug 1 from countertop 1"


def test_scienceworld_keeps_case_and_overrides():
    assert parse_action(GOOD, "scienceworld") == ParsedAction("Take Mug 1 from Countertop 1", True, "ok")
    assert parse_action(GOOD, "sciworld").action == "Take Mug 1 from Countertop 1"
    assert parse_action(GOOD, "scienceworld", lowercase=True).action == "take mug 1 from countertop 1"
    assert parse_action(GOOD, "alfworld", lowercase=False).action == "Take Mug 1 from Countertop 1"


def test_action_whitespace_stripped_and_first_block_wins():
    text = "<think>r</think><action>\n  go to desk 1 \t</action><action>look</action>"
    assert parse_action(text, "alfworld").action == "go to desk 1"
    nested = "<think>r</think><action><action>go</action></action>"
    assert parse_action(nested, "alfworld") == ParsedAction("<action>go", True, "ok")  # as verl-agent


def test_tag_case_follows_verl_agent():
    # verl-agent lower-cases before finding the action tags, but finds think tags in the raw text.
    assert parse_action("<think>r</think><Action>LOOK</ACTION>", "alfworld") == ParsedAction(
        "look", True, "ok"
    )
    assert parse_action("<THINK>r</THINK><action>look</action>", "alfworld").reason == "missing_think_tags"
    # EPO's ScienceWorld projection does not lower-case: upper-case action tags are not tags.
    parsed = parse_action("<think>r</think><ACTION>look</ACTION>", "scienceworld")
    assert parsed.reason == "missing_action_tags"


@pytest.mark.parametrize(("env", "tail"), [("alfworld", 30), ("webshop", 20), ("scienceworld", 20)])
def test_missing_action_tags_send_the_tail(env, tail):
    text = "<think>reasoning</think> I will now GO TO THE SHELF NUMBER ONE please"
    parsed = parse_action(text, env)
    expected = text[-tail:] if env == "scienceworld" else text[-tail:].lower()
    assert parsed == ParsedAction(expected, False, "missing_action_tags")
    assert len(parsed.action) == tail
    assert parse_action(text, env, fallback_chars=0) == ParsedAction("", False, "missing_action_tags")
    assert parse_action(text, env, fallback_chars=5).action == expected[-5:]
    assert parse_action("short", env).action == "short"


def test_webshop_tail_can_be_an_executable_command():
    # verl-agent sends the tail, which the env may execute: kept as the faithful default.
    parsed = parse_action("<think>ok</think> I am sure.          Click[Buy Now]", "webshop")
    assert parsed == ParsedAction("      click[buy now]", False, "missing_action_tags")


@pytest.mark.parametrize(
    "text",
    [
        "<think>r</think> <action>go",  # no closing tag
        "<think>r</think> go</action>",  # no opening tag
        "<think>r</think> <action >go</action>",
    ],
)
def test_broken_action_tags_are_missing(text):
    parsed = parse_action(text, "alfworld")
    assert not parsed.valid and parsed.reason == "missing_action_tags"
    assert parsed.action == text[-30:].lower()


@pytest.mark.parametrize(
    "text",
    [
        "<think>r</think> </action>go<action>",
        "<think>r</think> </action><action>go</action>",
    ],
)
def test_closing_tag_first_sends_empty_action_like_verl_agent_but_is_invalid(text):
    assert parse_action(text, "alfworld") == ParsedAction("", False, "misordered_action_tags")
    assert verl_agent_projection(text, 30) == ("", 1)


def test_empty_action_is_invalid():
    assert parse_action("<think>r</think><action> \n </action>", "alfworld") == ParsedAction(
        "", False, "empty_action"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<action>look</action>", "missing_think_tags"),
        ("<think>r <action>look</action>", "missing_think_tags"),
        ("</think>r<think><action>look</action>", "missing_think_tags"),
        ("<think> \n\t </think><action>look</action>", "empty_think"),
        ("<think></think><action>look</action>", "empty_think"),
        ("<think>我想</think><action>look</action>", "chinese_characters"),
        ("<think>r</think><action>look</action>\u9fff", "chinese_characters"),
        ("<think>r</think><action>look\u4e00</action>", "chinese_characters"),
    ],
)
def test_invalid_steps(text, reason):
    parsed = parse_action(text, "alfworld")
    assert parsed.reason == reason and not parsed.valid
    assert parsed.action.startswith("look")


def test_non_chinese_unicode_is_fine():
    for ch in ("\u4dff", "\ua000", "こんにちは", "한국어", "é", "\U0001f600"):
        assert parse_action(f"<think>{ch}</think><action>look</action>", "alfworld").valid, ch


@pytest.mark.parametrize("value", [None, 0, 1.5, [], {}, object()])
def test_non_strings_never_raise(value):
    assert parse_action(value, "alfworld") == ParsedAction("", False, "not_a_string")


def test_bytes_are_decoded():
    assert parse_action(GOOD.encode(), "alfworld").valid
    assert parse_action(b"\xff\xfe<think>x</think><action>go</action>", "alfworld").action == "go"


def test_unknown_env_raises_listing_valid_names():
    with pytest.raises(ValueError, match="alfworld, arith, frozenlake, math_python, scienceworld, webshop"):
        parse_action(GOOD, "babyai")
    with pytest.raises(ValueError):
        parse_action(GOOD, None)  # type: ignore[arg-type]


def test_parsed_action_is_frozen():
    parsed = parse_action(GOOD, "alfworld")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.valid = False  # type: ignore[misc]
    assert parsed.reason in parsing.REASONS


# ---------------------------------------------------------------------------------------------- fuzz
_PIECES = [
    "<action>",
    "</action>",
    "<think>",
    "</think>",
    "<ACTION>",
    "</Think>",
    "<action",
    "</",
    "<",
    ">",
    "/",
    "go to shelf 1",
    " ",
    "\n",
    "\t",
    "\x00",
    "\x1b[31m",
    "我",
    "\u9fff",
    "\u4dff",
    "İ",
    "ß",
    "K",
    "\ud800",
    "\U0001f600",
    "click[buy now]",
    "look",
    "é",
    "\r\n",
    "''",
    "{}",
    "\\",
]


def _structured(rng: random.Random) -> str:
    """A think + action response with random damage: dropped or swapped tags, noise, Chinese."""

    def noise() -> str:
        return "".join(rng.choice(_PIECES[10:]) for _ in range(rng.randint(0, 3)))

    parts = [
        noise(),
        "<think>",
        noise() + "reason",
        "</think>",
        noise(),
        "<action>",
        noise() + "go",
        "</action>",
        noise(),
    ]
    for _ in range(rng.choice([0, 0, 1, 2])):
        i = rng.randrange(len(parts))
        parts[i] = rng.choice(["", parts[rng.randrange(len(parts))], parts[i].upper(), " "])
    return "".join(parts)


def _random_text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return _structured(rng)
    if kind < 0.55:
        return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 25)))
    if kind < 0.8:  # arbitrary code points, surrogates and controls included
        return "".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randint(0, 60)))
    return "".join(chr(rng.randrange(0, 128)) for _ in range(rng.randint(0, 200)))


def test_fuzz_never_raises_and_matches_oracle_and_verl_agent():
    rng = random.Random(1234)
    envs = [("alfworld", 30, True), ("webshop", 20, True), ("scienceworld", 20, False)]
    agreed = 0
    for _ in range(6000):
        text = _random_text(rng)
        for env, tail, lower in envs:
            parsed = parse_action(text, env)
            assert isinstance(parsed, ParsedAction) and isinstance(parsed.action, str)
            assert parsed.reason in parsing.REASONS
            assert parsed.valid == (parsed.reason == "ok")
            assert parsed == oracle(text, tail, lower), (env, text)
            if len(text.lower()) != len(text):
                continue
            ref_action, ref_valid = verl_agent_projection(text, tail, lower)
            assert parsed.action == ref_action, text  # the env gets what verl-agent sends
            if parsed.valid:  # stricter than verl-agent, never more lenient
                assert ref_valid == 1, text
                agreed += 1
    assert agreed > 1000  # the fuzz does reach valid responses


def test_fuzz_wrapped_valid_responses_stay_valid():
    rng = random.Random(99)
    for _ in range(2000):
        action = "".join(rng.choice("abcdefghij 0123456789[]-") for _ in range(rng.randint(1, 30)))
        action = action.strip() or "x"
        noise = "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randint(0, 40)))
        noise = noise.replace("<", "")  # keep the tags themselves intact
        if any("\u4e00" <= c <= "\u9fff" for c in noise):
            continue
        text = f"{noise}<think>{noise}r</think>{noise}<action>{action}</action>{noise}"
        assert parse_action(text, "webshop") == ParsedAction(action.lower(), True, "ok"), text


# ------------------------------------------------------------------------------------------ speed
@pytest.mark.parametrize(
    "text",
    [
        "<action>" * 130_000,
        "<think>" * 150_000 + "<action>x</action>",
        "<" * 1_000_000,
        "</action><action>" * 60_000,
        "<think>" + " " * 1_000_000 + "</think><action>x</action>",
        "<think>r</think><action>" + "a" * 1_000_000 + "</action>" + "我",
        "<THINK" * 170_000,
        "x" * 1_000_000,
    ],
)
def test_one_megabyte_adversarial_strings_are_fast(text):
    assert len(text) >= 1_000_000
    start = time.perf_counter()
    for env in ("alfworld", "scienceworld"):
        parsed = parse_action(text, env)
        assert not parsed.valid or parsed.action == "x"
    assert time.perf_counter() - start < 0.5
