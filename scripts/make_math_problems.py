"""Generate the math problems shipped with ``env=math_python``: ``agent_rl/envs/data/math_python/``.

Problems whose integer answers take computation rather than insight: sums over large ranges with
conditions, modular powers, divisor counts, digit sums of large powers, sums of primes, lattice paths
(also around a blocked point), committees, derangements, digit-sum counts. A model with the code
interpreter can compute each answer in a few lines of Python; by hand most take long or go wrong.

Each line of ``train.jsonl`` (200 problems) and ``test.jsonl`` (50) is ``{"problem": ..., "answer": "...",
"kind": ...}``, ``kind`` one of ``arithmetic``, ``number_theory``, ``combinatorics`` (the environment's
``task_type``). Deterministic (seed 0): running it again writes the same bytes, and no problem text is in
both files. ``tests/env/test_math_python.py`` regenerates the files and compares them with the shipped ones.

    python scripts/make_math_problems.py              # rewrite the shipped files
    python scripts/make_math_problems.py --out DIR    # write them into DIR instead
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "agent_rl" / "envs" / "data" / "math_python"
SEED = 0
COUNTS = {"test": 50, "train": 200}  # test is drawn first, so growing train never changes test
KINDS = ("arithmetic", "number_theory", "combinatorics")

Problem = tuple[str, int]  # (text, answer)


# ---------------------------------------------------------------------------------------------- helpers
def primes_below(n: int) -> list[int]:
    """The primes less than ``n`` (sieve of Eratosthenes)."""
    sieve = bytearray([1]) * max(n, 2)
    sieve[0] = sieve[1] = 0
    for p in range(2, math.isqrt(max(n, 2)) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytearray(len(range(p * p, n, p)))
    return [i for i in range(n) if sieve[i]]


def divisor_count(n: int) -> int:
    """The number of positive divisors of ``n`` (trial division)."""
    count, p = 1, 2
    while p * p <= n:
        exponent = 0
        while n % p == 0:
            n //= p
            exponent += 1
        count *= exponent + 1
        p += 1
    return count * (2 if n > 1 else 1)


def digit_sum(n: int) -> int:
    return sum(int(d) for d in str(n))


def derangements(n: int) -> int:
    """Permutations of ``n`` objects that leave none in place."""
    a, b = 1, 0  # D(0), D(1)
    for k in range(2, n + 1):
        a, b = b, (k - 1) * (a + b)
    return a if n == 0 else b


def numbers_with_digit_sum(digits: int, total: int) -> int:
    """How many ``digits``-digit positive integers (no leading zero) have digit sum ``total``."""
    ways = [1] + [0] * total  # ways[s]: digit strings so far with sum s
    for position in range(digits):
        first = 1 if position == 0 else 0
        ways = [sum(ways[s - d] for d in range(first, 10) if s - d >= 0) for s in range(total + 1)]
    return ways[total]


# ---------------------------------------------------------------------------------------------- problems
def range_sum(rng: random.Random) -> Problem:
    a = rng.randint(1, 500)
    b = a + rng.randint(2_000, 90_000)
    k, m = rng.sample([3, 4, 6, 7, 9, 11, 13], 2)
    answer = sum(x for x in range(a, b + 1) if x % k == 0 and x % m != 0)
    text = (
        f"What is the sum of all integers from {a} to {b} inclusive that are divisible by {k} but not by {m}?"
    )
    return text, answer


def squares_sum(rng: random.Random) -> Problem:
    n = rng.randint(200, 5_000)
    k = rng.choice([2, 3, 5])
    answer = sum(x * x for x in range(1, n + 1) if x % k == 1)
    text = (
        f"What is the sum of the squares of all integers from 1 to {n} that leave remainder 1 when divided "
        f"by {k}?"
    )
    return text, answer


def product_expression(rng: random.Random) -> Problem:
    a, b, c = rng.randint(10**5, 10**6), rng.randint(10**5, 10**6), rng.randint(10**8, 10**9)
    return f"Compute {a} * {b} - {c}.", a * b - c


def modular_power(rng: random.Random) -> Problem:
    base, exponent = rng.randint(2, 999), rng.randint(100, 10**6)
    modulus = rng.choice([997, 1_000, 1_009, 7_919, 10_007, 65_537, 100_003])
    text = f"What is the remainder when {base}^{exponent} is divided by {modulus}?"
    return text, pow(base, exponent, modulus)


def divisors(rng: random.Random) -> Problem:
    n = 1
    for p in rng.sample([2, 3, 5, 7, 11, 13, 17, 19, 23], rng.randint(2, 4)):
        n *= p ** rng.randint(1, 4)
    n *= rng.choice([1, 29, 31, 37, 41])
    return f"How many positive divisors does {n} have?", divisor_count(n)


def power_digit_sum(rng: random.Random) -> Problem:
    base, exponent = rng.randint(2, 99), rng.randint(50, 400)
    return f"What is the sum of the digits of {base}^{exponent}?", digit_sum(base**exponent)


def prime_sum(rng: random.Random) -> Problem:
    n = rng.randint(1_000, 30_000)
    return f"What is the sum of all prime numbers less than {n}?", sum(primes_below(n))


def lattice_paths(rng: random.Random) -> Problem:
    m, n = rng.randint(5, 20), rng.randint(5, 20)
    text = (
        f"How many paths are there from (0, 0) to ({m}, {n}) that move one unit right or one unit up at each "
        f"step?"
    )
    return text, math.comb(m + n, m)


def blocked_paths(rng: random.Random) -> Problem:
    m, n = rng.randint(6, 18), rng.randint(6, 18)
    p, q = rng.randint(1, m - 1), rng.randint(1, n - 1)
    through = math.comb(p + q, p) * math.comb(m - p + n - q, m - p)
    text = (
        f"How many paths from (0, 0) to ({m}, {n}), moving one unit right or one unit up at each step, avoid "
        f"the point ({p}, {q})?"
    )
    return text, math.comb(m + n, m) - through


def committees(rng: random.Random) -> Problem:
    men, women = rng.randint(8, 30), rng.randint(8, 30)
    size = rng.randint(4, 9)
    least = rng.randint(1, min(3, size - 1))
    answer = sum(math.comb(women, w) * math.comb(men, size - w) for w in range(least, size + 1))
    text = (
        f"A club has {men} men and {women} women. In how many ways can a committee of {size} members be "
        f"chosen that includes at least {least} women?"
    )
    return text, answer


def no_fixed_points(rng: random.Random) -> Problem:
    n = rng.randint(6, 20)
    return f"How many permutations of {n} distinct objects leave no object in its original position?", (
        derangements(n)
    )


def digit_sum_count(rng: random.Random) -> Problem:
    digits = rng.randint(4, 9)
    total = rng.randint(5, 9 * digits - 5)
    text = f"How many {digits}-digit positive integers have digits that sum to {total}?"
    return text, numbers_with_digit_sum(digits, total)


GENERATORS: dict[str, tuple[Callable[[random.Random], Problem], ...]] = {
    "arithmetic": (range_sum, squares_sum, product_expression),
    "number_theory": (modular_power, divisors, power_digit_sum, prime_sum),
    "combinatorics": (lattice_paths, blocked_paths, committees, no_fixed_points, digit_sum_count),
}


def make_split(rng: random.Random, count: int, seen: set[str]) -> list[dict[str, str]]:
    """``count`` new problems, the kinds in turn, none whose text is in ``seen`` (which grows)."""
    out: list[dict[str, str]] = []
    while len(out) < count:
        kind = KINDS[len(out) % len(KINDS)]
        text, answer = rng.choice(GENERATORS[kind])(rng)
        if text in seen:
            continue
        seen.add(text)
        out.append({"problem": text, "answer": str(answer), "kind": kind})
    return out


def make_problems(seed: int = SEED) -> dict[str, list[dict[str, str]]]:
    """Every split's problems, test first."""
    rng, seen = random.Random(seed), set()
    return {split: make_split(rng, count, seen) for split, count in COUNTS.items()}


def write(out: Path, problems: dict[str, list[dict[str, str]]]) -> list[Path]:
    """One ``<split>.jsonl`` per split in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, rows in problems.items():
        path = out / f"{split}.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write into (default: {OUT})")
    args = parser.parse_args(argv)
    for path in write(args.out, make_problems()):
        print(path)


if __name__ == "__main__":
    main()
