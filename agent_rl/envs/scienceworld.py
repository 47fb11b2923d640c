"""ScienceWorld (``scienceworld==1.2.3``, a Scala simulator in a JVM over py4j) as an `Environment`.

Each env owns one JVM, started with a capped heap (``-Xmx``) and the serial GC so
that dozens fit in RAM; ``scienceworld.ScienceWorldEnv`` itself offers no way to
pass JVM options, so `_Simulator` starts the gateway with them.

Spec: ``{"task": "boil" | 0, "variation": 3}``; ``task`` is a task name or an index
into `TASK_NAMES` (the simulator's order, which EPO's split files use). Optional
``"simplification"`` overrides the env's preset for that episode.

Success. The simulator marks a task complete when every ordered subgoal is done
(``PythonInterface.getCompleted``), which is also when its score reaches 100. A
failed task (for example focusing on the wrong object) scores -100 and is not
complete. So ``won = getCompleted() and score >= 100``. The episode also ends,
not won, when the score goes negative, when the simulator's move counter passes
``env_step_limit`` (a ``wait`` costs ~10 moves), or after ``max_steps`` actions.
EPO's ``won = done and score > 0`` is deliberately not used: it counts a partial
score at the move limit as a win.

Splits: `variations` gives the simulator's own train/dev/test variations;
`epo_split` rebuilds EPO's L0/L1/L2 lists from them (checked equal as sets to
EPO's ``variations_idx/L*_idx.json``):

* L0: train = train variations of tasks 0-28 (``use-thermometer`` excluded),
  test = their dev variations (EPO's "IID");
* L1: same train, test = test variations of tasks 0-28 ("OOD");
* L2: train = train variations of the 19 tasks not in `L2_HELD_OUT`,
  test = test variations of the 10 held-out task types.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Sequence
from typing import Any

from py4j.java_gateway import CallbackServerParameters, GatewayParameters, JavaGateway, launch_gateway
from scienceworld import ScienceWorldEnv as _UpstreamEnv
from scienceworld.constants import BASEPATH, JAR_PATH

from agent_rl.envs.api import AnswerFormat, Environment, Info, register_env
from agent_rl.envs.text import DEFAULT_MAX_ACTION_CHARS, DEFAULT_MAX_ENTRY_CHARS, THINK_ACT, clip, recent

# The simulator's task order (``ScienceWorldEnv.get_task_names()``), not ``scienceworld.constants.ID2TASK``.
TASK_NAMES = (
    "boil",
    "change-the-state-of-matter-of",
    "chemistry-mix",
    "chemistry-mix-paint-secondary-color",
    "chemistry-mix-paint-tertiary-color",
    "find-animal",
    "find-living-thing",
    "find-non-living-thing",
    "find-plant",
    "freeze",
    "grow-fruit",
    "grow-plant",
    "identify-life-stages-1",
    "identify-life-stages-2",
    "inclined-plane-determine-angle",
    "inclined-plane-friction-named-surfaces",
    "inclined-plane-friction-unnamed-surfaces",
    "lifespan-longest-lived",
    "lifespan-longest-lived-then-shortest-lived",
    "lifespan-shortest-lived",
    "measure-melting-point-known-substance",
    "measure-melting-point-unknown-substance",
    "melt",
    "mendelian-genetics-known-plant",
    "mendelian-genetics-unknown-plant",
    "power-component",
    "power-component-renewable-vs-nonrenewable-energy",
    "test-conductivity",
    "test-conductivity-of-unknown-substances",
    "use-thermometer",
)
SPLITS = ("train", "dev", "test")
# EPO's L2 held-out task types (tested on, never trained on).
L2_HELD_OUT = (
    "change-the-state-of-matter-of",
    "chemistry-mix-paint-tertiary-color",
    "find-plant",
    "grow-plant",
    "identify-life-stages-2",
    "inclined-plane-friction-unnamed-surfaces",
    "lifespan-longest-lived-then-shortest-lived",
    "measure-melting-point-unknown-substance",
    "mendelian-genetics-unknown-plant",
    "test-conductivity-of-unknown-substances",
)
DEFAULT_JVM_OPTS = ("-XX:+UseSerialGC",)


def task_name(task: str | int) -> str:
    """Task name from a name or a `TASK_NAMES` index."""
    if isinstance(task, int) or (isinstance(task, str) and task.isdigit()):
        if 0 <= int(task) < len(TASK_NAMES):
            return TASK_NAMES[int(task)]
    elif task in TASK_NAMES:
        return task
    raise ValueError(f"unknown ScienceWorld task {task!r}; valid: 0-29 or a name in TASK_NAMES")


class _Simulator(_UpstreamEnv):
    """``scienceworld.ScienceWorldEnv`` started with our JVM options (heap cap, GC).

    Upstream's ``__init__`` launches the gateway without ``javaopts``; this one mirrors
    it line for line and adds them.
    """

    def __init__(self, jvm_opts: tuple[str, ...], env_step_limit: int) -> None:  # noqa: D107
        port, proc = launch_gateway(
            classpath=JAR_PATH, die_on_exit=True, cwd=BASEPATH, javaopts=list(jvm_opts), return_proc=True
        )
        self._gateway = JavaGateway(
            gateway_parameters=GatewayParameters(auto_field=True, port=port),
            callback_server_parameters=CallbackServerParameters(port=0, daemonize=True),
            java_process=proc,
        )
        python_port = self._gateway.get_callback_server().get_listening_port()
        server = self._gateway.java_gateway_server
        server.resetCallbackClient(server.getCallbackClient().getAddress(), python_port)
        self.server = self._gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        self.lastStepScore = 0
        self.taskName = None
        self.envStepLimit = env_step_limit
        self.clear_run_histories()
        self.goldPathGenerated = False

    def __del__(self) -> None:  # the owner closes explicitly; never touch py4j at GC time
        pass


@functools.lru_cache(maxsize=1)
def _all_variations() -> dict[str, dict[str, tuple[int, ...]]]:
    env = ScienceWorldEnv(jvm_heap_mb=256)
    try:
        sim = env.sim
        out = {}
        for name in TASK_NAMES:
            sim.load(name, 0, "")
            out[name] = {
                "train": tuple(sim.get_variations_train()),
                "dev": tuple(sim.get_variations_dev()),
                "test": tuple(sim.get_variations_test()),
            }
        return out
    finally:
        env.close()


def variations(task: str | int, split: str) -> tuple[int, ...]:
    """The simulator's variation indices of a task in ``split`` (train/dev/test). Starts a JVM once."""
    if split not in SPLITS:
        raise ValueError(f"unknown ScienceWorld split {split!r}; valid: {', '.join(SPLITS)}")
    return _all_variations()[task_name(task)][split]


