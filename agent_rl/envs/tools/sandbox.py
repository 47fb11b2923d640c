"""Run model-written Python in a process the operating system isolates: bubblewrap plus resource limits.

Model-written code is hostile input. `run_python` starts one fresh sandbox per call (no pool: see below)
with Debian's ``bwrap`` (bubblewrap), waits for it and returns a `RunResult`; `sandbox_missing` says, in
one sentence, why this machine cannot run one (checked once). Nothing of the code ever runs unsandboxed.

What the code sees and may do
-----------------------------
- Namespaces: its own user, mount, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``,
  ``--unshare-user``, ``--unshare-net``): no network but a loopback of its own, so neither the internet
  nor a server on the host's 127.0.0.1 is reachable, and it sees only its own processes.
  ``--disable-userns`` (bwrap >= 0.8) forbids nested user namespaces, ``--new-session`` detaches it from
  any terminal, ``--die-with-parent`` kills it when the calling thread dies.
- Files: a fresh root holding, read-only, ``/usr`` (with the merged-usr links ``/bin``, ``/lib``, ...), of
  ``/etc`` only the loader's cache, ``/etc/alternatives`` (Debian's BLAS links) and ``/etc/localtime``,
  and an interpreter's own prefixes when they lie outside ``/usr``; a fresh ``/proc`` and ``/dev``. No
  ``/root``, ``/home``, ``/work``, host ``/tmp``, the caller's folder or ``/etc/shadow``. The only writable
  places are three fresh tmpfs of ``Limits.disk_mb`` each: the working folder ``/sandbox`` (the current
  folder and ``$HOME``, holding the code as ``/sandbox/main.py``), ``/tmp`` and ``/dev/shm``; the root and
  ``/dev``, tmpfs of bwrap's without a size, are remounted read-only. The working folder is in memory,
  not a host folder: a program that writes files in a loop fills its few MB instead of the host's disk,
  and nothing is left to delete, even when the caller is killed. The code reaches it through an unnamed
  temporary file (``O_TMPFILE``) whose descriptor bwrap copies in.
- Environment: ``--clearenv`` and a minimal PATH/HOME/LANG/TMPDIR (plus one thread for BLAS/OpenMP, as
  threads count against the process limit), so no host variable such as ``WANDB_API_KEY`` is visible.
- User: uid/gid 65534 inside. When the caller is root, bwrap itself is started as uid 65534 (``nobody``),
  so the code is ``nobody`` on the host too: Linux never applies ``RLIMIT_NPROC`` to root (a fork bomb
  measured past 50 processes with a limit of 8 when bwrap ran as root), and a root-owned sandbox could
  read any root-owned file bound into it. So only world-readable files are readable, even in ``/usr``.
- Limits (`Limits`), which the interpreter sets on itself before it reads the code (``RLIMIT_NPROC``
  must be set inside the new user namespace to count only this sandbox's processes): CPU seconds (SIGXCPU,
  then SIGKILL a second later), address space (``memory_mb``: a big allocation raises MemoryError),
  processes and threads, file size (Python ignores SIGXFSZ, so a big write raises ``OSError: File too
  large``), no core dumps, 256 open files. They are per process: a fork bomb may hold up to ``processes *
  memory_mb`` of address space until the wall limit (no cgroup bounds the total).
- System calls: a seccomp filter (`BLOCKED_SYSCALLS`) refuses SysV shared memory and memfds, memory that
  RLIMIT_AS does not count and that outlives an unmapping, and a few kernel interfaces Python does not
  need (io_uring, userfaultfd, bpf, perf_event_open, key rings), and every call of another ABI.
- Wall time and output are enforced from outside. Past ``wall_s`` the sandbox's PID 1 is killed, which
  kills every process in its PID namespace. stdout and stderr are read in 64 KB chunks as they come; of
  them the first ``4 * output_chars`` bytes of stdout and the last ``4 * output_chars`` of stderr (where
  the exception is) are kept, and the run is stopped once it has written `DRAIN_BYTES` (16 MB), so 100 MB
  of print costs the host a few KB and a fraction of a second. `RunResult` then holds at most
  ``output_chars`` characters: the head of stdout and the tail of stderr.
- Processes: the sandbox's PID 1 is the interpreter itself (``--as-pid-1``), which forks: the child runs
  the code, PID 1 reaps and exits with the child's status as soon as the child ends. The kernel then kills
  whatever the code left running, and bwrap reaps PID 1 before it exits; no process outlives the call.
  Nothing inside can kill PID 1: it receives only the signals it handles, and it shrugs off the one it
  handles (SIGINT). (With bwrap's own reaper as PID 1, bwrap exits as soon as the code's process ends,
  before the reaper is reaped, which then ends as a zombie of the host's init: one per call, where a
  container's init does not reap.)

Interpreter
-----------
The default is the system's ``/usr/bin/python3``, inside the ``/usr`` that is bound anyway, with Debian's
``python3-numpy`` and ``python3-sympy`` for math (`make install` adds them). The project's venv is not the
default: its interpreter may lie in a home folder (e.g. pyenv's), which the sandbox user (65534) cannot enter
(bwrap resolves every bind source with the caller's rights, so even a bind by file descriptor fails), and
binding it would show the sandbox a path under ``/root``. Another interpreter may be named (``python=``):
its ``sys.prefix`` and ``sys.base_prefix`` are bound read-only at the same paths and, when the caller is
root, must be world-enterable (a ValueError says so otherwise). A bare expression on the code's last line
is printed (its ``repr``, unless None), as in a notebook.

No pool: a fresh sandbox per call
---------------------------------
A reused interpreter keeps whatever a call leaves behind (patched builtins, a background thread, files in
``/tmp``) for the next call, which may belong to another episode; resetting that safely would take a
fork server inside the sandbox, not worth it at this cost. Measured with ``bench/sandbox.py`` (40 calls of
``print(1)`` each, sandbox and plain ``subprocess.run([python, "-I", "-c", code])`` taking turns; Debian
12, bwrap 0.8.0, Python 3.11.2, a 2-core container that other jobs kept at a load of 5-7): CPU time (all
processes of a call) 20 ms per sandboxed call against 10.6 ms plain, a ratio of 1.9 (+9-10 ms: bwrap's
namespaces and mounts, the launcher's fork); wall time (median) 37-54 ms against 15-17 ms, a ratio of
2.5-3.1, as each of the call's processes waits for a core on the busy machine. ``import numpy, sympy``
costs about 0.4 s of CPU inside and outside alike (ratio 1.05).

Each call runs in the calling thread and waits for the sandbox (``--die-with-parent`` follows the thread
that started bwrap, which lives until the sandbox is gone); calls from several threads at once are
independent.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import platform
import re
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

INSTALL = "apt-get install -y --no-install-recommends bubblewrap"
DEFAULT_PYTHON = "/usr/bin/python3"
SANDBOX_UID = 65534  # nobody/nogroup: the uid inside the sandbox and, for a root caller, outside as well
WORKDIR = "/sandbox"
MAIN = f"{WORKDIR}/main.py"
OPEN_FILES = 256  # each may hold a socket's or a pipe's buffer, memory outside RLIMIT_AS
CHUNK = 65536  # bytes per read of the run's output
DRAIN_BYTES = 16 * 1024 * 1024  # output read (and dropped past what is kept) before the run is stopped
# What of the host's root the sandbox gets, read-only: /usr, and these when they exist (symlinks stay links).
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime")
ENVIRONMENT = {
    "HOME": WORKDIR,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# System calls the sandbox refuses (EPERM), with their numbers on x86_64 and aarch64 (the kernel's
# asm/unistd_64.h and asm-generic/unistd.h). Memory that RLIMIT_AS does not count and that outlives an
# unmapping: SysV shared memory (the new IPC namespace has no size limit) and memfds. Kernel interfaces a
# Python program does not need, often the way into kernel bugs: io_uring, userfaultfd, bpf,
# perf_event_open, and the key rings (not namespaced: shared with the host user).
BLOCKED_SYSCALLS = {
    "shmget": (29, 194),
    "memfd_create": (319, 279),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "userfaultfd": (323, 282),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "keyctl": (250, 219),
}
# platform.machine() -> (its AUDIT_ARCH_* value, its column in BLOCKED_SYSCALLS)
SECCOMP_ARCHES = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}
X32_SYSCALL_BIT = 0x40000000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
# Why a signal ended the program, for the model.
SIGNAL_REASONS = {
    signal.SIGXCPU: "the CPU time limit",
    signal.SIGXFSZ: "the file size limit",
    signal.SIGKILL: "a limit",
    signal.SIGSEGV: "a crash (segmentation fault)",
}

# The sandbox's PID 1 (see the module docstring): limits itself (argv[1]: "NAME=soft:hard,..."), forks the
# child that runs the code (argv[2]) and reaps until that child ends. It imports nothing that Python's
# start-up has not loaded but `resource`: the built-in compile() gives the syntax tree (PyCF_ONLY_AST)
# without the `ast` module's 6 ms of imports, and `traceback` is imported only on an error.
LAUNCHER = r"""
import _ast, os, resource, sys
for limit in sys.argv[1].split(","):
    name, soft, hard = limit.replace("=", ":").split(":")
    resource.setrlimit(getattr(resource, "RLIMIT_" + name), (int(soft), int(hard)))
