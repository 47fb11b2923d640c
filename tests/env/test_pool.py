"""The Ray env pool: reuse, crash recovery by replay, failure reporting, clean shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from agent_rl.envs.alfworld import SHIPPED_GAMES, list_games
from agent_rl.envs.pool import EnvPool

pytestmark = pytest.mark.env

GAMES = list_games(str(SHIPPED_GAMES), "train")


def expert_plan(task_id: int) -> list[str]:
    return json.loads(Path(GAMES[task_id]).read_text())["walkthrough"]


def gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once ``pid`` has exited (a zombie counts as exited)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


async def play(env, spec, actions, kill=None, kill_at: int = -1):
    """Run ``actions``; before action ``kill_at`` call ``kill(pids)`` to crash the env."""
    obs, info = await env.reset(spec)
    for i, action in enumerate(actions):
        if i == kill_at:
            kill(await env.pids())
        obs, reward, done, info = await env.step(action)
        if done:
            break
    return info


def test_alfworld_actors_are_reused_and_episodes_run_concurrently(ray_local):
    async def main():
        pool = EnvPool("alfworld", size=2)

        async def episode(task_id):
            async with pool.lease() as env:
                return await play(env, {"split": "train", "task_id": task_id}, expert_plan(task_id))

        infos = await asyncio.gather(*(episode(i) for i in range(6)))
        stats = pool.stats()
        await pool.shutdown()
        return infos, stats

    infos, stats = asyncio.run(main())
    assert all(info["won"] for info in infos)
    assert sorted(info["task_type"] for info in infos) == sorted({i["task_type"] for i in infos})
    assert stats["actors"] == 2 and stats["resets"] == 6 and stats["crashes"] == 0


def test_killed_actor_mid_episode_is_replaced_and_episode_completes(ray_local):
    async def main():
        pool = EnvPool("alfworld", size=1)
        async with pool.lease() as env:
            first = (await env.pids())["actor"]
            info = await play(
                env,
                {"split": "train", "task_id": 5},
                expert_plan(5),
                kill=lambda pids: os.kill(pids["actor"], signal.SIGKILL),
                kill_at=4,
            )
            second = (await env.pids())["actor"]
        stats = pool.stats()
        await pool.shutdown()
        return info, stats, first, second

    info, stats, first, second = asyncio.run(main())
    assert info["won"] and first != second
    assert stats["crashes"] == 1 and stats["actor_restarts"] == 1 and stats["episodes_retried"] == 1
    assert stats["episodes_failed"] == 0 and gone(second)


def test_killed_jvm_mid_episode_is_replaced_and_gold_path_wins(ray_local):
    from agent_rl.envs.scienceworld import ScienceWorldEnv

    spec = {"task": "find-living-thing", "variation": 0}
    probe = ScienceWorldEnv()
    gold = probe.gold_actions(spec)
    probe.close()

    async def main():
        pool = EnvPool("scienceworld", size=1)
        async with pool.lease() as env:
            await env.reset(spec)
            jvm = (await env.pids())["jvm"]
            info = await play(
                env,
                spec,
                gold,
                kill=lambda pids: os.kill(pids["jvm"], signal.SIGKILL),
                kill_at=len(gold) // 2,
            )
            pids = await env.pids()
        stats = pool.stats()
        await pool.shutdown()
        return info, stats, jvm, pids

    info, stats, old_jvm, pids = asyncio.run(main())
    assert info["won"] and old_jvm != pids["jvm"]
    assert stats["crashes"] == 1 and stats["actor_restarts"] == 1 and stats["episodes_failed"] == 0
    assert gone(pids["jvm"]) and gone(pids["actor"]), "shutdown must leave no JVM or actor behind"


def test_exhausted_retries_report_failure_without_raising(ray_local):
    async def main():
        pool = EnvPool("alfworld", size=1, max_retries=0)
        async with pool.lease() as env:
            await env.reset({"task_id": 0})
            os.kill((await env.pids())["actor"], signal.SIGKILL)
            step = await env.step("look")
            after = await env.step("look")
            bad_spec = await env.reset({"split": "no-such-split"})
        stats = pool.stats()
        await pool.shutdown()
        return step, after, bad_spec, stats

    (obs, reward, done, info), after, (_, bad_info), stats = asyncio.run(main())
    assert done and reward == 0.0 and info["env_failed"] and not info["won"]
    assert after[2] and after[3]["env_failed"]
    assert bad_info["env_failed"] and "no-such-split" in bad_info["error"]
    assert stats["episodes_failed"] == 2 and stats["spec_errors"] == 1 and stats["crashes"] == 1


def test_pool_works_inside_an_async_ray_actor(ray_local):
    """verl's agent-loop worker is an async Ray actor: the pool must run from its event loop."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

    @ray_local.remote(num_cpus=0)
    class Worker:
        async def run(self, task_id: int, plan: list[str]):
            pool = EnvPool("alfworld", size=1)
            try:
                async with pool.lease() as env:
                    info = await play(env, {"split": "train", "task_id": task_id}, plan)
                return info["won"], pool.stats()["steps"]
            finally:
                await pool.shutdown()

    worker = Worker.remote()
    won, steps = ray_local.get(worker.run.remote(0, expert_plan(0)), timeout=120)
    ray_local.kill(worker)
    assert won and steps == len(expert_plan(0))


