"""A pool of environments, each in its own Ray actor, leased by asyncio code.

Usage (from any asyncio code, including an async Ray actor such as verl's agent-loop worker)::

    pool = EnvPool("scienceworld", size=8, env_kwargs={"max_steps": 30})
    async with pool.lease() as env:
        obs, info = await env.reset(spec)
        obs, reward, done, info = await env.step(action)
    ...
    pool.stats()           # counters: crashes, actor_restarts, episodes_retried, episodes_failed, ...
    await pool.shutdown()  # closes every env (JVMs included) and kills every actor

Actors are created on demand up to ``size`` (or up front with ``await pool.start()``)
and reused across episodes. Ray must already be initialised. A pool belongs to the
event loop that first uses it; an agent-loop worker builds its own pool.

Crash handling. A lease remembers its episode's spec and the actions that
succeeded. When a call fails because the actor died (process killed), the env
raised (e.g. its JVM was killed, so py4j lost the connection) or the call timed
out, the actor is killed and replaced by a fresh one, the episode is replayed on
it (reset from the same spec, then the recorded actions: every env here is
deterministic given its spec) and the failed call is retried. After
``max_retries`` replacements within one episode it is given up: the lease
returns a terminal result whose ``info`` has ``env_failed=True`` (reward 0,
``won`` False) and ``episodes_failed`` is counted; nothing is raised unless
``raise_on_failure`` is set. A spec the env rejects (ValueError, KeyError,
IndexError, TypeError from ``reset``) fails at once, without restarts, as
``spec_errors``.

Same tasks everywhere. The driver builds the task tables from the data it finds (ALFWorld's games under
``$ALFWORLD_DATA``, WebShop's goals under ``$WEBSHOP_DATA``); an actor on a node where those differ would
map a task id onto another task. Given ``expected_tasks`` (split -> count,
`agent_rl.envs.api.expected_task_counts` in the driver), every actor counts the tasks it sees when it starts
(``Environment.task_count``), and the pool raises `TaskCountMismatch` instead of leasing it.

Started ahead. Starting an environment actor costs a process and the simulator's imports (ALFWorld's
TextWorld, ScienceWorld's JVM): seconds each, all at the first rollout. `prestart` starts a pool's actors
earlier (the trainer calls it while verl starts its workers), named for the job and the environment; a
pool claims those before it creates its own (each is claimed once, by one pool).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import os
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ray
import ray.exceptions

from agent_rl.envs.api import Info, env_class, make_env

logger = logging.getLogger(__name__)

SPEC_ERRORS = (ValueError, KeyError, IndexError, TypeError)


class EnvFailed(RuntimeError):
    """Raised (only with ``raise_on_failure``) when an episode is given up."""


class TaskCountMismatch(RuntimeError):
    """An environment actor sees another task set than the driver built its task tables from."""


def episodes_per_worker(tasks: int, n: int, workers: int) -> int:
    """Episodes one agent-loop worker runs at once for a batch of ``tasks`` tasks, each played ``n``
    times: verl splits every dispatched batch into one chunk per worker (``prompts.chunk(num_workers)``,
    verl/trainer/ppo/v1/agent_loop_tq.py) and the worker starts all sessions of its chunk together."""
    return math.ceil(tasks / max(workers, 1)) * n if tasks > 0 else 0


def auto_pool_size(train_tasks: int, n: int, val_tasks: int, val_n: int, workers: int) -> int:
    """Environments per agent-loop worker for all the episodes it runs at once, in training or in
    validation (whichever is larger), so that no episode waits for an environment."""
    return max(
        episodes_per_worker(train_tasks, n, workers), episodes_per_worker(val_tasks, val_n, workers), 1
    )


class _EnvActor:
    """Holds one environment inside a Ray actor process."""

    def __init__(
        self, env_name: str, env_kwargs: dict[str, Any], expected_tasks: dict[str, int] | None = None
    ) -> None:
        self.env = make_env(env_name, **env_kwargs)
        self.task_error = self._check_tasks(env_name, expected_tasks or {})
        self.claimed = False

    def _check_tasks(self, env_name: str, expected: dict[str, int]) -> str | None:
        for split, count in expected.items():
            seen = self.env.task_count(split)
            if seen is not None and seen != count:
                variables = type(self.env).data_variables
                here = ", ".join(f"{var}={os.environ.get(var)!r}" for var in variables) or "no data variables"
                return (
                    f"{env_name} split {split!r}: an environment actor on {os.uname().nodename} sees "
                    f"{seen} tasks where the driver built its task table from {count} ({here} here); give "
                    f"every node the same {' and '.join(variables) or 'data'} and data folder."
                )
        return None

    def pids(self) -> dict[str, Any]:
        """This actor's pid, for JVM-backed envs the JVM's pid, and the task-count check's error."""
        return {
            "actor": os.getpid(),
            "jvm": getattr(self.env, "jvm_pid", None),
            "task_error": self.task_error,
        }

    def claim(self) -> bool:
        """True to the first caller only: a started-ahead actor joins exactly one pool (`prestart`)."""
        claimed, self.claimed = self.claimed, True
        return not claimed

    def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        return self.env.reset(spec)

    def step(self, action: str) -> tuple[str, float, bool, Info]:
        return self.env.step(action)

    def replay(self, spec: dict[str, Any], actions: list[str]) -> None:
        """Reset from ``spec`` and re-apply ``actions``: rebuilds an episode on a fresh env."""
        self.env.reset(spec)
        for action in actions:
            self.env.step(action)

    def close(self) -> None:
        self.env.close()


