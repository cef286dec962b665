"""Programs that try to get out of the sandbox, through chat's /run and through eval's check path.

Each attack leaves evidence OUTSIDE the sandbox if it works: a file in a directory the test watches, a secret
(planted in the test's directory, in $HOME, in an environment variable) in what the program printed, a
connection a listener of the test accepts (TCP on loopback, a Unix socket by path, an abstract Unix socket), a
process with a marker in its argv still alive after the run, more bytes written than the sandbox's tmpfs holds.
Running a command INSIDE the sandbox is no escape (the shell is inside the boundary too); what it reaches is.
The test asserts no evidence at all, and that the run went on after every attack.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcoder.evaluate.datasets import BENCHMARKS, load_tasks
from localcoder.evaluate.results import ResultsFile
from localcoder.evaluate.runner import score

pytestmark = pytest.mark.usefixtures("os_sandbox")
TASK = load_tasks("humaneval", 1)[0]  # has_close_elements: each attack becomes the body of the function
TMPFS_BYTES = (128 + 16) << 20  # the sandbox's /tmp and /dev/shm


@dataclass
class Outside:
    """What the test watches; every path here is on the host."""

    watched: Path  # attacks try to create files here
    secret_files: list[Path]
    secrets: list[str]  # in those files and in an environment variable
    marker: str  # in the argv of any process an attack tries to leave behind
    tcp: socket.socket
    unix: socket.socket
    unix_path: Path
    abstract: socket.socket
    abstract_name: str
    fd_file: Path  # opened in the parent without close-on-exec: a program must not inherit it
    fd: int
    targets: dict[str, Path]  # files outside `watched` that attacks try to create: in the venv, stdlib, $HOME

    def evidence(self, output: str) -> list[str]:
        found = [f"file {path}" for path in sorted(self.watched.rglob("*"))]
        found += [f"{name} file {path}" for name, path in self.targets.items() if path.exists()]
        found += [f"secret {secret} in the output" for secret in self.secrets if secret in output]
        found += [f"host /etc/passwd in the output: {line}" for line in _host_passwd_lines() if line in output]
        for name, listener in (("tcp", self.tcp), ("unix", self.unix), ("abstract", self.abstract)):
            listener.setblocking(False)
            try:
                listener.accept()[0].close()
                found.append(f"a {name} connection")
            except BlockingIOError:
                pass
        if self.fd_file.read_bytes():
            found.append(f"wrote through an inherited descriptor: {self.fd_file.read_bytes()[:80]!r}")
        found += ["reached pid 1"] if "attached to pid 1" in output else []
        found += ["held memory outside the limit"] if "held memory outside the limit" in output else []
        found += [f"process left behind: {argv}" for argv in _processes_with(self.marker)]
        found += [f"{n} bytes written, more than the tmpfs holds" for n in map(int, re.findall(r"wrote (\d+)", output))
                  if n > TMPFS_BYTES]  # fmt: skip
        return found


def _host_passwd_lines() -> list[str]:
    return [line for line in Path("/etc/passwd").read_text().splitlines() if line.startswith("root:")]


def _processes_with(marker: str, wait: float = 2.0) -> list[str]:
    """The argv of live processes that carry `marker`, after giving killed ones `wait` seconds to go."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in argv and str(os.getpid()) != cmdline.parent.name:
                found.append(argv)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    token = secrets.token_hex(8)
    watched = tmp_path / "watched"
    watched.mkdir()
    planted = tmp_path / "secret.txt"
    in_home = Path.home() / f".localcoder-escape-{token}"
    tokens = [f"tmp-secret-{token}", f"home-secret-{token}", f"env-secret-{token}"]
    planted.write_text(tokens[0])
    in_home.write_text(tokens[1])
    monkeypatch.setenv("LOCALCODER_ESCAPE_SECRET", tokens[2])
    tcp = socket.create_server(("127.0.0.1", 0))
    unix_path = tmp_path / "unix.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(unix_path))
    unix.listen()
    abstract_name = f"\0localcoder-escape-{token}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(abstract_name)
    abstract.listen()
    fd_file = tmp_path / "inherited"
    fd_file.write_bytes(b"")
    fd = os.open(fd_file, os.O_WRONLY | os.O_APPEND)
    os.set_inheritable(fd, True)
    marker = f"localcoder-escape-{token}"
    module = marker.replace("-", "_")
    site = Path(sys.prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    targets = {
        "venv": site / f"sitecustomize_{module}.py",
        "stdlib": Path(os.__file__).parent / f"{module}.py",
        "home": Path.home() / f".{marker}-home",
    }
    try:
        yield Outside(watched, [planted, in_home], tokens, marker, tcp, unix, unix_path, abstract, abstract_name,
                      fd_file, fd, targets)  # fmt: skip
    finally:
        os.close(fd)
        for listener in (tcp, unix, abstract):
            listener.close()
        for path in [in_home, *targets.values()]:
            path.unlink(missing_ok=True)  # an escape must not stay behind in the venv or the home directory


def attacks(out: Outside) -> dict[str, str]:
    """name -> program. Each prints or raises what it got; the evidence is judged outside."""
    w = str(out.watched)
    command = f"echo escaped > {w}/command; cat {' '.join(map(str, out.secret_files))}; sleep 30 # {out.marker}"
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)", out.marker]
    programs = {
        # Run a command.
        "subprocess": f"import subprocess\nprint(subprocess.run(['/bin/sh', '-c', {command!r}]))",
        "os.system": f"import os\nprint(os.system({command!r}))",
        "os.exec": f"import os\nos.execv('/bin/sh', ['sh', '-c', {command!r}])",
        "os.exec python": f"import os\nos.execv({sleeper[0]!r}, {sleeper!r})",
        "fork": f"import os\nif os.fork() == 0:\n    os.execv('/bin/sh', ['sh', '-c', {command!r}])\nos.wait()",
        "posix_spawn": f"import os\nos.posix_spawn('/bin/sh', ['sh', '-c', {command!r}], {{}})",
        "pty.spawn": f"import pty\npty.spawn(['/bin/sh', '-c', {command!r}])",
        "multiprocessing": (
            f"import multiprocessing, os\np = multiprocessing.get_context('fork').Process(target=os.system,"
            f" args=({command!r},))\np.start()\np.join()"
        ),
        "re-imported _posixsubprocess": (
            "import sys\nsys.modules.pop('_posixsubprocess', None)\nimport _posixsubprocess, subprocess\n"
            f"subprocess._fork_exec = _posixsubprocess.fork_exec\nprint(subprocess.run(['/bin/sh', '-c', {command!r}]))"
        ),
        "ctypes system()": f"import ctypes\nprint(ctypes.CDLL(None).system({command.encode()!r}))",
        "raw fork and clone3 syscalls": (
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"for number in (57, 435, 0x40000000 | 57):\n    if libc.syscall(number, 0, 0) == 0:\n"
            f"        os.execv('/bin/sh', ['sh', '-c', {command!r}])\n"
        ),
        # Write outside.
        "absolute path": f"open({w + '/absolute'!r}, 'w').write('escaped')",
        "relative path": f"import os\nopen(os.path.relpath({w + '/relative'!r}), 'w').write('escaped')",
        "..": f"open('../' * 30 + {(w + '/dotdot').lstrip('/')!r}, 'w').write('escaped')",
        "dir_fd": (
            "import os\nroot = os.open('/', os.O_RDONLY)\n"
            f"os.write(os.open({(w + '/dirfd').lstrip('/')!r}, os.O_CREAT | os.O_WRONLY, dir_fd=root), b'escaped')"
        ),
        "symlink": f"import os\nos.symlink({w + '/symlink'!r}, 'link')\nopen('link', 'w').write('escaped')",
        "hard link": f"import os\nopen('mine', 'w').write('escaped')\nos.link('mine', {w + '/hardlink'!r})",
        "mkfifo": f"import os\nos.mkfifo({w + '/fifo'!r})",
        "mknod": f"import os, stat\nos.mknod({w + '/node'!r}, stat.S_IFREG | 0o600)",
        "rename": f"import os\nopen('mine', 'w').write('escaped')\nos.rename('mine', {w + '/renamed'!r})",
        "/proc/self/root and /proc/1/root": (
            f"for p in ('/proc/self/root', '/proc/1/root', '/proc/1/cwd/../..'):\n"
            f"    try:\n        open(p + {w + '/proc'!r}, 'w').write('escaped')\n    except OSError as e:\n"
            f"        print(e)"
        ),
        "venv, stdlib and home": (
            f"for path in {list(map(str, out.targets.values()))!r}:\n    try:\n"
            "        open(path, 'w').write('escaped')\n    except OSError as e:\n        print(e)"
        ),
        # Read outside.
        "read planted files": (
            f"out = []\nfor path in {list(map(str, out.secret_files)) + ['/etc/passwd']!r}:\n    try:\n"
            f"        out.append(open(path).read().splitlines()[0])\n    except OSError as e:\n"
            "        out.append(e.strerror)\nraise SystemExit(' | '.join(out))"  # one short line: eval keeps the last
        ),
        "environment and /proc environ": (
            "import os\nparts = [v for k, v in os.environ.items() if 'SECRET' in k]\n"
            "for p in ('/proc/self/environ', '/proc/1/environ'):\n    try:\n"
            "        parts += [v for v in open(p).read().split('\\0') if 'SECRET' in v]\n    except OSError as e:\n"
            "        parts.append(e.strerror)\nraise SystemExit(' | '.join(parts) or 'no secret')"
        ),
        "inherited descriptors": (
            "import os\nfor fd in range(3, 1024):\n    try:\n        os.write(fd, b'escaped')\n    except OSError:\n"
            "        pass\nprint(sorted(os.listdir('/proc/self/fd')))"
        ),
        # Reach the one other process in the sandbox: bwrap's reaper, pid 1, outside the seccomp filter.
        "ptrace and /proc/1/mem": (
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "if libc.ptrace(16, 1, 0, 0) == 0:\n    print('attached to pid 1')\n"
            "try:\n    os.open('/proc/1/mem', os.O_RDWR)\n    print('attached to pid 1 through /proc')\n"
            "except OSError as e:\n    raise SystemExit(e.strerror)"
        ),
        "pidfd to pid 1": (
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "try:\n    pid1 = os.pidfd_open(1)\nexcept OSError as e:\n    raise SystemExit(e.strerror)\n"
            "for fd in range(64):\n    if libc.syscall(438, pid1, fd, 0) >= 0:\n"
            "        print('attached to pid 1: took its descriptor', fd)"
        ),
        # Hold memory outside the address-space limit: a memfd's pages, SysV shared memory.
        "memfd": (
            "import mmap, os\nfd = os.memfd_create('hoard')\nos.ftruncate(fd, 1280 << 20)\n"
            "view = mmap.mmap(fd, 1280 << 20)\nview[::4096] = b'x' * (1280 << 8)\n"
            "print('held memory outside the limit')"
        ),
        # Connect.
        "tcp": f"import socket\nsocket.create_connection(('127.0.0.1', {out.tcp.getsockname()[1]}), 2)",
        "unix socket": f"import socket\nsocket.socket(socket.AF_UNIX).connect({str(out.unix_path)!r})",
        "abstract unix socket": f"import socket\nsocket.socket(socket.AF_UNIX).connect({out.abstract_name!r})",
        # Outlive the run.
        "setsid": (
            f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    os.execv({sleeper[0]!r}, {sleeper!r})\n"
            "time.sleep(0.5)"
        ),
        "double fork": (
            f"import os\nif os.fork() == 0:\n    if os.fork() == 0:\n        os.execv({sleeper[0]!r}, {sleeper!r})\n"
            "    os._exit(0)\nos.wait()"
        ),
        "threads": "import threading, time\nthreading.Thread(target=time.sleep, args=(30,)).start()",
        # Exhaust.
        "memory": "hog = [bytearray(256 << 20) for _ in range(64)]",
        "cpu": "while True:\n    pass",
        "disk": textwrap.dedent("""
            written = 0
            for directory in ('.', '/tmp', '/dev/shm'):
                for i in range(100):
                    try:
                        with open(f'{directory}/fill{i}', 'wb') as f:
                            for _ in range(64):
                                written += f.write(b'x' * (1 << 20))
                    except OSError:
                        break
            raise SystemExit(f'wrote {written}')
        """),
        "processes": "import os\nwhile True:\n    os.fork()",
        "thread bomb": "import threading as t, time\nwhile True:\n    t.Thread(target=time.sleep, args=(9,)).start()",
    }
    return programs


