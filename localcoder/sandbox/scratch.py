"""The run's only writable place: one tmpfs bounded in bytes and in inodes, bound into the sandbox as /tmp and
/dev/shm.

Why inodes: bwrap's own `--tmpfs` takes a size but no inode count, and an empty file costs the kernel memory
(an inode and a dentry, about 1 KiB) that the size does not count: a program made a million empty files in a
128 MiB /tmp in 4 s, and the host's kernel memory grew by 1 GB. tmpfs's `nr_inodes` bounds that: SCRATCH_INODES
files and directories, about 4 MiB of kernel memory, more than any HumanEval or MTPB program makes (they make
none).

Why not a memory cgroup per run, which would bound every kind of kernel memory at once: it needs cgroup v2 with a
subtree delegated to the user (systemd's Delegate=, or root), which a command-line tool cannot count on. This
machine's container has cgroup v1, and a desktop user's session has no writable memory controller. A tmpfs
mount needs only what bwrap itself needs, a user namespace. The other kernel memory a run can hold is bounded
elsewhere: socket buffers and pipes by the open-file limit (process.py), SysV IPC and memfds refused
(seccomp.py), threads by RLIMIT_NPROC.

How: in the child, before it execs bwrap, a mount namespace of its own (started by root: just that, before it
leaves root, as_root.py; otherwise inside a user namespace that maps only the user's own uid and gid, as bwrap
makes its own), every mount made private so the host sees none of it, then a tmpfs with `size=` and
`nr_inodes=` on an empty directory (SCRATCH_POINT), holding `tmp` and `shm`, which bwrap binds. bwrap's own
namespaces nest inside. It costs one unshare and one mount per run, well under a millisecond.

Where the kernel refuses a user namespace to any process but bwrap (Ubuntu 24.04's AppArmor rule), which is
found once per process by trying it on /bin/true, runs fall back to bwrap's own `--tmpfs` mounts (bounded in
bytes only) and say so in the list of what held ("tmp without inode cap").
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
import threading

from localcoder.sandbox.process import ChildSetup

SCRATCH_BYTES = (128 + 16) << 20  # /tmp (which holds the working directory) and /dev/shm together
SCRATCH_INODES = 4096
NOBODY = 65534
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
_lock = threading.Lock()


@functools.cache
def scratch_point() -> str:
    """An empty directory of this process's own, where each run's child mounts its tmpfs (in its own mount
    namespace: the directory stays empty on the host); removed at exit."""
    point = tempfile.mkdtemp(prefix="localcoder-scratch-", dir="/tmp")
    os.chmod(point, 0o755)  # bwrap, run as nobody after leaving root, binds from it
    atexit.register(shutil.rmtree, point, ignore_errors=True)
    return point


def _libc():
    import ctypes  # loaded in the parent: a forked child should not have to look up libraries

    return ctypes, ctypes.CDLL(None, use_errno=True)


def mount_scratch(as_root: bool, point: str) -> ChildSetup:
    """The child's setup before bwrap: its own mount namespace (and user namespace unless root), and the bounded
    tmpfs on `point` with `tmp` and `shm` in it. Any failure raises, which makes Popen fail in the parent."""
    ctypes, libc = _libc()
    owner = f",uid={NOBODY},gid={NOBODY}" if as_root else ""
    options = f"size={SCRATCH_BYTES},nr_inodes={SCRATCH_INODES},mode=0755{owner}".encode()

    def check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def setup() -> list[str]:
        if as_root:
            check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        else:
            uid, gid = os.getuid(), os.getgid()
            check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare(CLONE_NEWUSER | CLONE_NEWNS)")
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as map_file:
                    map_file.write(text)
        check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "making mounts private")
        check(libc.mount(b"tmpfs", point.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options), "mounting the tmpfs")
        for name in ("tmp", "shm"):
            path = os.path.join(point, name)
            os.mkdir(path, 0o755)
            if as_root:
                os.chown(path, NOBODY, NOBODY)
        return [f"tmp {SCRATCH_BYTES >> 20} MiB / {SCRATCH_INODES} inodes"]

    return setup


_works: bool | None = None


def scratch_works(as_root: bool) -> bool:
    """Whether this process's children can mount the bounded tmpfs (always, as root): tried once on /bin/true."""
    global _works
    if as_root:
        return True
    with _lock:
        if _works is None:
            true = shutil.which("true") or "/bin/true"
            try:
                done = subprocess.run([true], preexec_fn=mount_scratch(False, scratch_point()), timeout=10)
                _works = done.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _works = False
        return _works
