#!/usr/bin/env python
"""Environment throughput and memory: direct vs through the Ray pool, and scaling with actors.

For each environment a seeded random agent (uniform over the admissible actions,
episodes cut at ``--episode-steps``) runs the same workload:

* direct: the env in this process;
* pool x1: the same workload through `EnvPool` with one actor (target: >= 0.8 of direct);
  direct and pool x1 runs alternate ``--repeats`` times and the medians are reported, so that
  load from other processes hits both alike; Ray runs its workers at nice 15, so the direct
  runs are made at that niceness too (else any other load on the box starves only the pool);
* aggregate: 1, 2 and 4 actors, one concurrent worker each, total steps/s (median of rounds);
* memory: RSS of each actor process plus its children (the JVM for ScienceWorld).

Every timed run follows an untimed warm-up episode (JVM JIT, caches). Times include resets.

    python bench/envs.py                                  # all envs
    python bench/envs.py --envs alfworld --steps 300 --actors 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def specs(env_name: str) -> list[dict]:
    """A fixed rotation of episode specs per environment."""
    if env_name == "scienceworld":
        tasks = (
            "boil",
            "find-animal",
            "grow-plant",
            "test-conductivity",
            "inclined-plane-determine-angle",
            "chemistry-mix",
            "lifespan-longest-lived",
            "measure-melting-point-known-substance",
        )
        return [{"task": t, "variation": v} for v in range(3) for t in tasks]
    if env_name == "alfworld":
        return [{"split": "train", "task_id": i} for i in range(6)]
    return [{"split": "train", "goal_idx": i} for i in range(24)]


def pick(rng: random.Random, info: dict) -> str:
    """A random admissible action; WebShop's ``search[<your query>]`` gets words of the task."""
    action = rng.choice(info.get("admissible_actions") or ["look"])
    if "<" in action and action.startswith("search["):
        words = re.findall(r"[a-z]+", info.get("task", "").lower()) or ["item"]
        action = f"search[{' '.join(rng.sample(words, min(3, len(words))))}]"
    return action


def workload(env_name: str, worker: int, steps: int, episode_steps: int):
    """Generator protocol: yields ("reset", spec) / ("step", action), receives the results."""
    rng = random.Random(worker)
    rotation = specs(env_name)
    done_steps, k = 0, worker
    while done_steps < steps:
        _, info = yield ("reset", rotation[k % len(rotation)])
        k += 1
        for _ in range(episode_steps):
            _, _, done, info = yield ("step", pick(rng, info))
            done_steps += 1
            if done or done_steps >= steps:
                break
    return done_steps


def run_direct(env, env_name: str, steps: int, episode_steps: int, worker: int = 0) -> int:
    gen = workload(env_name, worker, steps, episode_steps)
    result = None
    try:
        while True:
            kind, arg = gen.send(result)
            result = env.reset(arg) if kind == "reset" else env.step(arg)
    except StopIteration as stop:
        return stop.value


async def run_leased(env, env_name: str, steps: int, episode_steps: int, worker: int = 0) -> int:
    gen = workload(env_name, worker, steps, episode_steps)
    result = None
    try:
        while True:
            kind, arg = gen.send(result)
            result = await (env.reset(arg) if kind == "reset" else env.step(arg))
    except StopIteration as stop:
        return stop.value


def rss_mb(pid: int) -> tuple[float, float]:
    """RSS in MiB of a process, and of all its children together (a JVM)."""
    import psutil

    proc = psutil.Process(pid)
    children = 0
    for child in proc.children(recursive=True):
        try:
            children += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return proc.memory_info().rss / 2**20, children / 2**20


async def _timed(leases: list, env_name: str, steps: int, episode_steps: int) -> float:
    """Total steps/s of one concurrent worker per leased env."""
    t = time.perf_counter()
    counts = await asyncio.gather(
        *(run_leased(e, env_name, steps, episode_steps, i) for i, e in enumerate(leases))
    )
    return sum(counts) / (time.perf_counter() - t)


