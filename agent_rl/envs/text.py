"""What the text environments' prompts share: character caps, the history lines, and the instructions of
the ``<think>…</think><action>…</action>`` answer format (verl-agent's wording, verbatim).

Caps (a deviation from EPO, which has none besides WebShop's fallback): the task, the current observation
and every history observation are cut to ``max_entry_chars`` (default 4,000) characters, and every history
action to ``max_action_chars`` (default 256), keeping the head and appending ``" ...[N chars truncated]"``.
Observations of the built-in environments are far below the cap; ``None`` disables a cap.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_MAX_ENTRY_CHARS = 4000
DEFAULT_MAX_ACTION_CHARS = 256

THINK_ACT = (
    "You should first reason step-by-step about the current situation. This reasoning process MUST be "
    "enclosed within <think> </think> tags. \n"
)
CHOOSE_ADMISSIBLE = (
    "Once you've finished your reasoning, you should choose an admissible action for current step and "
    "present it within <action> </action> tags.\n"
)


def clip(text: object, limit: int | None) -> str:
    """``str(text)`` cut to ``limit`` characters plus a ``" ...[N chars truncated]"`` marker."""
    text = text if isinstance(text, str) else str(text)
    if limit is None or len(text) <= limit:
        return text
    limit = max(0, limit)
    return f"{text[:limit]} ...[{len(text) - limit} chars truncated]"


def recent(history: Sequence[tuple[str, str]], step: int, history_length: int) -> tuple[int, list]:
    """The last ``history_length`` pairs and the step number (1-based) of the first of them."""
    pairs = list(history[-history_length:]) if history_length > 0 else []
    return step - len(pairs) + 1, pairs


def pairs_history(pairs: list, first: int, max_entry: int | None, max_action: int | None) -> str:
    """``[Observation n: '…', Action n: '…']`` lines, numbered from ``first``."""
    return "".join(
        f"\n[Observation {n}: '{clip(obs, max_entry)}', Action {n}: '{clip(act, max_action)}']"
        for n, (obs, act) in enumerate(pairs, start=first)
    ).strip()


def from_templates(
    no_his_template: str,
    his_template: str,
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    obs: str,
    actions: str,
    history_length: int,
    max_entry: int | None,
    max_action: int | None,
) -> tuple[str, str | None]:
    """Fill a (no-history, history) template pair whose history is ``[Observation n: .., Action n: ..]``
    pairs; a template uses the fields it names (``task_description``, ``current_observation``,
    ``admissible_actions``, ``step_count``, ``history_length``, ``action_history``, ``current_step``) and
    ignores the others."""
    fields = {
        "task_description": clip(task, max_entry),
        "current_observation": obs,
        "admissible_actions": actions,
    }
    no_his = no_his_template.format(**fields)
    if step == 0 or history_length <= 0:
        return no_his, None
    first, pairs = recent(history, step, history_length)
    with_his = his_template.format(
        **fields,
        step_count=step,
        history_length=len(pairs),
        action_history=pairs_history(pairs, first, max_entry, max_action),
        current_step=step + 1,
    )
    return no_his, with_his
