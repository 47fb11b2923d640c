"""Author the small ALFWorld games shipped with agent_rl: one per task type.

The official ALFWorld games (3,553 train + valid_seen + valid_unseen) come from
ALFWorld's download script; where that cannot run, these six games stand in for
tests and demos. They follow the real pipeline of ``alfworld-generate``:

1. an ALFRED-style ``initial_state.pddl`` (objects, ``:init`` facts, and the goal
   taken verbatim from ``alfworld.gen.goal_library``), written here from a small
   scene description;
2. ``game.tw-pddl`` = ALFWorld's own ``alfred.pddl`` domain + ``alfred.twl2``
   grammar with the templated task text (``add_task_to_grammar``) + that problem;
3. a walkthrough found by ALFWorld's handcoded expert (the default of
   ``alfworld-generate``), falling back to the fast-downward planner, and
   ``solvable`` set once that walkthrough wins in the real TextWorld engine.

Regenerate with ``python -m agent_rl.envs.alfworld_games.author``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

GAMES_DIR = Path(__file__).parent

OPENABLE = {"Box", "Cabinet", "Drawer", "Fridge", "Microwave", "Safe"}


@dataclass(frozen=True)
class Scene:
    """A room: receptacles, objects placed in them, and the task's ALFRED parameters."""

    task_type: str
    object_target: str
    parent_target: str
    receptacles: tuple[str, ...]  # receptacle types; repeats give "cabinet 1", "cabinet 2"
    objects: tuple[tuple[str, int], ...]  # (object type, index into receptacles)
    toggle_target: str = ""

    @property
    def dirname(self) -> str:
        toggle = self.toggle_target or "None"
        parent = self.parent_target if self.task_type != "look_at_obj_in_light" else toggle
        return f"{self.task_type}-{self.object_target}-None-{parent}-1/trial_T0"


KITCHEN = (
    "Cabinet",
    "Cabinet",
    "CounterTop",
    "Drawer",
    "Fridge",
    "Microwave",
    "SinkBasin",
    "DiningTable",
    "StoveBurner",
    "GarbageCan",
    "Shelf",
)
BEDROOM = ("Bed", "Desk", "Drawer", "Drawer", "Dresser", "GarbageCan", "Shelf", "SideTable", "SideTable")

SCENES = (
    Scene(
        "pick_and_place_simple",
        "Mug",
        "Shelf",
        KITCHEN,
        (
            ("Mug", 0),
            ("Plate", 1),
            ("Apple", 2),
            ("Knife", 2),
            ("Spoon", 3),
            ("Egg", 4),
            ("Bread", 7),
            ("Pan", 8),
            ("PaperTowel", 9),
            ("Vase", 10),
        ),
    ),
    Scene(
        "look_at_obj_in_light",
        "Book",
        "",
        BEDROOM,
        (
            ("Book", 0),
            ("Pillow", 0),
            ("Laptop", 1),
            ("Pen", 2),
            ("CreditCard", 3),
            ("AlarmClock", 4),
            ("Newspaper", 5),
            ("CD", 6),
            ("KeyChain", 7),
            ("DeskLamp", 8),
            ("CellPhone", 8),
        ),
        toggle_target="DeskLamp",
    ),
    Scene(
        "pick_clean_then_place_in_recep",
        "Spoon",
        "DiningTable",
        KITCHEN,
        (
            ("Spoon", 3),
            ("Fork", 3),
            ("Cup", 0),
            ("Bowl", 1),
            ("Tomato", 2),
            ("Lettuce", 4),
            ("Potato", 5),
            ("DishSponge", 6),
            ("SaltShaker", 7),
            ("Pot", 8),
            ("Vase", 10),
        ),
    ),
    Scene(
        "pick_heat_then_place_in_recep",
        "Egg",
        "CounterTop",
        KITCHEN,
        (
            ("Egg", 4),
            ("Tomato", 4),
            ("Mug", 5),
            ("Plate", 0),
            ("Knife", 3),
            ("Bread", 7),
            ("Apple", 7),
            ("Kettle", 8),
            ("SoapBottle", 6),
            ("Glassbottle", 10),
        ),
    ),
    Scene(
        "pick_cool_then_place_in_recep",
        "Tomato",
        "DiningTable",
        KITCHEN,
        (
            ("Tomato", 2),
            ("Potato", 2),
            ("Lettuce", 4),
            ("Cup", 1),
            ("ButterKnife", 3),
            ("Bread", 7),
            ("Pan", 8),
            ("Apple", 9),
            ("Mug", 10),
            ("SprayBottle", 0),
        ),
    ),
    Scene(
        "pick_two_obj_and_place",
        "CD",
        "Shelf",
        BEDROOM,
        (
            ("CD", 2),
            ("CD", 1),
            ("Pen", 2),
            ("Pencil", 3),
            ("Laptop", 0),
            ("Book", 4),
            ("AlarmClock", 4),
            ("Newspaper", 5),
            ("Watch", 7),
            ("CellPhone", 8),
            ("DeskLamp", 8),
        ),
    ),
)


