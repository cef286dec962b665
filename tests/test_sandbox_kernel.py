"""The third round of probes: memory the kernel holds for a run, the kernel's riskiest calls, acting on pid 1, and
a pass forged by the program.

Each probe prints a token made at run time first, so a program that never ran is not taken for containment, and
each has its positive control beside it (the same call on the program's own pid succeeds, a Unix socket pair
works, the canonical solution and the right printed answer pass). Every probe runs with the interpreter in both
placements: the one running the tests (outside /tmp) and a virtual environment under /tmp, made here with a copy
of localcoder (the sandbox binds it in after its own /tmp).

The numbers are x86_64's system calls; elsewhere the syscall probes skip.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcoder.evaluate.datasets import load_tasks
from tests.helpers import make_venv

pytestmark = [
    pytest.mark.usefixtures("os_sandbox"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is the Linux sandbox"),
]
REPO = Path(__file__).resolve().parent.parent
X86_64 = platform.machine() == "x86_64"

# Run by the interpreter under test: each job through run_program or eval's check; JSON out, never a traceback.
DRIVER = """
import json, sys
from localcoder.evaluate.datasets import load_tasks
from localcoder.evaluate.execution import check
from localcoder.sandbox import Limits, run_program
out = {}
for name, job in json.load(sys.stdin).items():
    if job["kind"] == "program":
        done = run_program(job["source"], Limits(seconds=20.0, memory_mb=job["memory_mb"]))
        out[name] = {"stdout": done.stdout, "stderr": done.stderr[-2000:], "sandbox": done.sandbox}
    else:
        task = {t.task_id: t for t in load_tasks(job["benchmark"], job["limit"])}[job["task"]]
        outcome = check(task, job["completion"])
        out[name] = {"passed": outcome.passed, "reason": outcome.reason}
print(json.dumps(out))
"""

SOCKET_BUFFERS = """
import socket
held, pairs = 0, []
try:
    while held < 64 << 20:
        a, b = socket.socketpair()
        pairs.append((a, b))
        a.setblocking(False)
        try:
            while True:
                held += a.send(b"x" * 65536)
        except BlockingIOError:
            pass
    print("held", held, "stopped at 64 MiB")
except OSError as exc:
    print("held", held, exc.strerror)
"""

EMPTY_FILES = """
import json
made = {}
for directory in ("/tmp", "/dev/shm"):
    count = 0
    try:
        while count < 20000:
            open(f"{directory}/empty{count}", "w").close()
            count += 1
        made[directory] = [count, "no error"]
    except OSError as exc:
        made[directory] = [count, exc.strerror]
print(json.dumps(made))
"""

RISKY_CALLS = """
import asyncio, ctypes, errno, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def call(number, *args):
    result = libc.syscall(ctypes.c_long(number), *args)
    return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
uring_params = ctypes.create_string_buffer(120)
aio_context = ctypes.c_ulong(0)
perf_attr = ctypes.create_string_buffer(128)
perf_attr[0:4] = (1).to_bytes(4, "little")  # PERF_TYPE_SOFTWARE, config 0: the CPU clock
perf_attr[4:8] = (128).to_bytes(4, "little")  # size
perf_attr[40:48] = (0b1100000).to_bytes(8, "little")  # exclude_kernel, exclude_hv
calls = {
    "io_uring_setup": call(425, ctypes.c_uint(8), uring_params),
    "userfaultfd": call(323, ctypes.c_int(1)),  # UFFD_USER_MODE_ONLY: open to every user where the sysctl is 0
    "perf_event_open": call(298, perf_attr, ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(-1), ctypes.c_ulong(0)),
    "io_setup": call(206, ctypes.c_uint(8), ctypes.byref(aio_context)),
    "bpf": call(321, ctypes.c_int(0), ctypes.c_void_p(0), ctypes.c_uint(0)),
    "msgget": call(68, ctypes.c_int(0), ctypes.c_int(0o1600)),
    "semget": call(64, ctypes.c_int(0), ctypes.c_int(1), ctypes.c_int(0o1600)),
}
families = {}
for name, family, kind in (("netlink", 16, socket.SOCK_RAW), ("vsock", 40, socket.SOCK_STREAM),
                           ("inet", 2, socket.SOCK_STREAM), ("inet6", 10, socket.SOCK_DGRAM),
                           ("alg", 38, socket.SOCK_SEQPACKET), ("packet", 17, socket.SOCK_RAW)):
    try:
        socket.socket(family, kind).close()
        families[name] = "ok"
    except OSError as exc:
        families[name] = errno.errorcode[exc.errno]
