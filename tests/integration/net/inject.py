#!/usr/bin/env python3
"""Writes hostile Ethernet frames onto an interface (AF_PACKET): random
bytes, truncated headers, lying length fields, fragments that never end,
and frames larger than the receiver's MTU.  Usage: inject.py IFNAME DSTMAC
COUNT SEED"""
import os
import random
import socket
import struct
import sys

ifname, dst, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4])
rng = random.Random(seed)
dstb = bytes.fromhex(dst.replace(":", ""))
src = bytes([0x02, 0, 0, 0, 0, 1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
mtu = int(open(f"/sys/class/net/{ifname}/mtu").read())


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def ipv4(proto, payload, total=None, frag=0, ihl=5):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total & 0xffff,
                    rng.getrandbits(16), frag, 64, proto, 0,
                    bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return h + rand(max(0, ihl * 4 - 20)) + payload


def ipv6(nh, payload, plen=None):
    plen = len(payload) if plen is None else plen
    return struct.pack("!IHBB16s16s", 6 << 28, plen & 0xffff, nh, 64,
                       bytes.fromhex("fd00" + "00" * 13 + "01"),
                       bytes.fromhex("fd00" + "00" * 13 + "02")) + payload


kinds = []


def k(f):
    kinds.append(f)
    return f


@k
def random_frame():
    return dstb + src + rand(rng.randint(0, 1500))


@k
def truncated_ip():
    return dstb + src + b"\x08\x00" + rand(rng.randint(0, 19))


@k
def lying_ip_length():
    p = ipv4(rng.choice([1, 6, 17]), rand(rng.randint(0, 60)),
             total=rng.getrandbits(16))
    return dstb + src + b"\x08\x00" + p


@k
def bad_ihl():
    p = ipv4(6, rand(40), ihl=rng.randint(0, 15))
    return dstb + src + b"\x08\x00" + p


@k
def tcp_garbage():
    tcp = struct.pack("!HHIIBBHHH", rng.getrandbits(16), 80,
                      rng.getrandbits(32), rng.getrandbits(32),
                      rng.randint(0, 15) << 4, rng.getrandbits(8),
                      rng.getrandbits(16), 0, 0) + rand(rng.randint(0, 40))
    return dstb + src + b"\x08\x00" + ipv4(6, tcp)


@k
def endless_fragments():
    p = ipv4(17, rand(rng.randint(8, 1400) & ~7),
             frag=0x2000 | rng.randint(0, 8000))
    return dstb + src + b"\x08\x00" + p


@k
def ipv6_garbage():
    nh = rng.choice([0, 6, 17, 43, 44, 58, 60, rng.getrandbits(8)])
    p = ipv6(nh, rand(rng.randint(0, 200)), plen=rng.getrandbits(16))
    return dstb + src + b"\x86\xdd" + p


@k
def arp_garbage():
    return b"\xff" * 6 + src + b"\x08\x06" + rand(rng.randint(0, 60))


@k
def oversized():
    return dstb + src + b"\x08\x00" + rand(rng.randint(1500, mtu))


sent = 0
for i in range(count):
    f = rng.choice(kinds)()
    if len(f) < 14 or len(f) > mtu + 14:
        continue
    try:
        s.send(f)
        sent += 1
    except OSError:
        pass
print(f"sent {sent} frames")