def _receptacle_ids(scene: Scene) -> list[tuple[str, str]]:
    """(pddl id, type) per receptacle; sinks use ALFRED's ``Sink|..|SinkBasin`` form."""
    counts: dict[str, int] = {}
    out = []
    for rtype in scene.receptacles:
        counts[rtype] = counts.get(rtype, 0) + 1
        n = counts[rtype]
        rid = f"Sink_bar_{n}_bar_SinkBasin" if rtype == "SinkBasin" else f"{rtype}_bar_{n}"
        out.append((rid, rtype))
    return out


def problem_pddl(scene: Scene) -> str:
    """The ALFRED-style PDDL problem for a scene (mirrors ``PlannedGameState.state_to_pddl``)."""
    import alfworld.gen.constants as c
    import alfworld.gen.goal_library as glib

    receptacle_types = set(c.RECEPTACLES) - set(c.MOVABLE_RECEPTACLES)
    object_types = set(c.OBJECTS_SET) - receptacle_types
    recs = _receptacle_ids(scene)
    counts: dict[str, int] = {}
    objs = []  # (id, type, receptacle id)
    for otype, ridx in scene.objects:
        counts[otype] = counts.get(otype, 0) + 1
        objs.append((f"{otype}_bar_{counts[otype]}", otype, recs[ridx][0]))
    loc = {rid: f"loc_bar_{i + 1}" for i, (rid, _) in enumerate(recs)}
    start = "loc_bar_0"

    decl = ["agent1 - agent"]
    decl += [f"{t}Type - otype" for t in sorted(object_types)]
    decl += [f"{t}Type - rtype" for t in sorted(receptacle_types)]
    decl += [f"{oid} - object" for oid, _, _ in objs]
    decl += [f"{rid} - receptacle" for rid, _ in recs]
    decl += [f"{start} - location"] + [f"{loc[rid]} - location" for rid, _ in recs]

    va = c.VAL_ACTION_OBJECTS
    init = [f"(atLocation agent1 {start})"]
    for rid, rtype in recs:
        init.append(f"(receptacleType {rid} {rtype}Type)")
        init.append(f"(receptacleAtLocation {rid} {loc[rid]})")
        if rtype in OPENABLE:
            init.append(f"(openable {rid})")
    for oid, otype, rid in objs:
        init += [
            f"(objectType {oid} {otype}Type)",
            f"(inReceptacle {oid} {rid})",
            f"(objectAtLocation {oid} {loc[rid]})",
            f"(wasInReceptacle {oid} {rid})",
        ]
        if otype in va["Toggleable"]:
            init.append(f"(toggleable {oid})")
        else:
            init.append(f"(pickupable {oid})")
        for prop, key in (
            ("cleanable", "Cleanable"),
            ("heatable", "Heatable"),
            ("coolable", "Coolable"),
            ("sliceable", "Sliceable"),
        ):
            if otype in va[key]:
                init.append(f"({prop} {oid})")
        if otype in c.MOVABLE_RECEPTACLES:
            init.append(f"(isReceptacleObject {oid})")
    for _, rtype in sorted(set(recs), key=lambda r: r[1]):
        allowed = c.VAL_RECEPTACLE_OBJECTS.get(rtype, set())
        for otype in sorted({o for _, o, _ in objs} & set(allowed)):
            init.append(f"(canContain {rtype}Type {otype}Type)")
    init = list(dict.fromkeys(init))  # drop duplicate canContain facts, keep order

    goal = glib.gdict[scene.task_type]["pddl"].format(
        obj=scene.object_target, recep=scene.parent_target, toggle=scene.toggle_target, mrecep=""
    )
    goal = goal.replace("#", "-")
    body = "\n        ".join
    return (
        f"(define (problem plan_{scene.task_type})\n    (:domain alfred)\n"
        f"    (:objects\n        {body(decl)}\n    )\n"
        f"    (:init\n        {body(init)}\n    )\n{goal}"
    )