child = os.fork()
while child:
    try:
        pid, status = os.wait()
    except KeyboardInterrupt:
        continue
    if pid == child:
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)
path = sys.argv[2]
sys.argv = [path]
sys.path.insert(0, path.rpartition("/")[0])
sys.stdout.reconfigure(line_buffering=True)
namespace = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
try:
    with open(path, "rb") as source:
        tree = compile(source.read(), path, "exec", _ast.PyCF_ONLY_AST, dont_inherit=True)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], _ast.Expr) else None
    exec(compile(tree, path, "exec", dont_inherit=True), namespace)
    if last is not None:
        value = eval(compile(_ast.Expression(last.value), path, "eval", dont_inherit=True), namespace)
        if value is not None:
            print(repr(value))
except SystemExit:
    raise
except BaseException as error:
    import traceback
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb)
    sys.exit(1)
"""


@dataclass(frozen=True)
class Limits:
    """What one call may use (SPEAR's recipe: 30 s and 1 GB)."""

    wall_s: float = 30.0  # wall-clock seconds, then the whole sandbox is killed
    cpu_s: int = 30  # CPU seconds per process (SIGXCPU)
    memory_mb: int = 1024  # address space per process (MemoryError)
    processes: int = 32  # processes and threads of the sandbox user
    file_mb: int = 16  # largest file it may write
    disk_mb: int = 64  # size of each writable tmpfs (/sandbox, /tmp, /dev/shm)
    output_chars: int = 8192  # characters of stdout+stderr returned


@dataclass(frozen=True)
class RunResult:
    """One sandboxed run. ``exit_code`` is None when the sandbox was killed from outside (time or output)."""

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    truncated: bool
    seconds: float

    def text(self) -> str:
        """What the model is shown: stdout, then stderr, then a note on how the run ended if not cleanly."""
        parts = [part.rstrip("\n") for part in (self.stdout, self.stderr) if part]
        parts += self.notes()
        return "\n".join(parts) if parts else "[no output]"

    def notes(self) -> list[str]:
        """Bracketed notes: timed out, output truncated, killed by a signal, a silent non-zero exit."""
        notes = []
        if self.timed_out:
            notes.append(f"[timed out: the program was stopped after {self.seconds:.1f} s]")
        if self.truncated:
            stopped = self.exit_code is None and not self.timed_out
            notes.append("[output truncated" + ("; the program was stopped]" if stopped else "]"))
        name = _signal_name(self.exit_code - 128) if self.exit_code and self.exit_code > 128 else None
        if name:
            notes.append(f"[killed by {name}: {SIGNAL_REASONS.get(signal.Signals[name], 'a signal')}]")
        elif self.exit_code and not self.stderr:
            notes.append(f"[exit code {self.exit_code}]")
        return notes


def _signal_name(number: int) -> str | None:
    """SIGXCPU for 24, ...; None for a number that names no signal."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return None


def _bwrap() -> str | None:
    """The bwrap executable, or None."""
    return shutil.which("bwrap") or shutil.which("bwrap", path="/usr/bin:/bin")


@functools.cache
def _bwrap_options() -> frozenset[str]:
    """Which of the newer options this bwrap knows (``--disable-userns`` came in 0.8, ``--size`` earlier)."""
    try:
        usage = subprocess.run([_bwrap(), "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(option for option in ("--disable-userns", "--size") if option in usage)


def _as_sandbox_user() -> dict:
    """Popen arguments that start bwrap as uid/gid 65534 for a root caller (RLIMIT_NPROC spares root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []}


def _isolation_args() -> list[str]:
    """Namespaces, user, session and environment (no mounts)."""
    uid = str(SANDBOX_UID)
    args = ["--unshare-all", "--unshare-user", "--unshare-net", "--uid", uid, "--gid", uid]
    args += ["--hostname", "sandbox", "--as-pid-1", "--die-with-parent", "--new-session", "--clearenv"]
    if "--disable-userns" in _bwrap_options():
        args.append("--disable-userns")
    return args


def _environment_args(python: str) -> list[str]:
    """The sandbox's whole environment: a PATH that starts with the interpreter's folder, HOME, LANG, ..."""
    path = ":".join(dict.fromkeys([os.path.dirname(python), "/usr/local/bin", "/usr/bin", "/bin"]))
    args = ["--setenv", "PATH", path]
    for name, value in ENVIRONMENT.items():
        args += ["--setenv", name, value]
    return args


def _system_mounts() -> list[str]:
    """/usr and its merged-usr links read-only, the few /etc files a dynamic program needs, /proc, /dev."""
    args = ["--ro-bind", "/usr", "/usr"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return args + ["--proc", "/proc", "--dev", "/dev"]


def _writable_mounts(size_mb: int) -> list[str]:
    """The only writable places: tmpfs of ``size_mb`` each at /tmp, /sandbox and /dev/shm (multiprocessing's
    semaphores live there)."""
    args = []
    for path in ("/tmp", WORKDIR, "/dev/shm"):
        size = ["--size", str(size_mb * 1024 * 1024)] if "--size" in _bwrap_options() else []
        args += [*size, "--tmpfs", path]
    return args


@functools.cache
def _interpreter_prefixes(python: str) -> tuple[str, ...]:
    """The folders outside /usr that ``python`` needs (its ``sys.prefix`` and ``sys.base_prefix``).

    Asks the interpreter once (it is the caller's choice, trusted). Raises ValueError when the caller is
    root and the sandbox user cannot enter one of them."""
    query = "import sys; print(sys.prefix); print(sys.base_prefix)"
    answer = subprocess.run(
        [python, "-I", "-c", query], capture_output=True, text=True, timeout=60, check=True
    )
    prefixes = [os.path.realpath(line) for line in answer.stdout.splitlines()]
    prefixes = [p for p in dict.fromkeys(prefixes) if p != "/usr" and not p.startswith("/usr/")]
    if os.geteuid() == 0:
        for prefix in prefixes:
            closed = _closed_ancestor(prefix)
            if closed:
                raise ValueError(
                    f"{python} needs {prefix}, but the sandbox user (uid {SANDBOX_UID}) cannot enter "
                    f"{closed}; use {DEFAULT_PYTHON} or an interpreter in a world-readable folder"
                )
    return tuple(prefixes)


def _closed_ancestor(path: str) -> str | None:
    """The first folder on ``path`` that others may not enter (no o+x), or None."""
    current = "/"
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


@functools.cache
def _seccomp_filter() -> bytes | None:
    """A seccomp program (classic BPF, what ``bwrap --seccomp`` reads) that fails `BLOCKED_SYSCALLS` and any
    system call of another ABI (x32, 32-bit) with EPERM; None on an architecture it does not know."""
    arch = SECCOMP_ARCHES.get(platform.machine())
    if arch is None:
        return None
    audit_arch, column = arch
    blocked = [numbers[column] for numbers in BLOCKED_SYSCALLS.values()]
    deny = 5 + len(blocked) + 1  # index of the EPERM return: after 5 checks, the JEQs and the ALLOW
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (BPF_JEQ_K, 1, 0, audit_arch),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
        (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (BPF_JGE_K, deny - 5, 0, X32_SYSCALL_BIT),  # x32 calls are x86_64's with this bit set
    ]
    program += [(BPF_JEQ_K, deny - (5 + i) - 1, 0, number) for i, number in enumerate(blocked)]
    program += [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def _limit_spec(limits: Limits) -> str:
    """The launcher's first argument: the resource limits as ``NAME=soft:hard,...``."""
    mb = 1024 * 1024
    spec = {
        "CPU": (limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU first, SIGKILL a second later
        "AS": (limits.memory_mb * mb,) * 2,
        "NPROC": (limits.processes,) * 2,
        "FSIZE": (limits.file_mb * mb,) * 2,
        "CORE": (0, 0),
        "NOFILE": (OPEN_FILES,) * 2,
    }
    return ",".join(f"{name}={soft}:{hard}" for name, (soft, hard) in spec.items())


def _sandbox_args(limits: Limits, seccomp_fd: int | None, prefixes: tuple[str, ...] = ()) -> list[str]:
    """bwrap and its options, up to the command: namespaces, user, files, system calls. The root and /dev,
    tmpfs of bwrap's own without a size, end read-only (an interpreter's prefixes are bound after /tmp's
    tmpfs, which would hide one under /tmp)."""
    args = [_bwrap(), *_isolation_args(), *_system_mounts(), *_writable_mounts(limits.disk_mb)]
    for prefix in prefixes:
        args += ["--ro-bind", prefix, prefix]
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    return args + (["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else [])


def _command(python: str, limits: Limits, fds: dict[str, int | None]) -> list[str]:
    """The whole bwrap command line for one run; ``fds``: the code, the info pipe, the seccomp filter."""
    args = _sandbox_args(limits, fds["seccomp"], _interpreter_prefixes(python))
    args += _environment_args(python) + ["--ro-bind-data", str(fds["code"]), MAIN]
    args += ["--chdir", WORKDIR, "--info-fd", str(fds["info"])]
    return args + ["--", python, "-I", "-B", "-c", LAUNCHER, _limit_spec(limits), MAIN]


@contextlib.contextmanager
def _data_fd(data: bytes | None) -> Iterator[int | None]:
    """A readable descriptor of an unnamed temporary file (O_TMPFILE) holding ``data``: bwrap reads the
    code and the seccomp filter from these, and nothing on disk outlives the call. None for None."""
    if data is None:
        yield None
        return
    with tempfile.TemporaryFile() as file:
        file.write(data)
        file.flush()
        file.seek(0)
        yield file.fileno()


@functools.cache
def sandbox_missing() -> str | None:
    """One sentence saying why no sandbox can run on this machine, or None when one can (checked once)."""
    bwrap = _bwrap()
    if bwrap is None:
        return (
            f"The code sandbox needs bubblewrap, which is not installed: run `{INSTALL}` (or `make install`)."
        )
    try:
        with _data_fd(_seccomp_filter()) as seccomp_fd:
            command = [*_sandbox_args(Limits(), seccomp_fd), "--", "true"]
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=60,
                cwd="/",
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
                **_as_sandbox_user(),
            )
    except (OSError, subprocess.SubprocessError) as error:
        reason = str(error)
    else:
        if done.returncode == 0:
            return None
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return (
        f"bubblewrap ({bwrap}, from `{INSTALL}` or `make install`) cannot create the code sandbox here "
        f"({reason}): it needs unprivileged user namespaces (see docs/envs/sandbox.md)."
    )


def run_python(code: str, limits: Limits = Limits(), python: str | None = None) -> RunResult:  # noqa: B008
    """Run ``code`` with ``python`` (default `DEFAULT_PYTHON`) in a fresh sandbox; wait for it and return.

    Raises RuntimeError when `sandbox_missing` says no sandbox can run (code never runs unsandboxed), and
    ValueError for an interpreter the sandbox cannot use; whatever the code does is in the `RunResult`."""
    missing = sandbox_missing()
    if missing:
        raise RuntimeError(missing)
    python = python or DEFAULT_PYTHON
    start = time.monotonic()
    source = code.encode("utf-8", errors="replace")
    with _data_fd(source) as code_fd, _data_fd(_seccomp_filter()) as seccomp_fd:
        info_read, info_write = os.pipe()
        try:
            try:
                fds = {"code": code_fd, "info": info_write, "seccomp": seccomp_fd}
                process = _start(_command(python, limits, fds), fds.values())
            finally:
                os.close(info_write)
            try:
                return _supervise(process, info_read, limits, start)
            finally:
                _stop(process, info_read)
        finally:
            os.close(info_read)


def _start(command: list[str], fds: Iterable[int | None]) -> subprocess.Popen:
    """Start bwrap (as uid 65534 for a root caller) in a session of its own, handing it ``fds``."""
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=tuple(fd for fd in fds if fd is not None),
        cwd="/",
        start_new_session=True,
        **_as_sandbox_user(),
    )


def _supervise(process: subprocess.Popen, info_fd: int, limits: Limits, start: float) -> RunResult:
    """Read the run's output until it ends, its output passes `DRAIN_BYTES` or its time is up."""
    captured = _Capture(process, info_fd, keep_bytes=4 * limits.output_chars)
    deadline = start + limits.wall_s
    timed_out = not captured.read_until(deadline)
    if not timed_out and not captured.overflow:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # it closed its output but runs on
            timed_out = True
    killed = timed_out or captured.overflow
    if killed:
        _stop(process, info_fd, captured.info)
    stdout, stderr, clipped = _clip(captured.text("stdout"), captured.text("stderr"), limits.output_chars)
    return RunResult(
        stdout=stdout,
        stderr=stderr,
        exit_code=None if killed else process.returncode,
        timed_out=timed_out,
        truncated=clipped or captured.cut,
        seconds=time.monotonic() - start,
    )


class _Capture:
    """The run's stdout and stderr as they arrive, of which it keeps only the first ``keep_bytes`` of stdout
    and the last ``keep_bytes`` of stderr (where an exception is), and bwrap's info JSON. It stops reading
    (``overflow``) once the run has written `DRAIN_BYTES`."""

    def __init__(self, process: subprocess.Popen, info_fd: int, keep_bytes: int):
        self.keep_bytes = keep_bytes
        self.buffers = {"stdout": bytearray(), "stderr": bytearray(), "info": bytearray()}
        self.written = 0  # bytes of stdout and stderr read so far
        self.cut = False  # some output was dropped
        self.overflow = False
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ, "stdout")
        self.selector.register(process.stderr, selectors.EVENT_READ, "stderr")
        self.selector.register(info_fd, selectors.EVENT_READ, "info")

    @property
    def info(self) -> bytes:
        return bytes(self.buffers["info"])

    def text(self, name: str) -> str:
        return self.buffers[name].decode("utf-8", errors="replace")

    def read_until(self, deadline: float) -> bool:
        """Read until every stream is closed or the output overflows (True) or the deadline passes (False)."""
        try:
            while self.selector.get_map() and not self.overflow:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                for key, _ in self.selector.select(remaining):
                    self._read(key)
            return True
        finally:
            self.selector.close()

    def _read(self, key: selectors.SelectorKey) -> None:
        chunk = os.read(key.fd, CHUNK)
        if not chunk:
            self.selector.unregister(key.fileobj)
            return
        buffer = self.buffers[key.data]
        buffer += chunk
        if key.data == "info":
            return
        self.written += len(chunk)
        excess = len(buffer) - self.keep_bytes
        if excess > 0:
            self.cut = True
            del buffer[slice(0, excess) if key.data == "stderr" else slice(self.keep_bytes, None)]
        self.overflow = self.written > DRAIN_BYTES


def _stop(process: subprocess.Popen, info_fd: int, info: bytes = b"") -> None:
    """Kill the sandbox if it still runs and reap bwrap. Killing the sandbox's PID 1 (the launcher, whose
    host pid bwrap's info JSON gives) kills every process in its PID namespace; bwrap reaps it and exits."""
    if process.poll() is None:
        child = _child_pid(info + _read_available(info_fd))
        try:
            if child:  # bwrap has not reaped it yet (bwrap runs), so the pid is still the sandbox's
                os.kill(child, signal.SIGKILL)
            else:
                os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _read_available(fd: int) -> bytes:
    """Whatever ``fd`` holds now, without waiting."""
    try:
        os.set_blocking(fd, False)
        return os.read(fd, CHUNK)
    except (BlockingIOError, OSError):
        return b""


def _child_pid(info: bytes) -> int | None:
    """The host pid of the sandbox's PID 1 from bwrap's ``--info-fd`` JSON."""
    match = re.search(rb'"child-pid"\s*:\s*(\d+)', info)
    return int(match.group(1)) if match else None


def _clip(stdout: str, stderr: str, cap: int) -> tuple[str, str, bool]:
    """At most ``cap`` characters in all: the head of stdout and the tail of stderr (where the exception is),
    stderr keeping at least half when both are long. The third value says whether anything was cut."""
    if len(stdout) + len(stderr) <= cap:
        return stdout, stderr, False
    keep_err = min(len(stderr), max(cap - len(stdout), cap // 2))
    keep_out = cap - keep_err
    return stdout[:keep_out], stderr[len(stderr) - keep_err :], True
