"""The uid on the other end of a loopback TCP connection (Linux), for telling local users apart (server/owner.py).

Asked of the kernel's socket diagnostics (netlink sock_diag, what `ss` uses) for that one socket: 0.011-0.014 ms a
lookup whatever else is open. The first version read /proc/net/tcp, a line per socket of the machine: 8.5 ms a
lookup with the 5,600 sockets a busy test machine listed, 17 ms with 3,000 more (`make bench-wire`, 2 cores shared
with other work). /proc/net/tcp stays as the fallback where netlink is refused (some sandboxes).
Elsewhere than Linux there is no answer (None), and the caller goes by the token alone.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
NO_COOKIE = 0xFFFFFFFF
ALL_STATES = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_REQUEST = struct.Struct("=BBBBI")  # inet_diag_req_v2: family, protocol, extensions, pad, states
_ANSWER_UID = _HEADER.size + 4 + 48 + 12  # inet_diag_msg: 4 bytes, the socket id (48), expires/rqueue/wqueue


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def peer_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the client's end of a loopback TCP connection from `peer` to `local`; None off Linux, for
    a peer beyond loopback, or when the kernel no longer knows the connection."""
    client, server = _address(peer[0]), _address(local[0])
    if not sys.platform.startswith("linux") or client is None or server is None:
        return None
    mapped = getattr(client, "ipv4_mapped", None)
    if not (mapped or client).is_loopback:
        return None
    try:
        return _ask_netlink(client, peer[1], server, local[1])
    except OSError:
        return _read_proc(client, peer[1], server, local[1])


def _ask_netlink(client, client_port: int, server, server_port: int) -> int | None:  # noqa: ANN001
    family = socket.AF_INET6 if client.version == 6 else socket.AF_INET
    socket_id = (
        struct.pack(">HH", client_port, server_port)
        + client.packed.ljust(16, b"\0")
        + server.packed.ljust(16, b"\0")
        + struct.pack("=III", 0, NO_COOKIE, NO_COOKIE)
    )
    body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_STATES) + socket_id
    message = _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as diag:
        diag.settimeout(1.0)
        diag.sendto(message, (0, 0))
        answer = diag.recv(8192)
    kind = _HEADER.unpack_from(answer)[1] if len(answer) >= _HEADER.size else NLMSG_ERROR
    if kind != SOCK_DIAG_BY_FAMILY or len(answer) < _ANSWER_UID + 4:
        return None  # an error answer: no such connection (any more)
    return struct.unpack_from("=I", answer, _ANSWER_UID)[0]


def _proc_address(address, port: int) -> str:  # noqa: ANN001
    """An address as /proc/net/tcp{,6} spells it: its 32-bit words in host order, in hex, then :PORT."""
    order = "little" if socket.htonl(1) != 1 else "big"
    packed = address.packed
    words = [int.from_bytes(packed[i : i + 4], order) for i in range(0, len(packed), 4)]
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"


def _read_proc(client, client_port: int, server, server_port: int) -> int | None:  # noqa: ANN001
    table = "/proc/net/tcp6" if client.version == 6 else "/proc/net/tcp"
    try:
        with open(table, "rb") as file:
            listing = file.read()
    except OSError:
        return None
    # Each line: "  sl  local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ..."
    wanted = f" {_proc_address(client, client_port)} {_proc_address(server, server_port)} ".encode()
    found = listing.find(wanted)
    if found < 0:
        return None
    fields = listing[found : listing.find(b"\n", found)].split()
    try:
        return int(fields[6])
    except (IndexError, ValueError):
        return None