def traj_data(scene: Scene) -> dict:
    """The fields of ALFRED's ``traj_data.json`` that ALFWorld reads."""
    return {
        "task_type": scene.task_type,
        "pddl_params": {
            "object_target": scene.object_target,
            "parent_target": scene.parent_target,
            "toggle_target": scene.toggle_target,
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {"floor_plan": "agent_rl_fixture", "scene_num": 0},
        "turk_annotations": {"anns": []},
    }


def _replay(gamefile: Path, plan: list[str]) -> bool:
    """True if ``plan`` wins the game in the TextWorld engine."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs import PddlEnv

    env = AlfredInfos(AlfredDemangler(PddlEnv(textworld.EnvInfos(won=True, admissible_commands=True))))
    env.load(str(gamefile))
    state = env.reset()
    for action in plan:
        state, _, _ = env.step(action)
    return bool(state["won"])


def solve(gamefile: Path, max_steps: int = 60) -> list[str] | None:
    """Shortest winning walkthrough of ALFWorld's handcoded expert and its fast-downward planner."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import (
        AlfredDemangler,
        AlfredExpert,
        AlfredExpertType,
        AlfredInfos,
    )
    from textworld.envs import PddlEnv

    plans = []
    for expert_type in (AlfredExpertType.HANDCODED, AlfredExpertType.PLANNER):
        infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["gamefile"])
        env = AlfredExpert(AlfredInfos(AlfredDemangler(PddlEnv(infos))), expert_type=expert_type)
        env.load(str(gamefile))
        state = env.reset()
        if expert_type == AlfredExpertType.PLANNER:
            plans.append(list(state["extra.expert_plan"]))
            continue
        plan: list[str] = []
        try:
            while not state["won"] and len(plan) < max_steps:
                plan.append(state["extra.expert_plan"][0])
                state, _, _ = env.step(plan[-1])
        except Exception:  # noqa: BLE001 - the handcoded expert gives up by raising
            continue
        plans.append(plan)
    winning = [p for p in plans if _replay(gamefile, p)]
    return min(winning, key=len) if winning else None


def write_games(out_dir: Path = GAMES_DIR) -> list[Path]:
    """Write every scene's ``game.tw-pddl`` and ``traj_data.json``."""
    from alfworld.agents.utils.misc import add_task_to_grammar
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    domain = Path(ALFRED_PDDL_PATH).read_text()
    grammar = Path(ALFRED_TWL2_PATH).read_text()
    written = []
    for i, scene in enumerate(SCENES):
        game_dir = out_dir / scene.dirname
        game_dir.mkdir(parents=True, exist_ok=True)
        data = traj_data(scene)
        problem = problem_pddl(scene)
        random.seed(i)  # add_task_to_grammar picks its template with the global `random`
        game = {
            "pddl_domain": domain,
            "grammar": add_task_to_grammar(grammar, data, rng=random.Random(i)),
            "pddl_problem": problem,
            "solvable": None,
            "walkthrough": None,
        }
        (game_dir / "traj_data.json").write_text(json.dumps(data, indent=2) + "\n")
        gamefile = game_dir / "game.tw-pddl"
        gamefile.write_text(json.dumps(game))
        plan = solve(gamefile)
        game["walkthrough"] = plan
        game["solvable"] = plan is not None
        gamefile.write_text(json.dumps(game))
        written.append(gamefile)
        print(f"{scene.dirname}: solvable={plan is not None} steps={len(plan or [])}")
    return written


if __name__ == "__main__":
    write_games()