def _actor_class(actor_options: dict[str, Any] | None = None, **fixed: Any) -> Any:
    """`_EnvActor` as a Ray actor: ``num_cpus=0`` unless given (env actors never hold the CPUs that the
    trainer's placement groups need), and never restarted by Ray (the pool replaces crashed actors)."""
    options = {"num_cpus": 0, **(actor_options or {})}
    options.update(max_restarts=0, max_task_retries=0, **fixed)
    return ray.remote(_EnvActor).options(**options)


def reserve_prefix(env_name: str, env_kwargs: dict[str, Any]) -> str:
    """Name prefix of the actors started ahead (`prestart`) for this Ray job and environment settings."""
    settings = f"{env_name}|{sorted(env_kwargs.items())!r}".encode()
    job = ray.get_runtime_context().get_job_id()
    return f"agent_rl_env:{job}:{hashlib.sha1(settings).hexdigest()[:12]}:"


def prestart(
    env_name: str,
    n: int,
    env_kwargs: dict[str, Any] | None = None,
    expected_tasks: dict[str, int] | None = None,
    actor_options: dict[str, Any] | None = None,
) -> list[ray.actor.ActorHandle]:
    """Start ``n`` environment actors now, for the pools of this Ray job with the same environment and
    settings to claim (`EnvPool` takes them before creating its own). Returns their handles: keep them
    as long as the pools may claim (Ray collects a named actor without handles); ``pids()`` of each
    reports its task-count check."""
    kwargs = dict(env_kwargs or {})
    prefix = reserve_prefix(env_name, kwargs)
    actors: list[ray.actor.ActorHandle] = []
    index = itertools.count()
    while len(actors) < n:  # names a pool scans from 0; an earlier call's live actors keep theirs
        options = _actor_class(actor_options, name=f"{prefix}{next(index)}")
        try:
            actors.append(options.remote(env_name, kwargs, expected_tasks))
        except ray.exceptions.ActorAlreadyExistsError:
            continue
    return actors


class _Slot:
    """One actor handle plus a serial number (for logs)."""

    _ids = itertools.count()

    def __init__(self, actor: ray.actor.ActorHandle) -> None:
        self.actor = actor
        self.id = next(self._ids)


