"""Tests for agent_rl.rollout.prompts: per-step prompts faithful to verl-agent / EPO.

The *_GOLDEN strings at the end of this file were produced by EPO's own templates
(``agent_system/environments/prompts/*.py``) and a line-for-line copy of EPO's ``build_text_obs``
(``env_manager.py``, HEAD 5b6fa98) on the inputs below; they are the reference for faithfulness.
"""

from __future__ import annotations

import pytest

from agent_rl.envs import text as env_text
from agent_rl.envs.webshop.env import format_webshop_observation
from agent_rl.rollout.prompts import build_prompt

# ----------------------------------------------------------------------------------------- fixtures
ALF_TASK = "put a clean mug in coffeemachine."
ALF_HIST = [
    (
        "-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room.\n\n"
        "Your task is to: put a clean mug in coffeemachine.",
        "go to countertop 1",
    ),
    ("You arrive at countertop 1. On the countertop 1, you see a mug 1.", "take mug 1 from countertop 1"),
    ("You pick up the mug 1 from the countertop 1.", "go to sinkbasin 1"),
]
ALF_OBS = "You arrive at sinkbasin 1. On the sinkbasin 1, you see nothing."
ALF_ADM = [
    "clean mug 1 with sinkbasin 1",
    "examine sinkbasin 1",
    "go to countertop 1",
    "help",
    "inventory",
    "look",
]

WS_TASK = "i need a slim power bank, and price lower than 40.00 dollars"
WS_FIRST = f"WebShop [SEP] Instruction: [SEP] {WS_TASK} [SEP] Search"


def ws_raw(page: str) -> str:
    return f"Instruction: [SEP] {WS_TASK} [SEP] {page}"


WS_HIST = [
    (WS_FIRST, "search[slim power bank]"),
    (
        ws_raw(
            "Back to Search [SEP] Page 1 (Total results: 2) [SEP] Next > [SEP] B01 [SEP] "
            "Slim Power Bank 10000mAh [SEP] $25.99"
        ),
        "click[b01]",
    ),
]
WS_OBS = ws_raw(
    "Back to Search [SEP] < Prev [SEP] color [SEP] black [SEP] Slim Power Bank 10000mAh "
    "[SEP] Price: $25.99 [SEP] Buy Now"
)
WS_ADM = ["click[back to search]", "click[< prev]", "click[black]", "click[buy now]"]

SW_TASK = "Your task is to boil water. First, focus on the substance."
SW_HIST = [
    ("This room is called the hallway.", "look around"),
    ("You teleport to the kitchen.", "teleport to kitchen"),
    ("This room is called the kitchen. In it, you see: a sink.", "focus on water"),
    ("You focus on the water.", "pick up pot"),
]
SW_OBS = "You move the metal pot to the inventory."
SW_TEMPLATES = ["activate OBJ", "focus on OBJ", "look around", "wait"]
SW_OBJECTS = ["sink", "metal pot", "water"]


def content(*args, **kwargs) -> str:
    messages = build_prompt(*args, **kwargs)
    assert isinstance(messages, list) and len(messages) == 1
    assert set(messages[0]) == {"role", "content"} and messages[0]["role"] == "user"
    return messages[0]["content"]


# ---------------------------------------------------------------------------- golden (EPO) prompts
def test_alfworld_matches_epo():
    assert content("alfworld", ALF_TASK, 3, ALF_HIST, ALF_OBS, ALF_ADM, 2) == ALFWORLD_GOLDEN
    assert content("alfworld", ALF_TASK, 0, [], ALF_HIST[0][0], ALF_ADM, 2) == ALFWORLD_NO_HIS_GOLDEN


def test_webshop_matches_epo_from_raw_observations():
    assert content("webshop", WS_TASK, 2, WS_HIST, WS_OBS, WS_ADM, 2) == WEBSHOP_GOLDEN
    assert content("webshop", WS_TASK, 0, [], WS_FIRST, ["search[<your query>]"], 2) == WEBSHOP_NO_HIS_GOLDEN