def split_specs(split: str, tasks: tuple[str, ...] = TASK_NAMES) -> list[dict[str, Any]]:
    """Specs for every variation of ``tasks`` in a simulator split."""
    return [{"name": "scienceworld", "task": t, "variation": v} for t in tasks for v in variations(t, split)]


def epo_split(level: str, part: str) -> list[dict[str, Any]]:
    """EPO's ScienceWorld splits: ``level`` in L0/L1/L2, ``part`` in train/test (see module doc)."""
    base = TASK_NAMES[:29]  # EPO leaves out use-thermometer
    if part not in ("train", "test"):
        raise ValueError(f"unknown EPO part {part!r}; valid: train, test")
    if level in ("L0", "L1"):
        if part == "train":
            return split_specs("train", base)
        return split_specs("dev" if level == "L0" else "test", base)
    if level == "L2":
        if part == "train":
            return split_specs("train", tuple(t for t in base if t not in L2_HELD_OUT))
        return split_specs("test", L2_HELD_OUT)
    raise ValueError(f"unknown EPO level {level!r}; valid: L0, L1, L2")


EPO_SPLITS = tuple(f"{level}-{part}" for level in ("L0", "L1", "L2") for part in ("train", "test"))


# ------------------------------------------------------------------------------------------------- prompt
# EPO's (agent_system/environments/prompts/sciworld.py, env_manager.py), verbatim: the fixed list of 25
# action descriptions, then the available-actions string "Valid_actions: [templates], OBJ needs to be replaced
# with one of the following objects: [objects]" (Python list reprs); the full list of valid action-object
# combinations (hundreds to thousands) is deliberately not printed, as in EPO. The history lists every
# earlier action as "[Step n, Action n: '…']" and the recent ones with their observations. Deviations: entries
# are numbered by their real step (EPO numbers the recent ones from len(buffer) - history_length, so its
# second step shows "Step 0"); without ``objects`` the "OBJ needs to be replaced" clause is left out; EPO's
# meta-thinking variant (<planning>/<explore>, off by default in EPO) is not implemented.
# ----------------------------------------------------------------------------------------- ScienceWorld
_SCIWORLD_INTRO = (
    "\nYou are an expert agent operating in the ScienceWorld environment, which is a text-based virtual "
    "environment centered around accomplishing tasks from the elementary science curriculum.\n"
    "Your current task is: {task_description}\n"
    "\n"
)
SCIWORLD_ACTION_DESCRIPTIONS = (
    ("open OBJ", "open a container"),
    ("close OBJ", "close a container"),
    ("activate OBJ", "activate a device"),
    ("deactivate OBJ", "deactivate a device"),
    ("connect OBJ to OBJ", "connect electrical components"),
    ("disconnect OBJ", "disconnect electrical components"),
    ("use OBJ [on OBJ]", "use a device/item"),
    ("look around", "describe the current room"),
    ("look at OBJ", "describe an object in detail"),
    ("look in OBJ", "describe a container's contents"),
    ("read OBJ", "read a note or book"),
    ("move OBJ to OBJ", "move an object to a container"),
    ("pick up OBJ", "move an object to the inventory"),
    ("put down OBJ", "drop an inventory item"),
    ("pour OBJ into OBJ", "pour a liquid into a container"),
    ("dunk OBJ into OBJ", "dunk a container into a liquid"),
    ("mix OBJ", "chemically mix a container"),
    ("go to LOC", "move to a new location"),
    ("eat OBJ", "eat a food"),
    ("flush OBJ", "flush a toilet"),
    ("focus on OBJ", "signal intent on a task object"),
    ("wait", "take no action for 10 iterations"),
    ("wait1", "take no action for 1 iteration"),
    ("task", "describe current task"),
    ("inventory", "list your inventory"),
)
# Braces doubled: the block is part of a str.format template.
_SCIWORLD_ACTIONS_BLOCK = (
    "Here are the actions you may take:\n[\n"
    + ",\n".join(f'{{{{"action": "{a}", "description": "{d}"}}}}' for a, d in SCIWORLD_ACTION_DESCRIPTIONS)
    + "\n]\n\nCurrent available actions:\n{available_actions}\n\n"
)
_SCIWORLD_CHOOSE = (
    "Once you've finished your reasoning, you should choose an appropriate action for the current step and "
    "present it within <action> </action> tags.\n"
)
SCIWORLD_TEMPLATE_NO_HIS = (
    _SCIWORLD_INTRO
    + "Your current observation is: {current_observation}\n"
    + _SCIWORLD_ACTIONS_BLOCK
    + "Now it's your turn to take an action.\n"
    + THINK_ACT
    + _SCIWORLD_CHOOSE
)
SCIWORLD_TEMPLATE = (
    _SCIWORLD_INTRO
    + "Prior to this step, you have already taken {step_count} step(s). Below are the most recent "
    "{history_length} observations and the corresponding actions you took: {action_history}\n"
    "You are now at step {current_step} and your current observation is: {current_observation}\n"
    + _SCIWORLD_ACTIONS_BLOCK
    + "Now it's your turn to take an action. You should first reason step-by-step about the current "
    "situation. This reasoning process MUST be enclosed within <think> </think> tags.\n" + _SCIWORLD_CHOOSE
)


