"""Hermes tool calls (`agent_rl.envs.tools.calls`) and the tiny model's chat template with tools.

``fixtures/qwen2_5_chat_template.jinja`` is the ``chat_template`` value of the tokenizer_config.json that
Qwen publishes with Qwen/Qwen2.5-*-Instruct, JSON-decoded. No copy ships in the virtual environment and
nothing here may download, so it was taken from public copies of that value quoted in other repositories
(several agreed character for character, and with the part of Qwen2.5-3B-Instruct's file a public page
quotes); its sha256 is `QWEN_SHA256`. Conversations are rendered the way transformers renders them
(`render_jinja_template`: a sandboxed jinja2 with transformers' ``tojson``) and the rendered assistant turns
parsed back.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import time
from pathlib import Path

import jsonschema
import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from agent_rl.envs.tools import calls
from agent_rl.envs.tools.calls import ToolCall, ToolTurn, parse_tool_turn, render_tool_errors, tool_names
from agent_rl.models import tiny_model

QWEN_TEMPLATE = (Path(__file__).parent / "fixtures" / "qwen2_5_chat_template.jinja").read_text()
QWEN_SHA256 = "cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f"

# The tiny model's template before tools (commit bf14ffa): without tools the new one must render the same.
OLD_TINY_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CODE = {
    "type": "function",
    "function": {
        "name": "code_interpreter",
        "description": "Run Python code and return what it prints.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The code to run."}},
            "required": ["code"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "top_k": {"type": "integer", "minimum": 1, "maximum": 10},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
}
TOOLS = [CODE, SEARCH]


def render(template: str, messages: list[dict], tools: list[dict] | None = None, prompt: bool = False) -> str:
    """``messages`` rendered the way transformers' ``apply_chat_template(tokenize=False)`` does."""
    rendered, _ = render_jinja_template(
        conversations=[messages], tools=tools, chat_template=template, add_generation_prompt=prompt
    )
    return rendered[0]


def assistant_turns(rendered: str) -> list[str]:
    """The texts of the rendered assistant turns (between ``<|im_start|>assistant\\n`` and ``<|im_end|>``)."""
    parts = rendered.split("<|im_start|>assistant\n")[1:]
    return [part.split("<|im_end|>")[0] for part in parts]


def openai_call(name: str, arguments: dict) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def chat(content: str | None, tool_calls: list[dict]) -> list[dict]:
    return [
        {"role": "system", "content": "You solve tasks with tools."},
        {"role": "user", "content": "What is 2 + 3? Also find the capital of France."},
        {"role": "assistant", "content": content, "tool_calls": tool_calls},
    ]


# ------------------------------------------------------------------------------ Qwen2.5's own template


def test_qwen_fixture_is_the_expected_text():
    assert hashlib.sha256(QWEN_TEMPLATE.encode()).hexdigest() == QWEN_SHA256


ONE_CALL = [openai_call("code_interpreter", {"code": "print(2 + 3)"})]
TWO_CALLS = ONE_CALL + [openai_call("search", {"query": "capital of France", "top_k": 3})]


@pytest.mark.parametrize("tool_calls", [ONE_CALL, TWO_CALLS], ids=["one_call", "two_calls"])
@pytest.mark.parametrize("content", ["", "Let me compute it first."], ids=["no_text", "text"])
def test_parser_recovers_the_calls_qwen_renders(tool_calls, content):
    rendered = render(QWEN_TEMPLATE, chat(content, tool_calls), tools=TOOLS)
    (text,) = assistant_turns(rendered)
    assert text.count("<tool_call>\n{") == len(tool_calls)
    turn = parse_tool_turn(text, TOOLS, max_calls=4)
    expected = tuple(ToolCall(c["function"]["name"], c["function"]["arguments"]) for c in tool_calls)
    assert turn == ToolTurn(calls=expected, content=content)
    assert turn.valid and turn.reason == ""