left, right = socket.socketpair()
left.sendall(b"unix")
control = [right.recv(4).decode(), asyncio.run(asyncio.sleep(0, "asyncio"))]
print(json.dumps({"calls": calls, "families": families, "control": control}))
"""

OTHER_PROCESSES = """
import ctypes, errno, json, os, resource
libc = ctypes.CDLL(None, use_errno=True)
def attempt(function):
    try:
        function()
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
def syscall(number, *args):
    def run():
        if libc.syscall(ctypes.c_long(number), *args) < 0:
            raise OSError(ctypes.get_errno(), "")
    return run
nodes = ctypes.c_ulong(1)
head, size = ctypes.c_void_p(0), ctypes.c_size_t(0)
def acts_on(pid):
    files = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "prlimit": attempt(lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, files)),
        "sched_setaffinity": attempt(lambda: os.sched_setaffinity(pid, os.sched_getaffinity(0))),
        "sched_setscheduler": attempt(lambda: os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))),
        "setpriority": attempt(lambda: os.setpriority(os.PRIO_PROCESS, pid, 1)),
        "ioprio_set": attempt(syscall(251, ctypes.c_int(1), ctypes.c_int(pid), ctypes.c_int((2 << 13) | 4))),
        "migrate_pages": attempt(syscall(256, ctypes.c_int(pid), ctypes.c_ulong(64), ctypes.byref(nodes),
                                         ctypes.byref(nodes))),
        "get_robust_list": attempt(syscall(274, ctypes.c_int(pid), ctypes.byref(head), ctypes.byref(size))),
        "kill": attempt(lambda: os.kill(pid, 0)),
    }
print(json.dumps({
    "own": {"pid": os.getpid(), **acts_on(os.getpid())},
    "pid 1": acts_on(1),
    "every process of the user": {"setpriority": attempt(lambda: os.setpriority(os.PRIO_USER, 0, 1))},
    "its process group, which holds pid 1": {"kill": attempt(lambda: os.kill(0, 0))},
}))
"""

# A wrong body for HumanEval/0 that forges a pass: it prints the marker the old check put in the program's own
# file, then exits before the tests run. The token on stderr proves it ran.
FORGED_HUMANEVAL = """\
    import os, re, sys
    for marker in re.findall(r"#localcoder-eval-[0-9a-f]+:", open(sys.argv[0]).read()):
        print(marker, flush=True)
    print({token!r}, file=sys.stderr, flush=True)
    os._exit(0)
"""

# A wrong MTPB program that forges a pass: the old harness's marker sat in its caller's frame.
FORGED_MTPB = """\
import json, os, sys
frame, markers = sys._getframe(), []
while frame is not None:
    markers += [v for v in frame.f_locals.values() if isinstance(v, str) and v.startswith("#localcoder-eval-")]
    frame = frame.f_back
for marker in markers:
    os.write(1, ("\\n" + marker + json.dumps({{"passed": True, "reason": "passed"}}) + "\\n").encode())
os.write(2, {token!r}.encode() + b"\\n")
os._exit(0)
"""


def with_token(source: str) -> tuple[str, str]:
    token = secrets.token_hex(12)
    return token, f"print({token!r}, flush=True)\n" + textwrap.dedent(source)


@pytest.fixture(scope="module", params=["outside-tmp", "venv-under-tmp"])
def interpreter(request: pytest.FixtureRequest) -> Iterator[tuple[str, dict]]:
    """(placement, the probes' results with the interpreter there): every probe is run once per placement."""
    if request.param == "outside-tmp":
        if os.path.realpath(sys.prefix).startswith("/tmp/"):
            pytest.skip("this interpreter lives under /tmp: the other placement covers it")
        python, top, path = Path(sys.executable), None, {"PYTHONPATH": str(REPO)}  # this checkout's code
    else:
        top = Path(tempfile.mkdtemp(prefix="localcoder-venv-", dir="/tmp"))
        top.chmod(0o755)
        python, path = make_venv(top), {}
    try:
        yield request.param, run_probes(python, path)
    finally:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)


TOKENS: dict[str, str] = {}


