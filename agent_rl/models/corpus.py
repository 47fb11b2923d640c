"""The text the tiny model's tokenizer is trained on: prompt scaffolding and environment vocabulary.

Deterministic: a fixed list of sentences and words, expanded by fixed combinations. Changing it
changes the tiny model's fingerprint (and so its cache folder), never an existing build.
"""

from __future__ import annotations

import itertools

SCAFFOLD = [
    "You are an expert agent operating in the ALFRED Embodied Environment.",
    "You are an expert agent operating in the ScienceWorld environment, a text-based science simulator.",
    "You are an expert autonomous agent operating in the WebShop e-commerce platform.",
    "Your task is to: ",
    "Prior to this step, you have already taken 3 step(s).",
    "Below are the most recent 2 observations and the corresponding actions you took:",
    "You are now at step 4 and your current observation is:",
    "Your admissible actions of the current situation are:",
    "Now it's your turn to take an action.",
    "You should first reason step-by-step about the current situation. This reasoning process MUST be "
    "enclosed within <think> </think> tags.",
    "Once you've finished your reasoning, you should choose an admissible action for current step and "
    "present it within <action> </action> tags.",
    "<think> I need to find the object first, then take it to the target. </think>",
    "<action> go to countertop 1 </action>",
    "<think>The apple may be in the fridge.</think><action>open fridge 1</action>",
    "What is 12 + 30? Think inside <think></think> and give the answer inside <answer></answer>.",
    "<answer>42</answer>",
    "Nothing happens.",
    "You arrive at loc 3. On the countertop 1, you see a apple 1, a knife 2, and a bread 1.",
    "You pick up the apple 1 from the countertop 1.",
    "You put the mug 1 in/on the coffeemachine 1.",
    "You heat the potato 1 using the microwave 1.",
    "You cool the lettuce 1 using the fridge 1.",
    "You clean the cloth 2 using the sinkbasin 1.",
    "You turn on the desklamp 1.",
    "This room is called the kitchen. In it, you see: a substance called air, a chair, a counter, "
    "a cupboard.",
    "You move to the greenhouse. The door is now open. You focus on the thermometer.",
    "Valid_actions: OBJ needs to be replaced with one of the following objects:",
    "Your task is to boil water. For compounds without a boiling point, combusting the substance is fine.",
    "Your task is to measure the melting point of chocolate, which is located around the kitchen.",
    "Your task is to find a(n) animal. First, focus on the thing. Then, move it to the red box.",
    "i need a long lasting 6.76 fl oz bottle of l'eau d'issey, and price lower than 100.00 dollars",
    "i am looking for a gluten free, 2 pound bag of almond flour, and price lower than 30.00 dollars",
    "[SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > [SEP]",
    "[SEP] < Prev [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now [SEP]",
    "search[gluten free almond flour]",
    "click[buy now]",
    "click[next >]",
    "click[< prev]",
    "click[back to search]",
    "Thank you for shopping with us! Your code: None. Your score (min 0.0, max 1.0): 1.0",
]

