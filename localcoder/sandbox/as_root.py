"""Run by root, bwrap would give the program a kernel identity of root (uid 0 outside its user namespace).

The namespace hides the host, but the kernel still checks some permissions against that identity: the program
could write the host's global sysctls (/proc/sys: `test_perm` compares the effective uid with root's) and chmod
the host's device nodes under /dev (the owner of a file needs no capability to chmod it). Both were tried and
held as root. So a run started by root first leaves root, in the child, before bwrap starts: uid and gid 65534
("nobody"), no supplementary groups. bwrap then runs unprivileged, the program's identity outside is nobody,
and RLIMIT_NPROC binds it.

Nobody may not be able to reach the Python installation (pyenv keeps it in /root, which is mode 700), so before
leaving root the child, already in a private mount namespace of its own (scratch.py makes it, and the run's
tmpfs in it: the host sees nothing of either), bind-mounts each Python directory onto an empty directory in /tmp
that nobody can reach (`stage_dirs`: made once per process, removed at exit; each run's binds live only in its
own namespace), where bwrap, as nobody, binds it from. It reads those directories as nobody, which their modes
(0755, 0644 as pip and pyenv make them) allow.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile

from localcoder.sandbox.process import ChildSetup
from localcoder.sandbox.scratch import NOBODY

_MS_BIND, _MS_REC = 0x1000, 0x4000


@functools.cache
def stage_dirs(count: int) -> list[str]:
    """`count` empty directories nobody can reach, for the binds; one set per process."""
    base = tempfile.mkdtemp(prefix="localcoder-python-", dir="/tmp")
    os.chmod(base, 0o755)
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    stages = [os.path.join(base, str(index)) for index in range(count)]
    for stage in stages:
        os.mkdir(stage)
    return stages


def leave_root(python_dirs: list[str], stages: list[str]) -> ChildSetup:
    """The child's setup, run as root before exec and after scratch.mount_scratch: bind the Python directories onto
    `stages`, become nobody.

    Any failure raises, which makes Popen fail in the parent: a program never starts as root.
    """
    import ctypes  # loaded in the parent: a forked child should not have to look up libraries

    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def setup() -> list[str]:
        for path, stage in zip(python_dirs, stages, strict=True):
            check(libc.mount(path.encode(), stage.encode(), None, _MS_BIND | _MS_REC, None), f"binding {path}")
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        return [f"uid {NOBODY}"]

    return setup