def test_qwen_renders_tool_messages_as_tool_responses_in_one_user_turn():
    messages = chat("", TWO_CALLS) + [
        {"role": "tool", "content": "5"},
        {"role": "tool", "content": "Paris"},
        {"role": "user", "content": "Thanks."},
    ]
    rendered = render(QWEN_TEMPLATE, messages, tools=TOOLS, prompt=True)
    responses = (
        "<|im_start|>user\n<tool_response>\n5\n</tool_response>\n<tool_response>\nParis\n</tool_response>"
    )
    assert responses + "<|im_end|>\n<|im_start|>user\nThanks.<|im_end|>\n" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")


def test_qwen_system_prompt_lists_the_tools():
    rendered = render(QWEN_TEMPLATE, chat("", ONE_CALL), tools=TOOLS)
    listed = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in TOOLS)
    assert rendered.startswith("<|im_start|>system\nYou solve tasks with tools.\n\n# Tools\n")
    assert f"<tools>\n{listed}\n</tools>" in rendered
    assert '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' in rendered


# ------------------------------------------------------------------------------ the tiny model's template

NO_TOOL_CHATS = [
    [{"role": "user", "content": "go to countertop 1"}],
    [{"role": "system", "content": "You are an agent."}, {"role": "user", "content": "look"}],
    [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "a\nb {{ not a template }} {% raw %} ünïcödé"},
        {"role": "assistant", "content": "<think>hm</think><action>look</action>"},
        {"role": "user", "content": ""},
    ],
    [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "tool_calls": []}],
]


@pytest.mark.parametrize("tools", [None, []], ids=["tools_none", "tools_empty"])
@pytest.mark.parametrize("prompt", [False, True], ids=["no_prompt", "prompt"])
@pytest.mark.parametrize("messages", NO_TOOL_CHATS)
def test_tiny_template_without_tools_is_byte_identical_to_the_old_one(messages, prompt, tools):
    expected = render(OLD_TINY_TEMPLATE, messages, prompt=prompt)
    assert render(tiny_model.CHAT_TEMPLATE, messages, tools=tools, prompt=prompt) == expected


@pytest.mark.parametrize("prompt", [False, True])
def test_tiny_template_with_tools_renders_as_qwen_does(prompt):
    """With a system message (the tiny template has no default one) and tools, the rendering is Qwen2.5's."""
    messages = chat("Let me see.", TWO_CALLS) + [
        {"role": "tool", "content": "5"},
        {"role": "tool", "content": "Paris"},
        {"role": "assistant", "content": "<answer>5, Paris</answer>"},
        {"role": "user", "content": "Again."},
        {"role": "assistant", "content": None, "tool_calls": ONE_CALL},
        {"role": "tool", "content": "5"},
    ]
    assert render(tiny_model.CHAT_TEMPLATE, messages, TOOLS, prompt) == render(
        QWEN_TEMPLATE, messages, TOOLS, prompt
    )