def test_scienceworld_matches_epo():
    got = content("scienceworld", SW_TASK, 4, SW_HIST, SW_OBS, SW_TEMPLATES, 2, objects=SW_OBJECTS)
    assert got == SCIWORLD_GOLDEN
    got = content(
        "scienceworld",
        SW_TASK,
        0,
        [],
        "This room is called the hallway.",
        SW_TEMPLATES,
        2,
        objects=SW_OBJECTS,
    )
    assert got == SCIWORLD_NO_HIS_GOLDEN


def test_sciworld_alias():
    got = content("sciworld", SW_TASK, 4, SW_HIST, SW_OBS, SW_TEMPLATES, 2, objects=SW_OBJECTS)
    assert got == SCIWORLD_GOLDEN


# ------------------------------------------------------------------------------------------ history
@pytest.mark.parametrize("env", ["alfworld", "webshop", "scienceworld"])
def test_first_step_and_zero_history_use_no_history_template(env):
    first = content(env, "the task", 0, [], "obs now", ["look"], 2)
    assert "Prior to this step" not in first and "obs now" in first
    later = content(env, "the task", 3, [("o1", "a1"), ("o2", "a2"), ("o3", "a3")], "obs now", ["look"], 0)
    assert later == content(env, "the task", 0, [], "obs now", ["look"], 2)
    hist = [("o1", "a1"), ("o2", "a2"), ("o3", "a3")]
    with_history = content(env, "the task", 3, hist, "obs now", ["look"], 2)
    assert "Prior to this step, you have already taken 3 step(s)" in with_history
    assert "You are now at step 4" in with_history


def test_alfworld_no_history_template_has_no_task_line_but_history_one_does():
    first = content("alfworld", "find the key", 0, [], "You are in a room.", [], 2)
    assert "find the key" not in first
    later = content("alfworld", "find the key", 1, [("You are in a room.", "look")], "Nothing.", [], 2)
    assert "Your task is to: find the key" in later


@pytest.mark.parametrize("env", ["alfworld", "webshop"])
def test_only_the_last_pairs_are_shown_numbered_by_step(env):
    hist = [(f"obs{i}", f"act{i}") for i in range(1, 6)]
    text = content(env, "t", 5, hist, "now", [], 2)
    assert "most recent 2 " in text
    assert "[Observation 4: 'obs4', Action 4: 'act4']\n[Observation 5: 'obs5', Action 5: 'act5']" in text
    assert "obs3" not in text and "act3" not in text
    # Passing only the tail of the history gives the same prompt.
    assert content(env, "t", 5, hist[-2:], "now", [], 2) == text
    # Fewer pairs than history_length: all shown, count says so.
    text = content(env, "t", 1, hist[:1], "now", [], 3)
    assert "most recent 1 " in text and "[Observation 1: 'obs1', Action 1: 'act1']" in text


def test_scienceworld_lists_all_earlier_actions_and_numbers_from_one():
    hist = [(f"obs{i}", f"act{i}") for i in range(1, 5)]
    text = content("scienceworld", "t", 4, hist, "now", ["wait"], 2)
    assert (
        "[Step 1, Action 1: 'act1']\n[Step 2, Action 2: 'act2']\n"
        "[Step 3, Observation 3: 'obs3', Action 3: 'act3']\n"
        "[Step 4, Observation 4: 'obs4', Action 4: 'act4']"
    ) in text
    assert "obs1" not in text and "obs2" not in text
    # EPO prints "Step 0" here (its numbering bug); we number by the real step.
    text = content("scienceworld", "t", 1, hist[:1], "now", ["wait"], 2)
    assert "[Step 1, Observation 1: 'obs1', Action 1: 'act1']" in text and "Step 0" not in text
    # A tail-only history keeps the numbering.
    text = content("scienceworld", "t", 4, hist[1:], "now", ["wait"], 2)
    assert "[Step 2, Action 2: 'act2']\n[Step 3, Observation 3:" in text and "act1" not in text


# ------------------------------------------------------------------------------------------ actions
def test_alfworld_actions_quoted_newline_separated_without_help():
    text = content("alfworld", "t", 0, [], "o", ["go to desk 1", "help", "look"], 2)
    assert "are: ['go to desk 1'\n 'look']." in text
    assert "'help'" not in text