HONEST = "print('the session goes on')\n"


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("llama_cpp")
    from ggufkit.vocab.codegen25 import ENDOFTEXT_ID, codegen25_tokenizer
    from tests.bigram import bigram_model

    newline = codegen25_tokenizer().encode("\n")[0]
    return bigram_model(tmp_path_factory.mktemp("escape-chat"), "print(42)", start=newline, end=ENDOFTEXT_ID)


def test_no_escape_through_chat_run(chat_model: Path, outside: Outside, tmp_path: Path) -> None:
    programs = attacks(outside)
    ran = [f"attack {index} ran {secrets.token_hex(6)}" for index in range(len(programs))]  # proof each started
    lines = []
    for index, source in enumerate(programs.values()):
        path = tmp_path / f"attack{index}.py"
        path.write_text(f"print({ran[index]!r}, flush=True)\n{source}")
        lines += [f"/load {path}", "/run"]
    honest = tmp_path / "honest.py"
    honest.write_text(HONEST)
    lines += [f"/load {honest}", "/run"]
    done = subprocess.run(
        [sys.executable, "-m", "localcoder", "chat", "--model", str(chat_model), "--script", "-", "-t", "0"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=900, pass_fds=[outside.fd],
        env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    statuses = re.findall(r"(exit status -?\d+|[a-z ]*limit|killed by \w+), [\d.]+ s;", done.stderr)
    assert len(statuses) == len(programs) + 1, done.stderr[-3000:]  # every /run finished and reported
    assert "the session goes on" in done.stderr
    assert [token for token in ran if token not in done.stderr] == []
    assert outside.evidence(done.stderr + done.stdout) == []


def test_no_escape_through_eval_checks(outside: Outside) -> None:
    programs = attacks(outside)
    body = "    exec({!r}, {{'__name__': '__main__'}})\n    return False\n"
    completions = [body.format(source) for source in programs.values()]
    completions.append(TASK.canonical_solution)  # the run goes on: an honest sample after the attacks passes
    results = ResultsFile(None, {})  # this process holds outside.fd open and inheritable all along
    done = score(BENCHMARKS["humaneval"], [TASK], len(completions), lambda task, n: completions[n], results, workers=2)
    assert done == len(completions)
    records = [results.records[(TASK.task_id, n)] for n in range(len(completions))]
    assert [r.passed for r in records] == [False] * len(programs) + [True]
    assert not any(r.reason.startswith("executor error") for r in records), [r.reason for r in records]
    assert outside.evidence("\n".join(r.reason for r in records)) == []



@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_no_keystrokes_pushed_into_the_users_terminal(tmp_path: Path) -> None:
    """TIOCSTI on the controlling terminal would type a command for the user's shell once the program ends."""
    import pty

    from localcoder.sandbox import run_program

    source = textwrap.dedent("""
        import fcntl, os, termios
        for target in ('/dev/tty', 0, 1, 2):
            try:
                fd = os.open(target, os.O_RDWR) if isinstance(target, str) else target
                for byte in b'echo INJECTED\\n':
                    fcntl.ioctl(fd, termios.TIOCSTI, bytes([byte]))
                print('pushed through', target)
            except OSError as exc:
                print(target, exc.strerror)
    """)
    report = tmp_path / "report.txt"
    pid, terminal = pty.fork()  # the child runs the program with this terminal as its controlling terminal
    if pid == 0:
        try:
            report.write_text(run_program(source).stdout)
        finally:
            os._exit(0)
    seen = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child exited and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.waitpid(pid, 0)
    os.close(terminal)
    assert "/dev/tty" in report.read_text() and "pushed" not in report.read_text()
    assert b"INJECTED" not in seen