def test_tiny_template_with_tools_and_no_system_message():
    rendered = render(tiny_model.CHAT_TEMPLATE, [{"role": "user", "content": "hi"}], TOOLS, prompt=True)
    assert rendered.startswith("<|im_start|>system\n# Tools\n\nYou may call one or more functions")
    assert rendered.endswith(
        "</tool_call><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_tiny_template_keeps_string_arguments_as_given():
    call = {"type": "function", "function": {"name": "search", "arguments": '{"query": "x"}'}}
    (text,) = assistant_turns(render(tiny_model.CHAT_TEMPLATE, chat("", [call]), TOOLS))
    assert text == '<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call>'
    assert parse_tool_turn(text, TOOLS, 1).calls == (ToolCall("search", {"query": "x"}),)


# ------------------------------------------------------------------------------ the parser


def call_text(name: str = "code_interpreter", arguments: object = None, raw: str | None = None) -> str:
    """A Hermes block: the call of ``name`` with ``arguments``, or the ``raw`` body."""
    body = raw if raw is not None else json.dumps({"name": name, "arguments": arguments or {"code": "1"}})
    return f"<tool_call>\n{body}\n</tool_call>"


def raw(body: str) -> str:
    return call_text(raw=body)


CI = '{"name": "code_interpreter", "arguments": '


@pytest.mark.parametrize(
    "text, reason, message",
    [
        (raw(CI + '{"code": "1"}'), "bad_json", "invalid JSON"),
        (raw(""), "bad_json", "empty"),
        (raw(CI + '{"code": NaN}}'), "bad_json", "NaN"),
        (raw(CI + '{"x": 1e999}}'), "bad_json", "out of range"),
        (raw('{"name": "search", "arguments": {"top_k": ' + "9" * 200 + "}}"), "bad_json", "too long"),
        (raw("[" * 100_000), "bad_json", "nested too deeply"),
        (raw("[" * 200 + "]" * 200), "bad_json", "deeper than 64"),
        (raw('["code_interpreter"]'), "bad_json", "got an array"),
        (raw('{"arguments": {}}'), "bad_json", '"name" must be a string'),
        (
            call_text("pyhton"),
            "unknown_tool",
            "tool call 1: unknown tool 'pyhton'; available: code_interpreter,",
        ),
        (raw('{"name": "search"}'), "bad_arguments", '"arguments" is missing'),
        (raw('{"name": "search", "arguments": [1]}'), "bad_arguments", "got an array"),
        (raw('{"name": "search", "arguments": "{oops"}'), "bad_arguments", "not valid JSON"),
        (call_text("search", {"top_k": 3}), "bad_arguments", "'query' is a required property"),
        (
            call_text("search", {"query": "q", "top_k": "3"}),
            "bad_arguments",
            "(at top_k): '3' is not of type",
        ),
        (call_text("search", {"query": "q", "top_k": 99}), "bad_arguments", "99 is greater than the maximum"),
        (call_text("search", {"query": "q", "page": 2}), "bad_arguments", "Additional properties"),
        (
            "<tool_call>\n" + json.dumps({"name": "search", "arguments": {"query": "q"}}),
            "unclosed_tool_call",
            "",
        ),
        (call_text() * 5, "too_many_calls", "5 in one turn, at most 4 are run; call 5 not run"),
        ("I think the answer is 5.", "no_call_or_answer", None),
        ("<answer>5", "no_call_or_answer", None),
    ],
)
def test_each_error_kind(text, reason, message):
    turn = parse_tool_turn(text, TOOLS, max_calls=4)
    assert turn.reason == reason and not turn.valid
    if message is None:
        assert turn.errors == ()
    else:
        assert len(turn.errors) == 1 and message in turn.errors[0], turn.errors
        assert len(turn.errors[0]) <= calls.MAX_MESSAGE


def test_errors_name_the_call_and_calls_beyond_the_cap_are_not_run():
    text = call_text() + call_text("pyhton") + call_text("search", {"query": "q"}) + call_text() + call_text()
    turn = parse_tool_turn(text, TOOLS, max_calls=3)
    assert turn.calls == (ToolCall("code_interpreter", {"code": "1"}), ToolCall("search", {"query": "q"}))
    assert turn.errors == (
        "tool call 2: unknown tool 'pyhton'; available: code_interpreter, search",
        "too many tool calls: 5 in one turn, at most 3 are run; calls 4-5 not run",
    )
    assert turn.reason == "unknown_tool"  # the first error's
    assert render_tool_errors(turn) == [{"role": "tool", "content": e} for e in turn.errors]


def test_arguments_given_as_a_json_string_are_accepted():
    text = call_text(raw=json.dumps({"name": "search", "arguments": json.dumps({"query": "q"})}))
    assert parse_tool_turn(text, TOOLS, 1).calls == (ToolCall("search", {"query": "q"}),)


def test_answer_is_the_last_one_outside_the_calls_and_kept_with_calls():
    text = (
        "<answer>draft</answer> checking "
        + call_text(raw='{"name": "search", "arguments": {"query": "<answer>inside</answer>"}}')
        + " <answer> 42 </answer> done"
    )
    turn = parse_tool_turn(text, TOOLS, 2)
    assert turn.answer == "42"
    assert turn.calls == (ToolCall("search", {"query": "<answer>inside</answer>"}),)
    assert turn.content == "<answer>draft</answer> checking  <answer> 42 </answer> done"
    assert turn.valid and turn.reason == ""
    assert parse_tool_turn("<final>7</final>", TOOLS, 2, answer_tag="final").answer == "7"
    assert parse_tool_turn("<answer></answer>", TOOLS, 2).answer == ""
    assert parse_tool_turn("<answer>a<answer>b</answer>", TOOLS, 2).answer == "b"


def test_an_unclosed_call_takes_the_rest_of_the_text():
    turn = parse_tool_turn("before <tool_call>{...} <answer>5</answer>", TOOLS, 2)
    assert turn.content == "before" and turn.answer is None and turn.reason == "unclosed_tool_call"


def test_max_calls_zero_runs_nothing():
    turn = parse_tool_turn(call_text(), TOOLS, 0)
    assert turn.calls == () and turn.reason == "too_many_calls"


def test_configuration_errors_raise():
    bad = {"type": "function", "function": {"name": "bad", "parameters": {"type": "no-such-type"}}}
    with pytest.raises(ValueError, match="not a valid JSON schema"):
        parse_tool_turn(call_text("bad", {}), [bad], 1)
    with pytest.raises(ValueError, match="max_calls"):
        parse_tool_turn("", TOOLS, -1)


def test_tool_names():
    assert tool_names(TOOLS) == ["code_interpreter", "search"]


# ------------------------------------------------------------------------------ fuzzing

VALID_ANSWERS = [
    call_text("code_interpreter", {"code": "print(2 + 3)"}),
    "Let me check.\n" + call_text("search", {"query": "capital of France", "top_k": 2}),
    call_text("code_interpreter", {"code": "x = [1, {'a': 2}]\nprint(x)"})
    + "\n"
    + call_text("search", {"query": "ü"}),
    "<answer>5</answer>",
    "thinking " + call_text() + " <answer>Paris</answer>",
]
PIECES = [
    "<tool_call>", "</tool_call>", "<answer>", "</answer>", "{", "}", "[", "]", '"', ":", ",", "\\", "\\u",
    "\\ud800", "NaN", "Infinity", "-Infinity", "null", "true", "1e999", "9" * 500, "-0", '"name"',
    '"arguments"', "\n", "\x00", "\ud800", "\udfff", "\u2028", "🙂",
]  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    """One random damage: truncation, insertions, deletions, random characters, nesting, big numbers, wrong
    types, duplicated or unclosed tags."""
    at = rng.randint(0, len(text))
    kind = rng.randrange(10)
    if kind == 0:
        return text[:at]
    if kind == 1:
        return text[:at] + rng.choice(PIECES) + text[at:]
    if kind == 2:
        return text[:at] + text[at + rng.randint(1, 20) :]
    if kind == 3:
        noise = "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 30)))
        return text[:at] + noise + text[at:]
    if kind == 4:
        depth = rng.choice([10, 63, 65, 500, 5000, 50_000])
        return text[:at] + rng.choice("[{") * depth + text[at:]
    if kind == 5:
        return text.replace(
            '"code"', f'"code": {rng.choice(["9" * 5000, "1e400", "-1e999", "1.5e308"])}, "c"', 1
        )
    if kind == 6:
        wrong = rng.choice(["[]", "1", '"x"', "null", "true", '{"a": {"b": []}}', '"{\\"code\\": 1}"'])
        key = rng.choice(['"name": ', '"arguments": ', '"code": ', '"query": '])
        return text.replace(key, f'{key}{wrong}, "_": ', 1)  # the key's value is now `wrong`
    if kind == 7:
        tag = rng.choice(["<tool_call>", "</tool_call>", "<answer>", "</answer>"])
        return text[:at] + tag * rng.randint(1, 3) + text[at:]
    if kind == 8:
        return text.replace("</tool_call>", "", 1)
    return text * rng.randint(2, 6)


def fuzzed_answers(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    answers = []
    for _ in range(count):
        text = rng.choice(VALID_ANSWERS)
        for _ in range(rng.randint(1, 3)):
            text = mutate(text, rng)
        answers.append(text)
    return answers


def check_invariants(turn: ToolTurn, max_calls: int) -> None:
    assert isinstance(turn, ToolTurn)
    assert len(turn.calls) <= max_calls
    assert turn.reason in ("", *calls.REASONS)
    assert turn.valid == (turn.reason == "")
    assert all(isinstance(e, str) and 0 < len(e) <= calls.MAX_MESSAGE for e in turn.errors)
    assert isinstance(turn.content, str) and (turn.answer is None or isinstance(turn.answer, str))
    schemas = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
    for call in turn.calls:
        jsonschema.validate(call.arguments, schemas[call.name])
        json.dumps(call.arguments, allow_nan=False)  # re-encodable: finite numbers, shallow enough


def test_fuzzed_answers_never_raise():
    answers = fuzzed_answers(1000)
    kinds = {}
    for text in answers:
        turn = parse_tool_turn(text, TOOLS, max_calls=3)
        check_invariants(turn, 3)
        kinds[turn.reason] = kinds.get(turn.reason, 0) + 1
    # the mutations reach every outcome, valid turns included
    assert set(kinds) == {"", *calls.REASONS}, kinds


def test_huge_hostile_answers_are_parsed_in_linear_time():
    """Many unclosed tags, long bodies, deep nesting: each parse stays far under a second (a regex over
    many unclosed ``<answer>`` tags took 14 s on the first of these)."""
    answers = [
        "<answer>" * 20_000,
        "<tool_call>" * 100_000,
        "<tool_call></tool_call>" * 100_000,
        raw("[" * 1_000_000),
        call_text("code_interpreter", {"code": "x" * 1_000_000}),
        call_text("search", {"query": 1, "top_k": "q" * 1_000_000}),
    ]
    for text in answers:
        start = time.perf_counter()
        check_invariants(parse_tool_turn(text, TOOLS, max_calls=3), 3)
        assert time.perf_counter() - start < 1.0, text[:40]


def test_random_strings_never_raise():
    rng = random.Random(1)
    alphabet = string.printable + "".join(PIECES)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        check_invariants(parse_tool_turn(text, TOOLS, max_calls=2), 2)


# ------------------------------------------------------------------------------ continuous tokens (verl)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    """The tiny model's tokenizer as the runs load it: from the built (cached) model folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model.build_tiny_model())


def test_the_built_tokenizer_has_the_current_template(tiny_tokenizer):
    """The cache key hashes the template: a folder built with an older template is not reused."""
    assert tiny_tokenizer.chat_template == tiny_model.CHAT_TEMPLATE


def test_continuous_tokens_append_tool_responses_after_the_assistant_tokens(tiny_tokenizer):
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    tok = tiny_tokenizer
    builder = create_continuous_token_builder(tok, hf_model_type="qwen2")
    messages = [
        {"role": "system", "content": "You solve tasks."},
        {"role": "user", "content": "What is 2+3?"},
    ]
    prompt = builder.build_initial_tokens(messages, tools=[CODE])
    assert tok.decode(prompt) == render(tiny_model.CHAT_TEMPLATE, messages, [CODE], prompt=True)

    text = call_text("code_interpreter", {"code": "print(2+3)"}) + call_text(
        "code_interpreter", {"code": "1"}
    )
    assistant = tok.encode(text, add_special_tokens=False) + [tok.convert_tokens_to_ids("<|im_end|>")]
    merged = builder.merge_assistant_tokens(prompt, assistant)
    assert merged.token_ids == prompt + assistant

    previous = messages + [{"role": "assistant", "content": text}]
    updated = previous + [{"role": "tool", "content": "5"}, {"role": "tool", "content": "1"}]
    context = builder.merge_context_tokens(previous, updated, merged.token_ids, tools=[CODE])
    ids = context.token_ids
    assert ids[: len(prompt) + len(assistant)] == prompt + assistant  # the sampled ids, not re-encoded
    assert context.inserted_token_ids == tok.encode("\n", add_special_tokens=False)  # after <|im_end|>
    tail = tok.decode(ids[len(prompt) + len(assistant) :])
    tool_turn = "<|im_start|>user\n<tool_response>\n5\n</tool_response>\n<tool_response>\n1\n</tool_response>"
    assert tail == "\n" + tool_turn + "<|im_end|>\n<|im_start|>assistant\n"
    assert tok.decode(ids) == render(tiny_model.CHAT_TEMPLATE, updated, [CODE], prompt=True)