def test_webshop_actions_one_per_line_with_commas():
    text = content("webshop", WS_TASK, 0, [], WS_FIRST, ["search[<your query>]", "click[buy now]"], 2)
    assert "[\n'search[<your query>]',\n'click[buy now]',\n]." in text


def test_scienceworld_available_actions_string():
    text = content("scienceworld", "t", 0, [], "o", ["open OBJ", "wait"], 2, objects=["door", "sink"])
    assert (
        "Current available actions:\nValid_actions: ['open OBJ', 'wait'], OBJ needs to be replaced with "
        "one of the following objects: ['door', 'sink']\n"
        " example: <action>focus on door</action>\n"
    ) in text
    assert text.count('{"action": ') == 25
    no_objects = content("scienceworld", "t", 0, [], "o", ["open OBJ", "wait"], 2)
    assert "Valid_actions: ['open OBJ', 'wait']\n example: <action>focus on door</action>" in no_objects
    assert "OBJ needs to be replaced" not in no_objects


def test_none_actions_are_empty():
    assert "are: []." in content("alfworld", "t", 0, [], "o", None, 2)


# ---------------------------------------------------------------------------------- webshop format
def test_webshop_observation_format():
    assert format_webshop_observation(WS_FIRST, WS_TASK) == "'Search'"
    formatted = format_webshop_observation(WS_OBS, WS_TASK)
    assert formatted.startswith("'Back to Search' [SEP] '< Prev' [SEP] 'color'")
    assert formatted.endswith("'Buy Now'")
    assert format_webshop_observation(formatted, WS_TASK) == formatted  # idempotent
    assert format_webshop_observation("no instruction here", WS_TASK) == "no instruction here"


def test_webshop_long_history_falls_back_to_no_history_template():
    big = ws_raw("x" * 7000)
    hist = [(big, "click[a]"), (big, "click[b]")]
    text = content("webshop", WS_TASK, 2, hist, WS_OBS, WS_ADM, 2, max_entry_chars=None)
    assert "Prior to this step" not in text
    assert text == content("webshop", WS_TASK, 0, [], WS_OBS, WS_ADM, 2)
    kept = content(
        "webshop", WS_TASK, 2, hist, WS_OBS, WS_ADM, 2, max_entry_chars=None, max_prompt_chars=None
    )
    assert "Prior to this step" in kept and len(kept) > 13000
    # Just below the limit the history is kept.
    small = ws_raw("x" * 5000)
    hist = [(small, "a"), (small, "b")]
    text = content("webshop", WS_TASK, 2, hist, WS_OBS, WS_ADM, 2, max_entry_chars=None)
    assert "Prior to this step" in text and len(text) <= 13000


def test_max_prompt_chars_applies_to_other_envs_when_set():
    hist = [("o" * 3000, "a")]
    assert "Prior to this step" in content("alfworld", "t", 1, hist, "now", [], 2)
    assert "Prior to this step" not in content("alfworld", "t", 1, hist, "now", [], 2, max_prompt_chars=2000)


# --------------------------------------------------------------------------------------------- caps
def test_entry_caps():
    long_obs = "a" * 10_000
    text = content("alfworld", "t", 1, [(long_obs, "b" * 1000)], long_obs, [], 2)
    cap, act_cap = env_text.DEFAULT_MAX_ENTRY_CHARS, env_text.DEFAULT_MAX_ACTION_CHARS
    assert text.count("a" * cap + f" ...[{10_000 - cap} chars truncated]") == 2
    assert "a" * (cap + 1) not in text
    assert "b" * act_cap + f" ...[{1000 - act_cap} chars truncated]'" in text
    assert "b" * (act_cap + 1) not in text
    uncapped = content(
        "alfworld",
        "t",
        1,
        [(long_obs, "b" * 1000)],
        long_obs,
        [],
        2,
        max_entry_chars=None,
        max_action_chars=None,
    )
    assert "truncated" not in uncapped and uncapped.count(long_obs) == 2 and "b" * 1000 in uncapped


def test_clip():
    assert env_text.clip("abc", 3) == "abc"
    assert env_text.clip("abcd", 3) == "abc ...[1 chars truncated]"
    assert env_text.clip("abcd", None) == "abcd"
    assert env_text.clip(12345, 2) == "12 ...[3 chars truncated]"


