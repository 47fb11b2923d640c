"""The code sandbox (`agent_rl.envs.tools.sandbox`) and the ``code_interpreter`` tool on it.

Every attack runs through the real tool and must be contained: the tool answers (an error or a cut
output), the test process is unaffected, no process of the run is left (neither a child of this process
nor any process in the run's PID namespace, which each attack prints first), and nothing is written
outside the sandbox's own tmpfs. The limits are small (5 s wall, 3 s CPU) so that the module runs in
about half a minute on two cores.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from agent_rl.envs.tools.python import SCHEMA, PythonTool
from agent_rl.envs.tools.sandbox import Limits, RunResult, run_python, sandbox_missing

MISSING = sandbox_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no code sandbox on this machine: {MISSING}")

LIMITS = Limits(wall_s=5.0, cpu_s=3, memory_mb=1024, processes=32, file_mb=16, output_chars=8192)
# Printed first by every attack: the run's PID namespace, to look for leftovers in it afterwards.
NAMESPACE_LINE = 'import os; print("namespace", os.readlink("/proc/self/ns/pid"), flush=True)\n'


@pytest.fixture(scope="module")
def tool() -> PythonTool:
    return PythonTool(LIMITS)


def attack(tool: PythonTool, code: str) -> str:
    """Run ``code`` through the tool; check that nothing of the run is left; return the tool's text."""
    text = tool({"code": NAMESPACE_LINE + code})
    match = re.search(r"namespace (pid:\[\d+\])", text)
    assert match, f"the run did not start: {text[:500]}"
    assert not _processes_in(match.group(1)), "processes of the run are still alive"
    assert not psutil.Process().children(recursive=True), "the run left a child process"
    return text