def format_scienceworld_actions(templates: Sequence[str] | None, objects: Sequence[str] | None) -> str:
    """EPO's ``Valid_actions: [...], OBJ needs to be replaced with ... [...]`` string."""
    text = f"Valid_actions: {list(templates or ())}"
    if objects is not None:
        text += f", OBJ needs to be replaced with one of the following objects: {list(objects)}"
    return text + "\n example: <action>focus on door</action>"


def turn_prompt(
    task: str,
    step: int,
    history: Sequence[tuple[str, str]],
    observation: str,
    admissible_actions: Sequence[str] | None,
    history_length: int,
    *,
    objects: Sequence[str] | None = None,
    max_entry_chars: int | None = DEFAULT_MAX_ENTRY_CHARS,
    max_action_chars: int | None = DEFAULT_MAX_ACTION_CHARS,
) -> tuple[str, str | None]:
    """The no-history and (past the first step) the history content of one ScienceWorld step."""
    actions = format_scienceworld_actions(admissible_actions, objects)
    obs = clip(observation, max_entry_chars)
    task_text = clip(task, max_entry_chars)
    no_his = SCIWORLD_TEMPLATE_NO_HIS.format(
        task_description=task_text, current_observation=obs, available_actions=actions
    )
    if step == 0 or history_length <= 0:
        return no_his, None
    first, pairs = recent(history, step, history_length)
    earlier = list(history[: len(history) - len(pairs)])
    first_earlier = first - len(earlier)
    lines = [
        f"\n[Step {n}, Action {n}: '{clip(act, max_action_chars)}']"
        for n, (_, act) in enumerate(earlier, start=first_earlier)
    ]
    lines += [
        f"\n[Step {n}, Observation {n}: '{clip(o, max_entry_chars)}', Action {n}: "
        f"'{clip(a, max_action_chars)}']"
        for n, (o, a) in enumerate(pairs, start=first)
    ]
    with_his = SCIWORLD_TEMPLATE.format(
        task_description=task_text,
        step_count=step,
        history_length=len(pairs),
        action_history="".join(lines).strip(),
        current_step=step + 1,
        current_observation=obs,
        available_actions=actions,
    )
    return no_his, with_his