def run_probes(python: Path, env: dict[str, str]) -> dict:
    jobs = {}
    for name, source, memory_mb in (
        ("socket buffers", SOCKET_BUFFERS, 256),
        ("empty files", EMPTY_FILES, 256),
        ("risky calls", RISKY_CALLS, 1024),
        ("other processes", OTHER_PROCESSES, 1024),
    ):
        TOKENS[name], program = with_token(source)
        jobs[name] = {"kind": "program", "source": program, "memory_mb": memory_mb}
    humaneval, mtpb = load_tasks("humaneval", 1)[0], load_tasks("mtpb", 1)[0]
    TOKENS["forged humaneval"], TOKENS["forged mtpb"] = secrets.token_hex(12), secrets.token_hex(12)
    for name, task, benchmark, completion in (
        ("forged humaneval", humaneval, "humaneval", FORGED_HUMANEVAL.format(token=TOKENS["forged humaneval"])),
        ("canonical humaneval", humaneval, "humaneval", humaneval.canonical_solution),
        ("forged mtpb", mtpb, "mtpb", FORGED_MTPB.format(token=TOKENS["forged mtpb"])),
        ("right mtpb", mtpb, "mtpb", f"print({mtpb.expected!r})"),
    ):
        jobs[name] = {"kind": "check", "benchmark": benchmark, "limit": 1, "task": task.task_id,
                      "completion": completion}  # fmt: skip
    done = subprocess.run([str(python), "-c", DRIVER], input=json.dumps(jobs), capture_output=True, text=True,
                          timeout=300, cwd="/", env={"PATH": os.environ.get("PATH", os.defpath), **env})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def ran(results: dict, name: str) -> list[str]:
    """The probe's output lines after its token, which must come first."""
    lines = results[name]["stdout"].splitlines()
    assert lines and lines[0] == TOKENS[name], results[name]
    return lines[1:]


def test_socket_buffers_are_bounded_by_the_open_file_limit(interpreter: tuple[str, dict]) -> None:
    _, results = interpreter
    words = ran(results, "socket buffers")[0].split()
    assert words[0] == "held" and 0 < int(words[1]) < 32 << 20, words  # the old limit let it reach 64 MiB
    assert " ".join(words[2:]) == "Too many open files"


def test_tmp_and_dev_shm_hold_a_bounded_number_of_files(interpreter: tuple[str, dict]) -> None:
    _, results = interpreter
    made = json.loads(ran(results, "empty files")[0])
    assert 1000 < made["/tmp"][0] and made["/tmp"][0] + made["/dev/shm"][0] <= 4096, made
    assert {error for _, error in made.values()} == {"No space left on device"}, made
    assert any("inodes" in held for held in results["empty files"]["sandbox"]), results["empty files"]["sandbox"]


@pytest.mark.skipif(not X86_64, reason="the probe uses x86_64's system call numbers")
def test_the_kernels_riskiest_calls_and_other_socket_families_are_refused(interpreter: tuple[str, dict]) -> None:
    _, results = interpreter
    seen = json.loads(ran(results, "risky calls")[0])
    assert seen["control"] == ["unix", "asyncio"]  # a Unix socket pair and an event loop still work
    assert seen["calls"] == dict.fromkeys(seen["calls"], "EPERM"), seen["calls"]
    assert seen["families"] == dict.fromkeys(seen["families"], "EAFNOSUPPORT"), seen["families"]


@pytest.mark.skipif(not X86_64, reason="the probe uses x86_64's system call numbers")
def test_no_call_acts_on_pid_1(interpreter: tuple[str, dict]) -> None:
    _, results = interpreter
    seen = json.loads(ran(results, "other processes")[0])
    own = seen.pop("own")
    assert own == {"pid": own["pid"], **dict.fromkeys(set(own) - {"pid"}, "ok")}, own  # its own pid: allowed
    assert seen["pid 1"] == dict.fromkeys(own.keys() - {"pid"}, "EPERM"), seen["pid 1"]
    assert seen["every process of the user"] == {"setpriority": "EPERM"}
    assert seen["its process group, which holds pid 1"] == {"kill": "EPERM"}


def test_a_forged_pass_fails(interpreter: tuple[str, dict]) -> None:
    _, results = interpreter
    assert results["canonical humaneval"] == {"passed": True, "reason": "passed"}  # the checks ran
    assert results["right mtpb"] == {"passed": True, "reason": "passed"}
    for name in ("forged humaneval", "forged mtpb"):
        assert not results[name]["passed"], results[name]
        assert TOKENS[name] in results[name]["reason"], results[name]  # the forger ran, and exited early


def test_a_conversation_ends_with_the_time_limit_when_the_program_stops_reading() -> None:
    """eval talks with the program over stdin and stdout; a program that stops reading must not hold it."""
    import threading

    from localcoder.sandbox import Channel, Limits, run_program

    token = secrets.token_hex(12)
    heard: list = []

    def echo(channel: Channel) -> None:  # the control: a program that reads answers
        heard.append((channel.send(token.encode()), channel.receive()))

    def flood(channel: Channel) -> None:  # a megabyte to a program that never reads: more than a pipe holds
        heard.append(channel.send(b"x" * (1 << 20)))

    answered = run_program("import sys\nprint(sys.stdin.readline().strip()[::-1])", Limits(seconds=10), converse=echo)
    assert heard == [(True, token[::-1].encode())] and answered.exit_code == 0
    stuck: list = []
    runner = threading.Thread(target=lambda: stuck.append(run_program("import time\ntime.sleep(60)", Limits(seconds=2),
                                                                      converse=flood)))  # fmt: skip
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "the conversation outlived the run's time limit"
    assert heard[1] is False and stuck[0].timed_out