class PooledEnv:
    """An env leased from the pool for one or more episodes; async mirror of an `Environment`'s simulator."""

    def __init__(self, pool: EnvPool, slot: _Slot) -> None:
        self._pool = pool
        self._slot = slot
        self.spec: dict[str, Any] | None = None
        self.actions: list[str] = []
        self.retries = 0
        self.failed = False
        self._broken = False  # the actor crashed and was not replaced (retries exhausted)
        self._fail_info: Info = {}

    async def pids(self) -> dict[str, int | None]:
        """Pids of the current actor and its JVM (for tests and diagnostics)."""
        return await self._slot.actor.pids.remote()

    async def reset(self, spec: dict[str, Any]) -> tuple[str, Info]:
        """Start an episode; on failure returns ``("", info)`` with ``info["env_failed"]``."""
        self._check_leased()
        self.spec, self.actions, self.retries, self.failed = dict(spec), [], 0, False
        self._pool._count("resets")
        if self._broken:  # a new episode gets a fresh actor
            try:
                self._slot = await self._pool._replace(self._slot)
                self._broken = False
            except Exception as e:  # noqa: BLE001
                self._give_up(e)
                return "", dict(self._fail_info)
        result = await self._call("reset", self.spec)
        if self.failed:
            return "", dict(self._fail_info)
        return result

    async def step(self, action: str) -> tuple[str, float, bool, Info]:
        """Apply an action; after a given-up episode returns ``("", 0.0, True, info)``."""
        self._check_leased()
        if self.spec is None:
            raise RuntimeError("step() before reset()")
        if not self.failed:
            result = await self._call("step", action)
            if not self.failed:
                self.actions.append(action)
                self._pool._count("steps")
                return result
        return "", 0.0, True, dict(self._fail_info)

    def _check_leased(self) -> None:
        if self._slot is None:
            raise RuntimeError("this env was released back to its pool")

    async def _call(self, method: str, arg: Any) -> Any:
        while True:
            try:
                return await self._pool._remote(self._slot, method, arg)
            except SPEC_ERRORS as e:
                if method == "reset":
                    self._pool._count("spec_errors")
                    return self._give_up(e)
                error = e
            except Exception as e:  # noqa: BLE001 - any actor/env failure is a crash here
                error = e
            if self._pool._closed:
                return self._give_up(error)
            self._pool._count("crashes")
            logger.warning(
                "env actor %d failed in %s (%s: %s); retry %d/%d",
                self._slot.id,
                method,
                type(error).__name__,
                str(error).splitlines()[0][:200] if str(error) else "",
                self.retries + 1,
                self._pool.max_retries,
            )
            if self.retries >= self._pool.max_retries:
                self._broken = True
                return self._give_up(error)
            self.retries += 1
            if self.retries == 1:
                self._pool._count("episodes_retried")
            try:
                self._slot = await self._pool._replace(self._slot)
                if method == "step":  # rebuild the episode so far; a reset needs nothing
                    await self._pool._remote(self._slot, "replay", self.spec, self.actions)
            except Exception as e:  # noqa: BLE001 - the replacement failed too: loop and retry
                logger.warning("env actor replacement/replay failed: %s", e)
                continue

    def _give_up(self, error: BaseException) -> None:
        self.failed = True
        self._pool._count("episodes_failed")
        message = f"{type(error).__name__}: {error}"
        self._fail_info = {
            "env_failed": True,
            "error": message[:2000],
            "won": False,
            "score": 0.0,
            "task": "",
            "task_type": "",
            "admissible_actions": [],
        }
        if self._pool.raise_on_failure:
            raise EnvFailed(message) from error
        return None