def test_braces_and_quotes_in_inputs_are_literal():
    text = content("scienceworld", "do {x}", 1, [("{obs}", "{act}")], "{current_observation}", ["{a}"], 2)
    assert "do {x}" in text and "'{obs}'" in text and "'{act}'" in text
    assert "observation is: {current_observation}\n" in text


# ------------------------------------------------------------------------------------------- errors
def test_unknown_env_lists_valid_names():
    with pytest.raises(ValueError, match="alfworld, arith, frozenlake, math_python, scienceworld, webshop"):
        build_prompt("babyai", "t", 0, [], "o", [], 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="step"):
        build_prompt("alfworld", "t", -1, [], "o", [], 2)
    with pytest.raises(ValueError, match="history has 2"):
        build_prompt("alfworld", "t", 1, [("o", "a"), ("o", "a")], "o", [], 2)
    with pytest.raises(ValueError, match="ScienceWorld"):
        build_prompt("alfworld", "t", 0, [], "o", [], 2, objects=["x"])


# ---------------------------------------------------------------------------------- golden strings
ALFWORLD_GOLDEN = (
    "\n"
    "You are an expert agent operating in the ALFRED Embodied Environment. Your task "
    "is to: put a clean mug in coffeemachine.\n"
    "Prior to this step, you have already taken 3 step(s). Below are the most recent "
    "2 observaitons and the corresponding actions you took: [Observation 2: 'You arri"
    "ve at countertop 1. On the countertop 1, you see a mug 1.', Action 2: 'take mug "
    "1 from countertop 1']\n"
    "[Observation 3: 'You pick up the mug 1 from the countertop 1.', Action 3: 'go to"
    " sinkbasin 1']\n"
    "You are now at step 4 and your current observation is: You arrive at sinkbasin 1"
    ". On the sinkbasin 1, you see nothing.\n"
    "Your admissible actions of the current situation are: ['clean mug 1 with sinkbas"
    "in 1'\n"
    " 'examine sinkbasin 1'\n"
    " 'go to countertop 1'\n"
    " 'inventory'\n"
    " 'look'].\n"
    "\n"
    "Now it's your turn to take an action.\n"
    "You should first reason step-by-step about the current situation. This reasoning"
    " process MUST be enclosed within <think> </think> tags. \n"
    "Once you've finished your reasoning, you should choose an admissible action for "
    "current step and present it within <action> </action> tags.\n"
)
WEBSHOP_GOLDEN = (
    "\n"
    "You are an expert autonomous agent operating in the WebShop e\u2011commerce environme"
    "nt.\n"
    "Your task is to: i need a slim power bank, and price lower than 40.00 dollars.\n"
    "Prior to this step, you have already taken 2 step(s). Below are the most recent "
    "2 observations and the corresponding actions you took: [Observation 1: ''Search'"
    "', Action 1: 'search[slim power bank]']\n"
    "[Observation 2: ''Back to Search' [SEP] 'Page 1 (Total results: 2)' [SEP] 'Next "
    ">' [SEP] 'B01' [SEP] 'Slim Power Bank 10000mAh' [SEP] '$25.99'', Action 2: 'clic"
    "k[b01]']\n"
    "You are now at step 3 and your current observation is: 'Back to Search' [SEP] '<"
    " Prev' [SEP] 'color' [SEP] 'black' [SEP] 'Slim Power Bank 10000mAh' [SEP] 'Price"
    ": $25.99' [SEP] 'Buy Now'.\n"
    "Your admissible actions of the current situation are: \n"
    "[\n"
    "'click[back to search]',\n"
    "'click[< prev]',\n"
    "'click[black]',\n"
    "'click[buy now]',\n"
    "].\n"
    "\n"
    "Now it's your turn to take one action for the current step.\n"
    "You should first reason step-by-step about the current situation, then think car"
    "efully which admissible action best advances the shopping goal. This reasoning p"
    "rocess MUST be enclosed within <think> </think> tags. \n"
    "Once you've finished your reasoning, you should choose an admissible action for "
    "current step and present it within <action> </action> tags.\n"
)
SCIWORLD_GOLDEN = (
    "\n"
    "You are an expert agent operating in the ScienceWorld environment, which is a te"
    "xt-based virtual environment centered around accomplishing tasks from the elemen"
    "tary science curriculum.\n"
    "Your current task is: Your task is to boil water. First, focus on the substance."
    "\n"
    "\n"
    "Prior to this step, you have already taken 4 step(s). Below are the most recent "
    "2 observations and the corresponding actions you took: [Step 1, Action 1: 'look "
    "around']\n"
    "[Step 2, Action 2: 'teleport to kitchen']\n"
    "[Step 3, Observation 3: 'This room is called the kitchen. In it, you see: a sink"
    ".', Action 3: 'focus on water']\n"
    "[Step 4, Observation 4: 'You focus on the water.', Action 4: 'pick up pot']\n"
    "You are now at step 5 and your current observation is: You move the metal pot to"
    " the inventory.\n"
    "Here are the actions you may take:\n"
    "[\n"
    '{"action": "open OBJ", "description": "open a container"},\n'
    '{"action": "close OBJ", "description": "close a container"},\n'
    '{"action": "activate OBJ", "description": "activate a device"},\n'
    '{"action": "deactivate OBJ", "description": "deactivate a device"},\n'
    '{"action": "connect OBJ to OBJ", "description": "connect electrical components"}'
    ",\n"
    '{"action": "disconnect OBJ", "description": "disconnect electrical components"},'
    "\n"
    '{"action": "use OBJ [on OBJ]", "description": "use a device/item"},\n'
    '{"action": "look around", "description": "describe the current room"},\n'
    '{"action": "look at OBJ", "description": "describe an object in detail"},\n'
    '{"action": "look in OBJ", "description": "describe a container\'s contents"},\n'
    '{"action": "read OBJ", "description": "read a note or book"},\n'
    '{"action": "move OBJ to OBJ", "description": "move an object to a container"},\n'
    '{"action": "pick up OBJ", "description": "move an object to the inventory"},\n'
    '{"action": "put down OBJ", "description": "drop an inventory item"},\n'
    '{"action": "pour OBJ into OBJ", "description": "pour a liquid into a container"}'
    ",\n"
    '{"action": "dunk OBJ into OBJ", "description": "dunk a container into a liquid"}'
    ",\n"
    '{"action": "mix OBJ", "description": "chemically mix a container"},\n'
    '{"action": "go to LOC", "description": "move to a new location"},\n'
    '{"action": "eat OBJ", "description": "eat a food"},\n'
    '{"action": "flush OBJ", "description": "flush a toilet"},\n'
    '{"action": "focus on OBJ", "description": "signal intent on a task object"},\n'
    '{"action": "wait", "description": "take no action for 10 iterations"},\n'
    '{"action": "wait1", "description": "take no action for 1 iteration"},\n'
    '{"action": "task", "description": "describe current task"},\n'
    '{"action": "inventory", "description": "list your inventory"}\n'
    "]\n"
    "\n"
    "Current available actions:\n"
    "Valid_actions: ['activate OBJ', 'focus on OBJ', 'look around', 'wait'], OBJ need"
    "s to be replaced with one of the following objects: ['sink', 'metal pot', 'water"
    "']\n"
    " example: <action>focus on door</action>\n"
    "\n"
    "Now it's your turn to take an action. You should first reason step-by-step about"
    " the current situation. This reasoning process MUST be enclosed within <think> <"
    "/think> tags.\n"
    "Once you've finished your reasoning, you should choose an appropriate action for"
    " the current step and present it within <action> </action> tags.\n"
)
SCIWORLD_NO_HIS_GOLDEN = (
    "\n"
    "You are an expert agent operating in the ScienceWorld environment, which is a te"
    "xt-based virtual environment centered around accomplishing tasks from the elemen"
    "tary science curriculum.\n"
    "Your current task is: Your task is to boil water. First, focus on the substance."
    "\n"
    "\n"
    "Your current observation is: This room is called the hallway.\n"
    "Here are the actions you may take:\n"
    "[\n"
    '{"action": "open OBJ", "description": "open a container"},\n'
    '{"action": "close OBJ", "description": "close a container"},\n'
    '{"action": "activate OBJ", "description": "activate a device"},\n'
    '{"action": "deactivate OBJ", "description": "deactivate a device"},\n'
    '{"action": "connect OBJ to OBJ", "description": "connect electrical components"}'
    ",\n"
    '{"action": "disconnect OBJ", "description": "disconnect electrical components"},'
    "\n"
    '{"action": "use OBJ [on OBJ]", "description": "use a device/item"},\n'
    '{"action": "look around", "description": "describe the current room"},\n'
    '{"action": "look at OBJ", "description": "describe an object in detail"},\n'
    '{"action": "look in OBJ", "description": "describe a container\'s contents"},\n'
    '{"action": "read OBJ", "description": "read a note or book"},\n'
    '{"action": "move OBJ to OBJ", "description": "move an object to a container"},\n'
    '{"action": "pick up OBJ", "description": "move an object to the inventory"},\n'
    '{"action": "put down OBJ", "description": "drop an inventory item"},\n'
    '{"action": "pour OBJ into OBJ", "description": "pour a liquid into a container"}'
    ",\n"
    '{"action": "dunk OBJ into OBJ", "description": "dunk a container into a liquid"}'
    ",\n"
    '{"action": "mix OBJ", "description": "chemically mix a container"},\n'
    '{"action": "go to LOC", "description": "move to a new location"},\n'
    '{"action": "eat OBJ", "description": "eat a food"},\n'
    '{"action": "flush OBJ", "description": "flush a toilet"},\n'
    '{"action": "focus on OBJ", "description": "signal intent on a task object"},\n'
    '{"action": "wait", "description": "take no action for 10 iterations"},\n'
    '{"action": "wait1", "description": "take no action for 1 iteration"},\n'
    '{"action": "task", "description": "describe current task"},\n'
    '{"action": "inventory", "description": "list your inventory"}\n'
    "]\n"
    "\n"
    "Current available actions:\n"
    "Valid_actions: ['activate OBJ', 'focus on OBJ', 'look around', 'wait'], OBJ need"
    "s to be replaced with one of the following objects: ['sink', 'metal pot', 'water"
    "']\n"
    " example: <action>focus on door</action>\n"
    "\n"
    "Now it's your turn to take an action.\n"
    "You should first reason step-by-step about the current situation. This reasoning"
    " process MUST be enclosed within <think> </think> tags. \n"
    "Once you've finished your reasoning, you should choose an appropriate action for"
    " the current step and present it within <action> </action> tags.\n"
)
ALFWORLD_NO_HIS_GOLDEN = (
    "\n"
    "You are an expert agent operating in the ALFRED Embodied Environment.\n"
    "Your current observation is: -= Welcome to TextWorld, ALFRED! =-\n"
    "\n"
    "You are in the middle of a room.\n"
    "\n"
    "Your task is to: put a clean mug in coffeemachine.\n"
    "Your admissible actions of the current situation are: ['clean mug 1 with sinkbas"
    "in 1'\n"
    " 'examine sinkbasin 1'\n"
    " 'go to countertop 1'\n"
    " 'inventory'\n"
    " 'look'].\n"
    "\n"
    "Now it's your turn to take an action.\n"
    "You should first reason step-by-step about the current situation. This reasoning"
    " process MUST be enclosed within <think> </think> tags. \n"
    "Once you've finished your reasoning, you should choose an admissible action for "
    "current step and present it within <action> </action> tags.\n"
)
WEBSHOP_NO_HIS_GOLDEN = (
    "\n"
    "You are an expert autonomous agent operating in the WebShop e\u2011commerce environme"
    "nt. \n"
    "Your task is to: i need a slim power bank, and price lower than 40.00 dollars.\n"
    "Your current observation is: 'Search'.\n"
    "Your admissible actions of the current situation are: \n"
    "[\n"
    "'search[<your query>]',\n"
    "].\n"
    "\n"
    "Now it's your turn to take one action for the current step.\n"
    "You should first reason step-by-step about the current situation, then think car"
    "efully which admissible action best advances the shopping goal. This reasoning p"
    "rocess MUST be enclosed within <think> </think> tags. \n"
    "Once you've finished your reasoning, you should choose an admissible action for "
    "current step and present it within <action> </action> tags.\n"
)