ALFWORLD_VERBS = [
    "go to",
    "take",
    "put",
    "open",
    "close",
    "toggle",
    "clean",
    "heat",
    "cool",
    "use",
    "examine",
]
ALFWORLD_OBJECTS = [
    "apple",
    "bread",
    "knife",
    "mug",
    "cup",
    "plate",
    "bowl",
    "pan",
    "pot",
    "potato",
    "tomato",
    "lettuce",
    "egg",
    "fork",
    "spoon",
    "spatula",
    "kettle",
    "book",
    "pen",
    "pencil",
    "cellphone",
    "keychain",
    "creditcard",
    "alarmclock",
    "pillow",
    "laptop",
    "cd",
    "vase",
    "statue",
    "candle",
    "soapbar",
    "cloth",
    "towel",
    "spraybottle",
    "toiletpaper",
    "watch",
    "newspaper",
    "remotecontrol",
    "box",
]
ALFWORLD_RECEPTACLES = [
    "countertop",
    "cabinet",
    "drawer",
    "fridge",
    "microwave",
    "sinkbasin",
    "stoveburner",
    "shelf",
    "desk",
    "dresser",
    "bed",
    "sofa",
    "armchair",
    "sidetable",
    "diningtable",
    "coffeetable",
    "garbagecan",
    "toilet",
    "bathtubbasin",
    "desklamp",
    "floorlamp",
    "safe",
    "coffeemachine",
    "toaster",
]
SCIENCEWORLD_ACTIONS = [
    "open",
    "close",
    "activate",
    "deactivate",
    "connect",
    "disconnect",
    "use",
    "look at",
    "look around",
    "look in",
    "read",
    "move",
    "pick up",
    "put down",
    "pour",
    "dunk",
    "mix",
    "go to",
    "teleport to",
    "eat",
    "flush",
    "focus on",
    "wait",
    "wait1",
    "inventory",
    "task",
]
SCIENCEWORLD_WORDS = [
    "water",
    "ice",
    "steam",
    "thermometer",
    "stove",
    "freezer",
    "beaker",
    "metal pot",
    "wood cup",
    "kitchen",
    "bathroom",
    "workshop",
    "art studio",
    "greenhouse",
    "outside",
    "foundry",
    "hallway",
    "bedroom",
    "living room",
    "battery",
    "wire",
    "light bulb",
    "switch",
    "seed",
    "flower pot",
    "soil",
    "red paint",
    "blue paint",
    "yellow paint",
    "orange paint",
    "green paint",
    "violet paint",
    "inclined plane",
    "animal",
    "plant",
    "living thing",
    "non-living thing",
    "electrically conductive",
    "temperature",
]
WEBSHOP_WORDS = [
    "size",
    "color",
    "small",
    "medium",
    "large",
    "x-large",
    "black",
    "white",
    "navy",
    "red",
    "blue",
    "pack of 2",
    "pack of 6",
    "ounce",
    "fl oz",
    "pound",
    "count",
    "men's",
    "women's",
    "shirt",
    "shoes",
    "sneakers",
    "dress",
    "jacket",
    "jeans",
    "shampoo",
    "lotion",
    "serum",
    "lipstick",
    "coffee",
    "tea",
    "snack",
    "cookies",
    "protein bar",
    "organic",
    "gluten free",
    "sugar free",
    "vegan",
    "non gmo",
    "long lasting",
    "easy to clean",
    "machine wash",
    "wireless",
    "bluetooth",
    "charger",
    "headphones",
    "phone case",
    "laptop stand",
    "desk lamp",
    "pillow",
    "blanket",
    "sofa",
    "chair",
    "table",
    "price",
]


def frozenlake_lines() -> list[str]:
    """FrozenLake's prompt text and grids (`agent_rl.envs.frozenlake`), for the tiny model's ``frozenlake``
    lesson; the default corpus (`lines`) leaves them out, so the default build is unchanged."""
    import random

    from agent_rl.envs import frozenlake
    from agent_rl.rollout import prompts

    rng = random.Random(0)
    out = [prompts.FROZENLAKE_TEMPLATE_NO_HIS, prompts.FROZENLAKE_TEMPLATE, frozenlake.TASK]
    out += [f"<think>I will go {a}.</think><action>{a}</action>" for a in frozenlake.ACTIONS]
    for seed in range(200):
        size = 3 + seed % 3
        grid = frozenlake.make_map(size, 0.8, seed)
        out.append(frozenlake.render(grid, rng.randrange(size), rng.randrange(size)))
    return out


def lines() -> list[str]:
    out = list(SCAFFOLD)
    for verb, obj, i in itertools.product(ALFWORLD_VERBS, ALFWORLD_OBJECTS, (1, 2)):
        rec = ALFWORLD_RECEPTACLES[(len(obj) + i) % len(ALFWORLD_RECEPTACLES)]
        out.append(f"<action>{verb} {obj} {i} from {rec} {i}</action>")
    for rec, i in itertools.product(ALFWORLD_RECEPTACLES, range(1, 6)):
        out.append(f"go to {rec} {i}. You arrive at {rec} {i}. The {rec} {i} is closed.")
    for act, word in itertools.product(SCIENCEWORLD_ACTIONS, SCIENCEWORLD_WORDS):
        out.append(f"{act} {word}")
    for a, b in itertools.combinations(WEBSHOP_WORDS, 2):
        out.append(f"search[{a} {b}] click[{b}]")
    for n in range(200):
        out.append(f"{n} + {n % 17} = {n + n % 17}; step {n}; price: ${n}.{n % 100:02d}")
    return out