class EnvPool:
    """Ray actors, each holding one environment, leased to async callers.

    Args:
        env_name: an environment's name or class path (`agent_rl.envs.api.env_class`).
        size: most actors alive at once (= most concurrent episodes).
        env_kwargs: constructor arguments of the environment.
        max_retries: actor replacements allowed per episode before it is given up.
        call_timeout_s: a reset/step/replay taking longer counts as a crash; None waits forever.
        actor_options: Ray actor options; default ``{"num_cpus": 0}`` so env actors never hold
            CPUs that the trainer's placement groups need.
        raise_on_failure: raise `EnvFailed` instead of returning a terminal ``env_failed`` result.
        expected_tasks: split -> task count the driver saw (`expected_task_counts`); an actor that sees
            another count is killed and `TaskCountMismatch` raised.
    """

    def __init__(
        self,
        env_name: str,
        size: int = 4,
        env_kwargs: dict[str, Any] | None = None,
        *,
        max_retries: int = 3,
        call_timeout_s: float | None = 300.0,
        actor_options: dict[str, Any] | None = None,
        raise_on_failure: bool = False,
        expected_tasks: dict[str, int] | None = None,
    ) -> None:
        env_class(env_name)  # an unknown name raises, listing the valid ones
        if size < 1:
            raise ValueError("size must be >= 1")
        self.env_name = env_name
        self.size = size
        self.env_kwargs = dict(env_kwargs or {})
        self.max_retries = max_retries
        self.call_timeout_s = call_timeout_s
        self.raise_on_failure = raise_on_failure
        self.expected_tasks = dict(expected_tasks) if expected_tasks else None
        self._actor_cls = _actor_class(actor_options)
        self._reserve_next: int | None = 0  # the next started-ahead actor to claim; None: none left
        self._slots: set[_Slot] = set()
        self._idle: asyncio.Queue[_Slot] | None = None
        self._creating = 0
        self._closed = False
        self._counters: Counter[str] = Counter()

    # -- public ------------------------------------------------------------------------------
    async def start(self, n: int | None = None) -> None:
        """Create actors up front (default: up to ``size``) instead of on first lease."""
        n = self.size if n is None else min(n, self.size)
        missing = max(0, n - len(self._slots) - self._creating)
        results = await asyncio.gather(*(self._new_slot() for _ in range(missing)), return_exceptions=True)
        for slot in results:
            if isinstance(slot, _Slot):
                self._queue().put_nowait(slot)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def acquire(self) -> PooledEnv:
        """Lease an env (waits while all ``size`` are leased). Pair with `release`."""
        queue = self._queue()
        while True:
            if self._closed:
                raise RuntimeError("pool is shut down")
            if not queue.empty():
                return PooledEnv(self, queue.get_nowait())
            if len(self._slots) + self._creating < self.size:
                return PooledEnv(self, await self._new_slot())
            try:  # wake on a release, or re-check capacity freed by a discarded actor
                return PooledEnv(self, await asyncio.wait_for(queue.get(), timeout=1.0))
            except TimeoutError:
                continue

    async def release(self, env: PooledEnv) -> None:
        """Give a leased env back (a crashed one is killed, freeing its place)."""
        slot, env._slot = env._slot, None
        if slot is None:
            return
        if self._closed or env._broken or slot not in self._slots:
            self._slots.discard(slot)
            await self._kill(slot)
        else:
            self._queue().put_nowait(slot)

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[PooledEnv]:
        """``async with pool.lease() as env:`` — acquire, and release even on error or cancel."""
        env = await self.acquire()
        try:
            yield env
        finally:
            await asyncio.shield(self.release(env))

    def stats(self) -> dict[str, int]:
        """Counters: resets, steps, crashes, actor_restarts, episodes_retried, episodes_failed,
        spec_errors, plus the current ``actors`` and ``idle`` numbers."""
        out = {
            k: self._counters.get(k, 0)
            for k in (
                "resets",
                "steps",
                "crashes",
                "actor_restarts",
                "episodes_retried",
                "episodes_failed",
                "spec_errors",
            )
        }
        out["actors"] = len(self._slots)
        out["idle"] = self._idle.qsize() if self._idle else 0
        return out

    async def shutdown(self, timeout_s: float = 15.0) -> None:
        """Close every env (ending JVMs cleanly) and kill every actor. Leased envs become unusable."""
        self._closed = True
        slots, self._slots = list(self._slots), set()
        await asyncio.gather(*(self._kill(slot, timeout_s) for slot in slots))
        self._idle = None

    def __len__(self) -> int:
        return len(self._slots)

    # -- internals ---------------------------------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        self._counters[key] += n

    def _queue(self) -> asyncio.Queue[_Slot]:
        if self._idle is None:
            self._idle = asyncio.Queue()
        return self._idle

    async def _new_slot(self) -> _Slot:
        self._creating += 1
        try:
            actor = await self._claim_reserved()
            if actor is None:
                actor = self._actor_cls.remote(self.env_name, self.env_kwargs, self.expected_tasks)
            slot = _Slot(actor)
            try:
                started = await self._await(slot.actor.pids.remote(), self.call_timeout_s)
            except BaseException:
                ray.kill(slot.actor, no_restart=True)
                raise
            if started.get("task_error"):
                await self._kill(slot)
                raise TaskCountMismatch(started["task_error"])
        finally:
            self._creating -= 1
        if self._closed:
            await self._kill(slot)
            raise RuntimeError("pool is shut down")
        self._slots.add(slot)
        return slot

    async def _claim_reserved(self) -> ray.actor.ActorHandle | None:
        """An actor started ahead for this pool's environment (`prestart`) that no pool has claimed."""
        while self._reserve_next is not None:
            name = f"{reserve_prefix(self.env_name, self.env_kwargs)}{self._reserve_next}"
            self._reserve_next += 1
            try:
                actor = ray.get_actor(name)
            except ValueError:  # no such name: none (left) for this pool
                self._reserve_next = None
                return None
            try:
                if await self._await(actor.claim.remote(), self.call_timeout_s):
                    return actor
            except Exception as e:  # noqa: BLE001 - a reserved actor that died: skip it
                logger.warning("started-ahead env actor %s unusable: %s", name, e)
        return None

    async def _replace(self, slot: _Slot) -> _Slot:
        self._slots.discard(slot)
        ray.kill(slot.actor, no_restart=True)  # its process dies, and with it any JVM child
        self._count("actor_restarts")
        return await self._new_slot()

    async def _remote(self, slot: _Slot, method: str, *args: Any) -> Any:
        if slot is None or self._closed:
            raise RuntimeError("pool is shut down or env released")
        return await self._await(getattr(slot.actor, method).remote(*args), self.call_timeout_s)

    @staticmethod
    async def _await(ref: ray.ObjectRef, timeout: float | None) -> Any:
        return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout)

    async def _kill(self, slot: _Slot, timeout_s: float = 15.0) -> None:
        try:
            await self._await(slot.actor.close.remote(), timeout_s)
        except Exception:  # noqa: BLE001 - dead or hung actors are killed below anyway
            pass
        ray.kill(slot.actor, no_restart=True)