def _processes_in(namespace: str) -> list[int]:
    """Host pids of the processes in the PID namespace ``namespace`` (``pid:[inode]``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == namespace:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# ------------------------------------------------------------------------------------------ plain use
def test_schema_is_an_openai_function():
    function = SCHEMA["function"]
    assert SCHEMA["type"] == "function" and function["name"] == "code_interpreter"
    assert function["parameters"]["required"] == ["code"]
    assert function["parameters"]["properties"]["code"]["type"] == "string"


def test_correct_code_prints(tool):
    assert tool({"code": "print(sum(range(10)))"}) == "45"


def test_last_bare_expression_is_shown(tool):
    assert tool({"code": "x = 6\nx * 7"}) == "42"
    assert tool({"code": "print('a')\nNone"}) == "a"


def test_numpy_and_sympy_when_the_system_python_has_them(tool):
    probe = subprocess.run(["/usr/bin/python3", "-c", "import numpy, sympy"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("/usr/bin/python3 lacks numpy or sympy (apt-get install python3-numpy python3-sympy)")
    code = "import numpy as np, sympy as sp\nprint(int(np.arange(5).sum()), sp.factorint(360))"
    assert tool({"code": code}) == "10 {2: 3, 3: 2, 5: 1}"


def test_processes_threads_and_multiprocessing_work(tool):
    code = textwrap.dedent(
        """
        import multiprocessing, subprocess, threading
        with multiprocessing.Pool(2) as pool:
            print(pool.map(abs, [-1, -2]))
        print(subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout.strip())
        thread = threading.Thread(target=print, args=('thread',))
        thread.start()
        thread.join()
        """
    )
    assert tool({"code": code}) == "[1, 2]\nhi\nthread"


def test_exception_goes_to_stderr_and_shows(tool):
    result = run_python("print('before')\n1 / 0", LIMITS)
    assert result.stdout == "before\n" and result.exit_code == 1
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert 'File "/sandbox/main.py", line 2' in result.stderr  # the traceback starts at the model's code
    assert result.text().startswith("before\nTraceback")


def test_exit_code_and_empty_output_are_said(tool):
    assert tool({"code": "import sys; sys.exit(3)"}) == "[exit code 3]"
    assert tool({"code": "x = 1"}) == "[no output]"


def test_bad_arguments_are_error_texts(tool):
    for arguments in ({}, {"code": 5}, {"code": None}, "print(1)", None):
        assert tool(arguments).startswith("Error: code_interpreter takes")


def test_four_calls_at_once(tool):
    """Four calls from four threads run side by side (their sleeps overlap: each prints when it slept, by
    the shared wall clock) and each gets its own output; no timing threshold (speed: bench/sandbox.py)."""
    codes = [
        f"import time; a = time.time(); time.sleep(1); print({i} * {i}, a, time.time())" for i in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda code: tool({"code": code}), codes))
    values = [text.split() for text in texts]
    assert [v[0] for v in values] == ["0", "1", "4", "9"]
    spans = [(float(v[1]), float(v[2])) for v in values]
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all four asleep at once
    assert not psutil.Process().children(recursive=True)


def test_result_text_notes():
    timed = RunResult("partial\n", "", None, timed_out=True, truncated=False, seconds=5.01)
    assert timed.text() == "partial\n[timed out: the program was stopped after 5.0 s]"
    killed = RunResult("", "", 152, timed_out=False, truncated=False, seconds=3.2)
    assert killed.text() == "[killed by SIGXCPU: the CPU time limit]"


# ------------------------------------------------------------------------------------- reading the host
def test_etc_shadow_is_not_there(tool):
    text = attack(tool, "print(open('/etc/shadow').read())")
    assert "FileNotFoundError" in text and "root:" not in text


def test_home_folders_are_not_there(tool):
    text = attack(tool, "import os\nprint(os.path.expanduser('~'), os.listdir(os.path.expanduser('~')))")
    assert "/sandbox ['main.py']" in text
    text = attack(tool, "import os\nprint(os.listdir('/root'))")
    assert "FileNotFoundError" in text
    text = attack(tool, "import os\nprint(os.listdir('/home'))")
    assert "FileNotFoundError" in text


def test_run_folder_and_test_files_are_not_readable(tool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the-secret-string")
    repository_file = Path.cwd() / "pyproject.toml"
    for path in (secret, repository_file, Path(__file__)):
        text = attack(tool, f"print(open({str(path)!r}).read())")
        assert "FileNotFoundError" in text and "the-secret-string" not in text


def test_only_whitelisted_host_folders_are_mounted(tool):
    text = attack(tool, "import os\nprint(sorted(os.listdir('/')), sorted(os.listdir('/etc')))")
    mounted = re.search(r"\[(.*)\] \[(.*)\]", text)
    root = set(re.findall(r"'([^']+)'", mounted.group(1)))
    assert root <= {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "proc",
        "sandbox",
        "sbin",
        "tmp",
        "usr",
    }
    assert set(re.findall(r"'([^']+)'", mounted.group(2))) <= {"alternatives", "ld.so.cache", "localtime"}


def test_host_environment_is_not_visible(tool, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-wandb-key")
    text = attack(tool, "import os\nprint(sorted(os.environ.items()))")
    assert "secret-wandb-key" not in text and "WANDB" not in text
    assert "('HOME', '/sandbox')" in text


def test_code_runs_as_an_unprivileged_user(tool):
    """Inside it is uid 65534; on the host, every process of the run (bwrap too) is never root."""
    tool({"code": "pass"})  # the one-time probes (bwrap --help, the interpreter's prefixes) run as the caller
    host_uids: set[int] = set()
    done = threading.Event()
    this = psutil.Process()

    def watch() -> None:
        while not done.is_set():
            for process in this.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if process.cmdline() != this.cmdline():  # not a fork of this process before its exec
                        host_uids.add(process.uids().real)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        text = attack(tool, "import os, time\nprint(os.getuid(), os.getgid())\ntime.sleep(1)")
    finally:
        done.set()
        watcher.join()
    assert "65534 65534" in text
    assert host_uids == {65534 if os.geteuid() == 0 else os.geteuid()}


# ------------------------------------------------------------------------------------- writing the host
def test_writes_stay_inside_the_sandbox(tool):
    name = f"agent_rl_sandbox_test_{uuid.uuid4().hex}"
    host_tmp = Path("/tmp") / name
    repository = Path.cwd() / name
    code = (
        f"open('/tmp/{name}', 'w').write('x')\n"  # its own /tmp, gone with it
        f"open('/sandbox/{name}', 'w').write('x')\n"
        "import os\nprint(os.listdir('/tmp'))\n"
        f"open({str(repository)!r}, 'w').write('x')\n"
    )
    text = attack(tool, code)
    assert f"['{name}']" in text and "FileNotFoundError" in text
    assert not host_tmp.exists() and not repository.exists()
    text = attack(tool, "open('/usr/evil', 'w').write('x')")
    assert "Read-only file system" in text and not Path("/usr/evil").exists()


def test_root_and_dev_are_read_only(tool):
    code = textwrap.dedent(
        """
        for path in ('/x', '/dev/x', '/etc/x'):
            try:
                open(path, 'w')
            except OSError as error:
                print(path, error.strerror)
        """
    )
    text = attack(tool, code)
    assert text.count("Read-only file system") == 3


def test_huge_file_hits_the_file_size_limit(tool):
    text = attack(tool, "open('big', 'wb').write(b'0' * (64 * 1024 * 1024))")
    assert "File too large" in text


def test_many_files_fill_only_the_small_tmpfs(tool):
    code = "for i in range(100):\n    open(f'f{i}', 'wb').write(b'0' * (15 * 1024 * 1024))"
    text = attack(tool, code)
    assert "No space left on device" in text


# ------------------------------------------------------------------------------------------- network
def test_no_internet(tool):
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)"
    text = attack(tool, code)
    assert "OSError" in text and "unreachable" in text


def test_host_localhost_server_is_unreachable(tool):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        text = attack(tool, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)")
        assert "ConnectionRefusedError" in text
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()


# ------------------------------------------------------------------------------------------ resources
def test_fork_bomb_is_contained(tool):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    start = time.monotonic()
    text = attack(tool, code)
    assert (
        time.monotonic() - start < LIMITS.wall_s + 60
    )  # the wall limit ends it (killing 32 processes: a while)
    assert "[timed out" in text or "[killed by" in text or "[output truncated" in text
    assert subprocess.run(["true"]).returncode == 0  # the host still forks


def test_fork_bomb_meets_the_process_limit(tool):
    code = textwrap.dedent(
        """
        import os, time
        children = 0
        try:
            for _ in range(1000):
                if os.fork() == 0:
                    time.sleep(2)
                    os._exit(0)
                children += 1
        except OSError as error:
            print('stopped at', children, type(error).__name__)
        """
    )
    text = attack(tool, code)
    stopped = re.search(r"stopped at (\d+) BlockingIOError", text)
    assert stopped and int(stopped.group(1)) < LIMITS.processes


def test_infinite_loop_hits_the_cpu_limit():
    cpu_bound = PythonTool(Limits(wall_s=30, cpu_s=2))  # the CPU limit comes first even on a busy machine
    text = attack(cpu_bound, "while True:\n    pass")
    assert "[killed by SIGXCPU: the CPU time limit]" in text


def test_sleeping_forever_hits_the_wall_limit():
    quick = PythonTool(Limits(wall_s=2.0, cpu_s=3))
    start = time.monotonic()
    result_text = attack(quick, "import time\nprint('waiting', flush=True)\ntime.sleep(600)")
    assert "waiting" in result_text and "[timed out" in result_text
    assert time.monotonic() - start < 60  # the wall limit, not the 600 s sleep


def test_background_process_does_not_outlive_the_run(tool):
    code = (
        "import os, time\nif os.fork() == 0:\n    os.close(1); os.close(2)\n    time.sleep(600)\n"
        "print('parent done')"
    )
    start = time.monotonic()
    text = attack(tool, code)
    assert "parent done" in text and time.monotonic() - start < 60  # not the child's 600 s


def test_memory_outside_the_address_space_is_refused(tool):
    """SysV shared memory and memfds outlive an unmapping, so RLIMIT_AS would not bound them: seccomp."""
    code = textwrap.dedent(
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        print('shmget', libc.shmget(0, 1 << 30, 0o1000 | 0o600), os.strerror(ctypes.get_errno()))
        os.memfd_create('x')
        """
    )
    text = attack(tool, code)
    assert "shmget -1 Operation not permitted" in text
    assert "PermissionError: [Errno 1] Operation not permitted" in text


