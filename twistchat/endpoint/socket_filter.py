"""
The kernel half of shedding (``shedding.py``): a classic BPF socket filter
(Linux ``SO_ATTACH_FILTER``, socket(7)) that drops every datagram except
DATA from the shed IPv4 prefixes before it reaches the socket's buffer, so
a flood from a shed prefix costs the server no read, no wake-up and no room
in the buffer that real users' packets need.

socket(7) asks no privilege to filter one's own socket (the tests here run as root, so
that is the manual's word, not a test's). Elsewhere (another
system, an IPv6 socket, a test's fake transport) ``KernelFilter`` does
nothing and says so; the endpoint then sheds in Python, before parsing.

The program, for prefixes p1..pn (all IPv4 /24, as ``source_prefix``)::

    ld  [SKF_NET_OFF + 12]        ; A = the IPv4 source address
    and #0xffffff00
    jeq #p1, check_type           ; ... one jeq per prefix
    jeq #pn, check_type, accept
  check_type:
    ldb [8]                       ; the first byte after the 8-byte UDP header
    jeq #DATA byte, accept, drop
  drop:   ret #0
  accept: ret #0xffffffff
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import sys
from typing import Any, Iterable

from twisted.logger import Logger

from twistchat.wire.packets import PROTOCOL_VERSION, PacketType

SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
"""From <asm-generic/socket.h>; Python's socket module does not export them."""
SKF_NET_OFF = -0x100000
"""Loads relative to the network (IP) header (<linux/filter.h>)."""
IPV4_SOURCE_OFFSET = 12
UDP_HEADER_SIZE = 8
"""A UDP socket's filter sees the packet from its UDP header on."""

# Classic BPF opcodes (<linux/bpf_common.h>), the few this program uses.
BPF_LD, BPF_ALU, BPF_JMP, BPF_RET = 0x00, 0x04, 0x05, 0x06
BPF_W, BPF_B, BPF_ABS, BPF_K = 0x00, 0x10, 0x20, 0x00
BPF_AND, BPF_JEQ = 0x50, 0x10

LOAD_WORD = BPF_LD | BPF_W | BPF_ABS
LOAD_BYTE = BPF_LD | BPF_B | BPF_ABS
AND = BPF_ALU | BPF_AND | BPF_K
JUMP_IF_EQUAL = BPF_JMP | BPF_JEQ | BPF_K
RETURN = BPF_RET | BPF_K
DROP, ACCEPT = 0, 0xFFFFFFFF
DATA_FIRST_BYTE = (PROTOCOL_VERSION << 4) | PacketType.DATA

Instruction = tuple[int, int, int, int]
"""(code, jump if true, jump if false, k), as struct sock_filter."""


def program(prefixes: Iterable[str]) -> list[Instruction]:
    """The filter for ``prefixes`` (IPv4 networks; others are ignored)."""
    networks = sorted(int(net.network_address) for net in map(ipaddress.ip_network, prefixes)
                      if net.version == 4 and net.prefixlen == 24)
    n = len(networks)
    if n > 255:
        raise ValueError("at most 255 prefixes (classic BPF jump offsets are 8 bits)")
    if not networks:
        return [(RETURN, 0, 0, ACCEPT)]
    code: list[Instruction] = [
        (LOAD_WORD, 0, 0, (SKF_NET_OFF + IPV4_SOURCE_OFFSET) & 0xFFFFFFFF),
        (AND, 0, 0, 0xFFFFFF00),
    ]
    check_type_at = len(code) + n
    accept_at = check_type_at + 3
    for network in networks:
        at = len(code)
        otherwise = 0 if at + 1 < check_type_at else accept_at - at - 1
        code.append((JUMP_IF_EQUAL, check_type_at - at - 1, otherwise, network))
    code += [
        (LOAD_BYTE, 0, 0, UDP_HEADER_SIZE),
        (JUMP_IF_EQUAL, 1, 0, DATA_FIRST_BYTE),
        (RETURN, 0, 0, DROP),
        (RETURN, 0, 0, ACCEPT),
    ]
    return code


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def attach(sock: socket.socket, instructions: list[Instruction]) -> None:
    """Install ``instructions`` on ``sock``, atomically replacing any filter
    it had (the kernel copies the program). OSError if refused."""
    array = (_SockFilter * len(instructions))(*(_SockFilter(*i) for i in instructions))
    fprog = _SockFprog(len(instructions), array)
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                    ctypes.string_at(ctypes.addressof(fprog), ctypes.sizeof(fprog)))


class KernelFilter:
    """Keeps a UDP port's socket filter in step with the shed prefixes."""

    log = Logger()

    def __init__(self, sock: socket.socket | None) -> None:
        self._socket = sock
        self._attached = False

    @classmethod
    def for_transport(cls, transport: Any) -> "KernelFilter":
        """For a Twisted UDP port; one that cannot be filtered (not Linux,
        not IPv4, a fake transport) gets a filter that does nothing."""
        sock = getattr(transport, "socket", None)
        usable = (sys.platform.startswith("linux") and isinstance(sock, socket.socket)
                  and sock.family == socket.AF_INET)
        return cls(sock if usable else None)

    @property
    def available(self) -> bool:
        return self._socket is not None

    def apply(self, prefixes: Iterable[str]) -> bool:
        """Drop all but DATA from ``prefixes`` in the kernel from now on;
        False if this socket cannot (then the caller drops them itself)."""
        if self._socket is None:
            return False
        prefixes = list(prefixes)
        try:
            if prefixes:
                attach(self._socket, program(prefixes))
                self._attached = True
            elif self._attached:
                self._socket.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
                self._attached = False
        except (OSError, ValueError) as e:
            self.log.warn("socket filter refused ({error}): shedding in Python", error=e)
            self._socket = None
            return False
        return True