def test_an_actor_that_sees_other_tasks_than_the_driver_is_refused(ray_local):
    """The driver counted 3,553 ALFWorld train games (the full set); an actor that finds only the six
    shipped games (no ALFWORLD_DATA on its node) is killed and the pool raises, naming the variable."""
    from agent_rl.envs.api import expected_task_counts
    from agent_rl.envs.pool import TaskCountMismatch

    assert expected_task_counts({"name": "alfworld", "train_split": "train", "val_split": "valid_seen"}) == {
        "train": len(GAMES),
        "valid_seen": len(GAMES),
    }

    async def main(expected):
        pool = EnvPool("alfworld", size=1, expected_tasks=expected)
        try:
            await pool.start()
            return len(pool)
        finally:
            await pool.shutdown()

    assert asyncio.run(main({"train": len(GAMES)})) == 1
    with pytest.raises(
        TaskCountMismatch, match=r"sees 6 tasks where the driver built its task table from 3553"
    ):
        asyncio.run(main({"train": 3553}))


def test_actors_started_ahead_are_claimed_once_by_pools_of_the_same_settings(ray_local):
    """`prestart` starts named actors before any pool exists; pools with the same environment and
    settings take them (each exactly once) before creating their own, a pool with other settings
    takes none; the control is the pool of other settings, whose actors are all new."""
    from agent_rl.envs.pool import prestart

    ahead = prestart("alfworld", 3, {"max_steps": 7})
    ahead_pids = {ray_local.get(actor.pids.remote())["actor"] for actor in ahead}

    async def actor_pids(pool, n):
        envs = [await pool.acquire() for _ in range(n)]
        pids = {(await env.pids())["actor"] for env in envs}
        for env in envs:
            await pool.release(env)
        return pids

    async def main():
        first = EnvPool("alfworld", size=2, env_kwargs={"max_steps": 7})
        second = EnvPool("alfworld", size=2, env_kwargs={"max_steps": 7})
        other = EnvPool("alfworld", size=1, env_kwargs={"max_steps": 8})
        try:
            return await actor_pids(first, 2), await actor_pids(second, 2), await actor_pids(other, 1)
        finally:
            for pool in (first, second, other):
                await pool.shutdown()

    first, second, other = asyncio.run(main())
    assert first <= ahead_pids and len(first) == 2
    assert len(second & ahead_pids) == 1 and second - ahead_pids  # the last one ahead, then a new one
    assert not other & ahead_pids


def test_the_trainer_starts_the_pools_actors_ahead_and_checks_their_task_counts(ray_local):
    """`start_env_actors`: ``env.pool_size`` actors per agent-loop worker, whose check raises where an
    actor sees other task counts than the driver's (the trainer waits for it before the first rollout)."""
    from omegaconf import OmegaConf

    from agent_rl.envs.pool import TaskCountMismatch
    from agent_rl.training.trainer import start_env_actors

    def config(train_tasks):
        return OmegaConf.create(
            {
                "env": {"name": "alfworld", "pool_size": 2, "expected_tasks": {"train": train_tasks}},
                "actor_rollout_ref": {"rollout": {"agent": {"num_workers": 1}}},
            }
        )

    actors, check = start_env_actors(config(len(GAMES)))
    assert len(actors) == 2
    check.result(timeout=120)
    actors, check = start_env_actors(config(3553))
    with pytest.raises(TaskCountMismatch, match=r"sees 6 tasks where the driver built its task table"):
        check.result(timeout=120)
    arith = OmegaConf.create({"env": {"name": "arith", "pool_size": 2}})
    assert start_env_actors(arith) == ([], None)