def bench_env(
    env_name: str, env_kwargs: dict, steps: int, episode_steps: int, actor_counts: list[int], repeats: int
) -> dict:
    """Median steps/s over ``repeats`` rounds: direct and through 1 actor (alternating), then k actors."""
    from agent_rl.envs.api import make_env
    from agent_rl.envs.pool import EnvPool

    async def pool_run(k: int, rounds: int, direct_env=None) -> dict:
        pool = EnvPool(env_name, size=k, env_kwargs=env_kwargs)
        await pool.start()
        leases = [await pool.acquire() for _ in range(k)]
        if direct_env is not None:  # Ray runs workers at nice 15: measure direct at the same priority
            import psutil

            nice = psutil.Process((await leases[0].pids())["actor"]).nice()
            jvm = getattr(direct_env, "jvm_pid", None)  # the direct env's JVM too, not Ray's daemons
            for proc in [psutil.Process()] + ([psutil.Process(jvm)] if jvm else []):
                if nice > proc.nice():
                    proc.nice(nice)
        await asyncio.gather(
            *(run_leased(e, env_name, episode_steps, episode_steps, 99 + i) for i, e in enumerate(leases))
        )  # warm-up every actor
        rates: dict[str, list[float]] = {"direct": [], f"pool x{k}": []}
        for _ in range(rounds):
            if direct_env is not None:
                t = time.perf_counter()
                n = run_direct(direct_env, env_name, steps, episode_steps)
                rates["direct"].append(n / (time.perf_counter() - t))
            rates[f"pool x{k}"].append(await _timed(leases, env_name, steps, episode_steps))
        mem = [rss_mb((await e.pids())["actor"]) for e in leases]
        for e in leases:
            await pool.release(e)
        await pool.shutdown()
        out = {key: statistics.median(v) for key, v in rates.items() if v}
        out["rss_mb"] = mem
        return out

    env = make_env(env_name, **env_kwargs)
    run_direct(env, env_name, episode_steps, episode_steps, worker=99)  # warm-up
    out = asyncio.run(pool_run(1, repeats, direct_env=env))
    env.close()
    for k in actor_counts:
        if k > 1:
            out.update(asyncio.run(pool_run(k, repeats)))  # memory: of the largest pool
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", nargs="+", default=["scienceworld", "alfworld", "webshop"])
    parser.add_argument("--steps", type=int, default=150, help="timed steps per worker")
    parser.add_argument("--episode-steps", type=int, default=20)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3, help="alternating direct / pool x1 rounds")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()

    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray

    (REPO / ".ray_tmp").mkdir(exist_ok=True)
    ray.init(
        address="local",
        num_cpus=args.num_cpus,
        include_dashboard=False,
        _temp_dir=str(REPO / ".ray_tmp"),
        log_to_driver=False,
        configure_logging=False,
    )
    kwargs = {"scienceworld": {}, "alfworld": {}, "webshop": {}}
    actor_counts = sorted(set(args.actors) | {1})
    print(
        f"{os.cpu_count()} cores; {args.steps} timed steps per worker; "
        f"episodes cut at {args.episode_steps} steps"
    )
    results = {}
    try:
        for name in args.envs:
            try:
                results[name] = r = bench_env(
                    name, kwargs.get(name, {}), args.steps, args.episode_steps, actor_counts, args.repeats
                )
            except ImportError as e:
                print(f"{name}: skipped ({e})")
                continue
            cols = "  ".join(f"{k} {r[k]:6.1f}/s" for k in r if k != "rss_mb")
            print(f"{name:13s} {cols}")
            print(
                f"{'':13s} pool x1 / direct = {r['pool x1'] / r['direct']:.2f}   "
                + "  ".join(f"x{k} / x1 = {r[f'pool x{k}'] / r['pool x1']:.2f}" for k in actor_counts[1:])
                + "   RSS per env: actor {:.0f} MiB + JVM/children {:.0f} MiB".format(
                    *(sum(m[i] for m in r["rss_mb"]) / len(r["rss_mb"]) for i in (0, 1))
                )
            )
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