@register_env("scienceworld")
class ScienceWorldEnv(Environment):
    """One ScienceWorld JVM, reused across episodes.

    The first observation is the simulator's "look around". Reward is 1.0 on the step the
    task is won, else 0.0. ``info``: ``task`` (description), ``task_type`` (task name),
    ``variation``, ``admissible_actions`` (valid action-object combinations), ``objects``,
    ``action_templates`` (from reset), ``won``, ``failed``, ``score`` (progress in [0, 1]),
    ``raw_score`` (-100..100), ``moves`` (simulator clock), ``steps``, ``truncated``.

    Args:
        simplification: simulator simplifications; "easy" (EPO's preset) is teleport, open doors,
            self-watering pots and no electrical actions (kept for the electrical tasks).
        env_step_limit: the simulator's move limit (its ``envStepLimit``; EPO uses 100).
        max_steps: actions per episode before it is cut; None for no cut beyond the move limit.
        jvm_heap_mb: ``-Xmx`` of the JVM; 256 MB keeps its RSS near 350 MB (128 MB ran the longest
            gold paths too).
        jvm_opts: further JVM options.
        admissible: compute the valid action list every step (the costliest part of a step).
    """

    title = "ScienceWorld"
    splits = (*SPLITS, *EPO_SPLITS)
    answer = AnswerFormat(fallback_chars=20, lowercase=False)  # EPO's sciworld_projection: [-20:], no lower()
    ram_per_env_gb = 0.5
    paper_splits = {"iid": "L0-test", "ood": "L1-test"}  # EPO's IID and OOD sets

    @classmethod
    def tasks(cls, split: str, env_kwargs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        if split in EPO_SPLITS:
            level, part = split.split("-", 1)
            specs = epo_split(level, part)
        else:
            specs = split_specs(split)
        return [({**s}, s["task"]) for s in specs]

    @classmethod
    def turn_inputs(cls, info: Info, last: dict[str, Any] | None) -> dict[str, Any]:
        """The action templates of the episode (from reset) and the objects of the current state."""
        templates = info.get("action_templates")  # reset's, kept in every step's info
        actions = templates if templates else list(info.get("admissible_actions") or [])
        return {"admissible_actions": actions, "objects": info.get("objects", (last or {}).get("objects"))}

    prompt = staticmethod(turn_prompt)  # the module's templates, above

    @classmethod
    def check(cls, config: Any) -> str | None:
        if shutil.which("java") is None:
            return (
                "env=scienceworld runs its simulator in a JVM, and no `java` is on PATH; install a Java "
                "runtime (`apt-get install default-jre-headless`, which `make install` and "
                "`make install-gpu` do)."
            )
        return None

    def __init__(
        self,
        simplification: str = "easy",
        env_step_limit: int = 100,
        max_steps: int | None = None,
        jvm_heap_mb: int = 256,
        jvm_opts: tuple[str, ...] = DEFAULT_JVM_OPTS,
        admissible: bool = True,
    ) -> None:
        self.simplification = simplification
        self.env_step_limit = env_step_limit
        self.max_steps = max_steps
        self.admissible = admissible
        self.sim = _Simulator((f"-Xmx{jvm_heap_mb}m", *jvm_opts), env_step_limit)
        self._steps = 0
        self._done = True
        self._info: Info = {}

    @property
    def jvm_pid(self) -> int:
        """Process id of this env's JVM."""
        return self.sim._gateway.java_process.pid

    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        if spec.get("name", self.name) != self.name:
            raise ValueError(f"spec is for {spec.get('name')!r}, not {self.name}")
        name, variation = self._task_and_variation(spec)
        simplification = spec.get("simplification", self.simplification)
        self.sim.load(name, variation, simplification)
        self.sim.envStepLimit = self.env_step_limit
        obs, _ = self.sim.reset()  # "look around"
        self._steps = 0
        self._done = False
        self._info = {
            "task": self.sim.get_task_description(),
            "task_type": name,
            "variation": variation,
            "admissible_actions": self._admissible(),
            "action_templates": list(self.sim.get_possible_actions()),
            "objects": list(self.sim.get_possible_objects()),
            "won": False,
            "failed": False,
            "score": 0.0,
            "raw_score": 0,
            "moves": 0,
            "steps": 0,
            "truncated": False,
        }
        return obs, dict(self._info)

    def step(self, action: str) -> tuple[str, float, bool, Info]:
        if self._done:
            return "The episode is over.", 0.0, True, dict(self._info)
        server = self.sim.server
        obs = server.step(" ".join(str(action).split()))
        raw_score = int(round(100 * server.getScore()))
        completed = bool(server.getCompleted())
        moves = server.getNumMoves()
        self._steps += 1
        won = completed and raw_score >= 100
        failed = raw_score < 0
        out_of_moves = moves > self.env_step_limit
        truncated = not (won or failed) and (
            out_of_moves or (self.max_steps is not None and self._steps >= self.max_steps)
        )
        self._done = won or failed or truncated
        self._info.update(
            admissible_actions=self._admissible(),
            objects=list(self.sim.get_possible_objects()),
            won=won,
            failed=failed,
            score=max(raw_score, 0) / 100.0,
            raw_score=raw_score,
            moves=moves,
            truncated=truncated,
            steps=self._steps,
        )
        return obs, float(won), self._done, dict(self._info)

    def _task_and_variation(self, spec: dict[str, Any]) -> tuple[str, int]:
        name = task_name(spec["task"])
        variation = int(spec.get("variation", 0))
        if not 0 <= variation < self.sim.get_max_variations(name):
            raise ValueError(f"{name} has no variation {variation}")
        return name, variation

    def _admissible(self) -> list[str]:
        return list(self.sim.get_valid_action_object_combinations()) if self.admissible else []

    def gold_actions(self, spec: dict[str, Any]) -> list[str]:
        """The simulator's gold action sequence for a spec (loads the task with the gold path)."""
        name, variation = self._task_and_variation(spec)
        simplification = spec.get("simplification", self.simplification)
        self.sim.load(name, variation, simplification, generateGoldPath=True)
        self._done = True
        return list(self.sim.get_gold_action_sequence())

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def close(self) -> None:
        """Shut the gateway down and make sure the JVM is gone."""
        sim, self._done = getattr(self, "sim", None), True
        if sim is None:
            return
        proc = sim._gateway.java_process
        try:
            sim._gateway.shutdown()
        except Exception:  # noqa: BLE001 - a dead JVM cannot be shut down politely
            pass
        try:
            proc.stdin.write(b"\n")  # py4j's --die-on-broken-pipe JVM exits on stdin input/EOF
            proc.stdin.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            proc.kill()
            proc.wait(timeout=5)
        self.sim = None