def test_8_gb_allocation_is_a_memory_error(tool):
    text = attack(tool, "x = bytearray(8 * 1024**3)")
    assert "MemoryError" in text


def test_100_mb_of_print_is_cut_promptly():
    host = psutil.Process()
    rss = host.memory_info().rss
    start = time.monotonic()
    result = run_python(NAMESPACE_LINE + "print('x' * 100_000_000)\nprint('never')", LIMITS)
    assert time.monotonic() - start < LIMITS.wall_s + 30  # stopped by the output cap, not run out
    assert result.truncated and result.exit_code is None
    assert len(result.stdout) + len(result.stderr) <= LIMITS.output_chars
    assert "never" not in result.stdout and result.text().endswith(
        "[output truncated; the program was stopped]"
    )
    assert host.memory_info().rss - rss < 50 * 1024 * 1024


def test_killing_the_parent_and_pid_1_leaves_the_host_alone(tool):
    code = textwrap.dedent(
        """
        import os, signal
        os.kill(os.getppid(), signal.SIGKILL)  # its parent is the sandbox's PID 1
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP):
            os.kill(1, sig)
        print('still here')
        """
    )
    assert attack(tool, code).endswith("still here")  # PID 1 of a namespace ignores them all
    code = "import os, signal\nos.kill(-1, signal.SIGKILL)  # all it may signal but itself and PID 1"
    assert "ProcessLookupError" in attack(tool, code)  # there is no other process in its namespace
    assert psutil.Process().is_running()


def test_ctypes_exit_ends_only_the_child(tool):
    text = attack(tool, "import ctypes\nprint('bye', flush=True)\nctypes.CDLL(None).exit(7)")
    assert "bye" in text and "[exit code 7]" in text
    assert "done" in tool({"code": "print('done')"})


def test_very_long_code():
    roomy = PythonTool(Limits(wall_s=30, cpu_s=20))  # parsing 250,000 statements takes seconds of CPU
    statements = "x=1;" * 250_000  # 1 MB on one line
    assert attack(roomy, statements + "print(x)").endswith("1")
    literal = "s = '" + "a" * 1_000_000 + "'\nprint(len(s))"
    assert attack(roomy, literal).endswith("1000000")


def test_deeply_nested_code_is_an_error_not_a_crash(tool):
    text = tool({"code": "x = " + "(" * 100_000 + ")" * 100_000})
    assert "SyntaxError: too many nested parentheses" in text
    assert not psutil.Process().children(recursive=True)
