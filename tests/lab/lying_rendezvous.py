#!/usr/bin/python3
"""A lying rendezvous and its accomplices, for the hostile punching scenario
(tests/lab/scenarios/punch_hostile.py). Stdlib only (plus the `openssl` command to sign
with the attacker's own key); runs inside a lab namespace.

    lying_rendezvous.py rendezvous --listen IP:PORT --mode MODE [options]
        Speaks docs/rendezvous.md over UDP: STUN framing (RFC 8489 s5), FINGERPRINT
        (s14.7), XOR-MAPPED-ADDRESS. It hands out challenges and accepts every
        registration without checking its signature (it is a liar), and relays Connect
        and Answer between the registered peers, changing what MODE says on the way:
          honest               relay everything unchanged (the control run)
          swap-candidates      every candidate's address becomes the attacker's; the
                               signature is left as it was (it no longer matches)
          swap-credentials     ufrag and password become the attacker's
          swap-all             both of the above, and XOR-PEER-ADDRESS names the attacker
          replay-signature     the SIGNATURE of the sender's description from an earlier
                               session (--replay FILE, written by --record) on today's bytes
          replay-description   the earlier session's description and signature, whole
          attacker-key         the attacker's candidates and credentials, still claiming
                               the real sender's key, signed with the attacker's key
          attacker-self        the same with the attacker's own key as the sender: a valid
                               signature, by someone nobody named
          lie-peer-address     descriptions unchanged, XOR-PEER-ADDRESS is the attacker
          lie-mapped-address   descriptions unchanged, but every XOR-MAPPED-ADDRESS it
                               answers is the attacker's: each peer then offers the
                               attacker's address as its own server-reflexive candidate,
                               signed by itself, and the attacker answers the checks sent
                               there with the password it read in the clear
        --log FILE gets one JSON line per relayed description as it arrived (kind,
        sender, ufrag, password, candidates): what anyone on the path can read.
        --delay S holds each relayed indication S seconds (a slow server), so that the
        sprayer below has read the ufrags before the checks start.

    lying_rendezvous.py attacker --listen IP:PORT --log FILE --report FILE
        The attacker's ICE endpoint: answers every STUN Binding request whose
        MESSAGE-INTEGRITY it can make (keyed with a password it handed out or read in the
        rendezvous log) with a success response, the strongest it can do. Writes counts
        to --report when it gets SIGTERM.

    lying_rendezvous.py spray --source IP --target IP:PORT... --log FILE --seconds S
        A third host spraying Binding checks with wrong credentials at the punch sockets:
        random USERNAMEs, the real "receiver:sender" ufrags (read from the log) without
        MESSAGE-INTEGRITY, with one keyed by a wrong password (random, or the sender's own
        instead of the receiver's), and a right-looking one with a broken FINGERPRINT.
        Counts what comes back (success / error responses, requests sent to it) and
        prints one JSON line at the end.

Every loop here is bounded by --seconds or ends on SIGTERM; nothing is sent anywhere but
the addresses given on the command line (lab addresses).
"""

import argparse
import binascii
import hashlib
import hmac
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E

# RFC 8489 attributes, RFC 8445 s16.1, docs/rendezvous.md.
A_USERNAME, A_MI, A_ERROR_CODE = 0x0006, 0x0008, 0x0009
A_LIFETIME, A_XOR_PEER, A_XOR_MAPPED = 0x000D, 0x0012, 0x0020
A_PRIORITY, A_USE_CANDIDATE = 0x0024, 0x0025
A_FINGERPRINT, A_CONTROLLED, A_CONTROLLING = 0x8028, 0x8029, 0x802A
A_PEER_ID, A_CHALLENGE, A_SIGNATURE = 0x7F01, 0x7F02, 0x7F03
A_TARGET, A_DESCRIPTION = 0x7F04, 0x7F05

M_BINDING, M_REGISTER, M_CONNECT, M_ANSWER = 0x001, 0x0F0, 0x0F1, 0x0F2
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

DESCRIPTION_LABEL = b"porthole rendezvous description v1\x00"


# ------------------------------------------------------------------ STUN framing

def message_type(method: int, cls: int) -> int:
    """RFC 8489 s5: M11..M7 C1 M6..M4 C0 M3..M0."""
    return ((method & 0x00F) | ((method & 0x070) << 1) | ((method & 0xF80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


def split_type(t: int):
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    cls = ((t >> 4) & 1) | ((t >> 7) & 2)
    return method, cls


def _attr(t: int, value: bytes) -> bytes:
    return struct.pack("!HH", t, len(value)) + value + b"\0" * (-len(value) % 4)


def xor_address(ip: str, port: int) -> bytes:
    raw = socket.inet_aton(ip)
    xip = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", COOKIE)))
    return struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + xip


def parse_xor_address(value: bytes):
    if len(value) != 8 or value[1] != 1:
        return None
    port = struct.unpack("!H", value[2:4])[0] ^ (COOKIE >> 16)
    ip = bytes(a ^ b for a, b in zip(value[4:8], struct.pack("!I", COOKIE)))
    return socket.inet_ntoa(ip), port


def encode(method: int, cls: int, txid: bytes, attrs, integrity_key: bytes = None,
           fingerprint: bool = True, break_fingerprint: bool = False) -> bytes:
    """A STUN message: attrs (list of (type, value)), then MESSAGE-INTEGRITY keyed with
    integrity_key (s14.5), then FINGERPRINT (s14.7)."""
    body = b"".join(_attr(t, v) for t, v in attrs)

    def header(length: int) -> bytes:
        return struct.pack("!HHI", message_type(method, cls), length, COOKIE) + txid

    if integrity_key is not None:
        mac = hmac.new(integrity_key, header(len(body) + 24) + body, hashlib.sha1).digest()
        body += _attr(A_MI, mac)
    if fingerprint:
        crc = (binascii.crc32(header(len(body) + 8) + body) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
        if break_fingerprint:
            crc ^= 1
        body += _attr(A_FINGERPRINT, struct.pack("!I", crc))
    return header(len(body)) + body


class Stun:
    """A decoded STUN message: method, cls, txid, attrs (list of (type, value, offset))."""

    def __init__(self, data: bytes):
        if len(data) < 20 or data[0] & 0xC0:
            raise ValueError("not STUN")
        t, length, cookie = struct.unpack("!HHI", data[:8])
        if cookie != COOKIE or length + 20 != len(data) or length % 4:
            raise ValueError("bad STUN header")
        self.raw = data
        self.method, self.cls = split_type(t)
        self.txid = data[8:20]
        self.attrs = []
        off = 20
        while off + 4 <= len(data):
            at, alen = struct.unpack("!HH", data[off:off + 4])
            if off + 4 + alen > len(data):
                raise ValueError("truncated attribute")
            self.attrs.append((at, data[off + 4:off + 4 + alen], off))
            off += 4 + alen + (-alen % 4)

    def get(self, t: int):
        return next((v for at, v, _ in self.attrs if at == t), None)

    def fingerprint_ok(self) -> bool:
        for at, v, off in self.attrs:
            if at == A_FINGERPRINT:
                want = (binascii.crc32(self.raw[:off]) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
                return struct.unpack("!I", v)[0] == want
        return False

    def integrity_ok(self, key: bytes) -> bool:
        for at, v, off in self.attrs:
            if at == A_MI and len(v) == 20:
                head = bytearray(self.raw[:off])
                struct.pack_into("!H", head, 2, off - 20 + 24)
                return hmac.compare_digest(v, hmac.new(key, bytes(head), hashlib.sha1).digest())
        return False


# ------------------------------------------------------------------ session description

def decode_description(b: bytes) -> dict:
    """docs/rendezvous.md's layout, into a dict (no checks beyond what parsing needs)."""
    d = {"version": b[0], "kind": b[1], "nat": b[2], "sender": b[4:36], "receiver": b[36:68],
         "session": b[68:84]}
    count, off = b[3], 84
    n = b[off]; d["ufrag"] = b[off + 1:off + 1 + n].decode(); off += 1 + n
    n = b[off]; d["password"] = b[off + 1:off + 1 + n].decode(); off += 1 + n
    d["candidates"] = []
    for _ in range(count):
        ctype, transport, family, flen = b[off:off + 4]
        port, prio = struct.unpack("!HI", b[off + 4:off + 10])
        alen = 4 if family == 1 else 16
        addr = b[off + 10:off + 10 + alen]
        ip = socket.inet_ntop(socket.AF_INET if family == 1 else socket.AF_INET6, addr)
        found = b[off + 10 + alen:off + 10 + alen + flen].decode()
        off += 10 + alen + flen
        d["candidates"].append({"type": ctype, "transport": transport, "ip": ip, "port": port,
                                "priority": prio, "foundation": found})
    return d


def encode_description(d: dict) -> bytes:
    out = bytes([d["version"], d["kind"], d["nat"], len(d["candidates"])])
    out += d["sender"] + d["receiver"] + d["session"]
    for text in (d["ufrag"], d["password"]):
        out += bytes([len(text)]) + text.encode()
    for c in d["candidates"]:
        v6 = ":" in c["ip"]
        addr = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, c["ip"])
        out += bytes([c["type"], c["transport"], 2 if v6 else 1, len(c["foundation"])])
        out += struct.pack("!HI", c["port"], c["priority"]) + addr + c["foundation"].encode()
    return out


def loggable(d: dict) -> dict:
    return {"kind": "offer" if d["kind"] == 1 else "answer", "sender": d["sender"].hex(),
            "receiver": d["receiver"].hex(), "session": d["session"].hex(),
            "ufrag": d["ufrag"], "password": d["password"], "candidates": d["candidates"]}


# ------------------------------------------------------------------ the attacker's key

class AttackerKey:
    """The attacker's Ed25519 key: the PKCS#8 PEM file `porthole id` wrote into the
    attacker's own state directory. Signs with `openssl pkeyutl -rawin` (RFC 8032)."""

    def __init__(self, pem_file: str):
        self.pem_file = pem_file
        der = subprocess.run(["openssl", "pkey", "-in", pem_file, "-pubout", "-outform", "DER"],
                             capture_output=True, check=True).stdout
        self.public = der[-32:]  # SubjectPublicKeyInfo ends with the 32-byte key

    def sign(self, message: bytes) -> bytes:
        with tempfile.NamedTemporaryFile() as f:
            f.write(message)
            f.flush()
            return subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey",
                                   self.pem_file, "-in", f.name],
                                  capture_output=True, check=True).stdout


# ------------------------------------------------------------------ the rendezvous

MODES = ("honest", "swap-candidates", "swap-credentials", "swap-all", "replay-signature",
         "replay-description", "attacker-key", "attacker-self", "lie-peer-address",
         "lie-mapped-address")


class Liar:
    def __init__(self, args):
        self.mode = args.mode
        self.attacker = (args.attacker.rpartition(":")[0], int(args.attacker.rpartition(":")[2]))
        self.ufrag, self.password = args.attacker_ufrag, args.attacker_password
        self.key = AttackerKey(args.attacker_key) if args.attacker_key else None
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.record = args.record
        self.replay = {}
        if args.replay and Path(args.replay).exists():
            self.replay = json.loads(Path(args.replay).read_text())
        self.recorded = {}
        self.online = {}       # peer key (bytes) -> (ip, port)
        self.connect_from = {}  # (offerer key, target key) -> where its Connect came from
        self.tampered = 0

    # What MODE does to one relayed description.
    def tamper(self, desc: bytes, sig: bytes):
        d = decode_description(desc)
        sender = d["sender"].hex()
        if self.log:
            # roundtrip: this codec rebuilds the bytes exactly, so what the modes change
            # is only what they mean to change.
            self.log.write(json.dumps({**loggable(d),
                                       "roundtrip": encode_description(d) == desc}) + "\n")
        if self.record:
            self.recorded.setdefault(sender, {})[str(d["kind"])] = [desc.hex(), sig.hex()]
            Path(self.record).write_text(json.dumps(self.recorded))
        m = self.mode
        if m in ("honest", "lie-peer-address", "lie-mapped-address"):
            return desc, sig
        if m in ("replay-signature", "replay-description"):
            old = self.replay.get(sender, {})
            pair = old.get(str(d["kind"])) or next(iter(old.values()), None)
            if pair is None:
                raise RuntimeError(f"no earlier session of {sender} in the replay file")
            old_desc, old_sig = bytes.fromhex(pair[0]), bytes.fromhex(pair[1])
            self.tampered += 1
            return (desc, old_sig) if m == "replay-signature" else (old_desc, old_sig)
        if m in ("swap-candidates", "swap-all", "attacker-key", "attacker-self"):
            for c in d["candidates"]:
                c["ip"], c["port"] = self.attacker
        if m in ("swap-credentials", "swap-all", "attacker-key", "attacker-self"):
            d["ufrag"], d["password"] = self.ufrag, self.password
        if m == "attacker-self":
            d["sender"] = self.key.public
        out = encode_description(d)
        if m in ("attacker-key", "attacker-self"):
            sig = self.key.sign(DESCRIPTION_LABEL + out)
        self.tampered += 1
        return out, sig

    def peer_address(self, real):
        return self.attacker if self.mode in ("swap-all", "lie-peer-address") else real

    def handle(self, data: bytes, src, send) -> None:
        try:
            m = Stun(data)
        except ValueError:
            return
        if m.cls != REQUEST or not m.fingerprint_ok():
            return
        seen = self.attacker if self.mode == "lie-mapped-address" else src
        mapped = (A_XOR_MAPPED, xor_address(*seen))

        def error(code: int, reason: str, *extra):
            ec = struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()
            send(encode(m.method, ERROR, m.txid, [(A_ERROR_CODE, ec), *extra]), src)

        if m.method == M_REGISTER:
            peer = m.get(A_PEER_ID)
            if peer is None:
                return error(400, "Bad Request")
            if m.get(A_SIGNATURE) is None:
                return error(401, "Unauthenticated", (A_CHALLENGE, os.urandom(16)), mapped)
            # Any signature will do: a liar does not check.
            life = m.get(A_LIFETIME)
            granted = min(struct.unpack("!I", life)[0], 300) if life else 300
            if granted:
                self.online[peer] = src
            else:
                self.online.pop(peer, None)
            return send(encode(m.method, SUCCESS, m.txid,
                               [mapped, (A_LIFETIME, struct.pack("!I", granted))]), src)
        if m.method not in (M_CONNECT, M_ANSWER):
            return
        target, desc, sig = m.get(A_TARGET), m.get(A_DESCRIPTION), m.get(A_SIGNATURE)
        if target is None or desc is None or sig is None or len(desc) < 86:
            return error(400, "Bad Request")
        sender = next((k for k, a in self.online.items() if a == src), desc[4:36])
        if m.method == M_CONNECT:
            to = self.online.get(target)
            self.connect_from[(sender, target)] = src
        else:
            to = self.connect_from.get((target, sender)) or self.online.get(target)
        if to is None:
            return error(404, "Peer Not Online")
        send(encode(m.method, SUCCESS, m.txid, [mapped]), src)
        desc2, sig2 = self.tamper(desc, sig)
        attrs = [(A_DESCRIPTION, desc2), (A_SIGNATURE, sig2)]
        if m.method == M_CONNECT:
            attrs.append((A_XOR_PEER, xor_address(*self.peer_address(src))))
        send(encode(m.method, INDICATION, os.urandom(12), attrs), to, True)


def run_rendezvous(args) -> int:
    ip, _, port = args.listen.rpartition(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    liar = Liar(args)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    held = []  # (when, datagram, destination): relayed indications held for --delay

    def send(out, to, relayed=False):
        if relayed and args.delay > 0:
            held.append((time.monotonic() + args.delay, out, to))
        else:
            s.sendto(out, to)

    print("READY", flush=True)
    deadline = time.monotonic() + args.seconds
    while not stop and time.monotonic() < deadline:
        now = time.monotonic()
        for item in [h for h in held if h[0] <= now]:
            held.remove(item)
            s.sendto(item[1], item[2])
        wait = min([0.2] + [max(0.0, h[0] - now) for h in held])
        r, _, _ = select.select([s], [], [], wait)
        if r:
            data, src = s.recvfrom(2048)
            try:
                liar.handle(data, src, send)
            except (RuntimeError, ValueError, IndexError, subprocess.CalledProcessError) as e:
                print(f"lying_rendezvous: dropped a request: {e}", file=sys.stderr, flush=True)
    print(json.dumps({"tampered": liar.tampered}), flush=True)
    return 0


# ------------------------------------------------------------------ the attacker

def known_passwords(log_file: str, extra) -> set:
    """Every password the path has seen: those in the rendezvous log, and our own."""
    out = set(extra)
    try:
        for line in Path(log_file).read_text().splitlines():
            out.add(json.loads(line)["password"])
    except (OSError, ValueError, KeyError):
        pass
    return out


def run_attacker(args) -> int:
    ip, _, port = args.listen.rpartition(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, int(port)))
    counts = {"datagrams": 0, "binding_requests": 0, "answerable": 0, "signed": 0,
              "sources": []}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("READY", flush=True)
    deadline = time.monotonic() + args.seconds
    while not stop and time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.2)
        if not r:
            continue
        data, src = s.recvfrom(2048)
        counts["datagrams"] += 1
        if f"{src[0]}:{src[1]}" not in counts["sources"]:
            counts["sources"].append(f"{src[0]}:{src[1]}")
        try:
            m = Stun(data)
        except ValueError:
            continue
        if m.method != M_BINDING or m.cls != REQUEST:
            continue
        counts["binding_requests"] += 1
        # A check signed end to end (SIGNATURE, docs/rendezvous.md): the answer must be
        # signed by the peer's key, which the attacker does not have.
        if m.get(A_SIGNATURE) is not None:
            counts["signed"] += 1
        for pw in known_passwords(args.log, [args.password]):
            if m.integrity_ok(pw.encode()):
                counts["answerable"] += 1
                s.sendto(encode(M_BINDING, SUCCESS, m.txid, [(A_XOR_MAPPED, xor_address(*src))],
                                integrity_key=pw.encode()), src)
                break
    Path(args.report).write_text(json.dumps(counts))
    return 0


# ------------------------------------------------------------------ the sprayer

def ufrag_pairs(log_file: str):
    """(receiver ufrag, sender ufrag, receiver password, sender password) for each
    direction of each session in the rendezvous log."""
    descs = []
    try:
        descs = [json.loads(line) for line in Path(log_file).read_text().splitlines()]
    except (OSError, ValueError):
        pass
    out = []
    for a in descs:
        for b in descs:
            if a["sender"] == b["receiver"] and a["receiver"] == b["sender"]:
                out.append((a["ufrag"], b["ufrag"], a["password"], b["password"]))
    return out


def spray_check(kind: int, pairs, rng: random.Random, txid: bytes) -> bytes:
    """One wrong check. kinds: 0 random USERNAME and key; 1 the real USERNAME without
    MESSAGE-INTEGRITY; 2 the real USERNAME keyed with a random password; 3 the real
    USERNAME keyed with the sender's own password (not the receiver's); 4 the real
    USERNAME keyed right but with a broken FINGERPRINT."""
    tie = struct.pack("!Q", rng.getrandbits(64))
    if kind == 0 or not pairs:
        user = "".join(rng.choice("abcdefghijklmnop") for _ in range(8))
        user = f"{user[:4]}:{user[4:]}"
        key, pw_ok = os.urandom(16), False
    else:
        recv_u, send_u, recv_pw, send_pw = rng.choice(pairs)
        user = f"{recv_u}:{send_u}"
        key = {1: None, 2: os.urandom(16), 3: send_pw.encode(), 4: recv_pw.encode()}[kind]
        pw_ok = kind == 4
    attrs = [(A_USERNAME, user.encode()), (A_PRIORITY, struct.pack("!I", 0x6E0001FF)),
             (A_USE_CANDIDATE, b""), (A_CONTROLLING, tie)]
    return encode(M_BINDING, REQUEST, txid, attrs, integrity_key=key,
                  break_fingerprint=pw_ok)


def run_spray(args) -> int:
    rng = random.Random(args.seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.source, 0))
    s.setblocking(False)
    targets = [(t.rpartition(":")[0], int(t.rpartition(":")[2])) for t in args.target]
    counts = {"sent": 0, "sent_by_kind": [0] * 5, "success_by_kind": [0] * 5,
              "success_responses": 0,
              "error_responses": 0, "other_datagrams": 0, "requests_to_us": 0,
              "with_real_username": 0, "sources": []}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("READY", flush=True)
    deadline = time.monotonic() + args.seconds
    pairs, next_read, i = [], 0.0, 0
    kind_of = {}  # transaction ID -> kind of the check
    while not stop and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_read:
            pairs, next_read = ufrag_pairs(args.log), now + 0.02
        kind = i % 5
        txid = bytes(rng.getrandbits(8) for _ in range(12))
        kind_of[txid] = kind
        try:
            s.sendto(spray_check(kind, pairs, rng, txid), targets[i % len(targets)])
            counts["sent"] += 1
            counts["sent_by_kind"][kind] += 1
            if kind and pairs:
                counts["with_real_username"] += 1
        except (BlockingIOError, OSError):
            pass
        i += 1
        end = time.monotonic() + args.interval
        while True:
            r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            try:
                data, src = s.recvfrom(2048)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            if f"{src[0]}:{src[1]}" not in counts["sources"]:
                counts["sources"].append(f"{src[0]}:{src[1]}")
            try:
                m = Stun(data)
            except ValueError:
                counts["other_datagrams"] += 1
                continue
            if m.cls == SUCCESS:
                counts["success_responses"] += 1
                if m.txid in kind_of:
                    counts["success_by_kind"][kind_of[m.txid]] += 1
            elif m.cls == ERROR:
                counts["error_responses"] += 1
            elif m.cls == REQUEST:
                counts["requests_to_us"] += 1
            else:
                counts["other_datagrams"] += 1
    print(json.dumps(counts), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rendezvous")
    r.add_argument("--listen", required=True)
    r.add_argument("--mode", choices=MODES, default="honest")
    r.add_argument("--attacker", default="198.51.100.22:40000", help="IP:PORT")
    r.add_argument("--attacker-ufrag", default="evil")
    r.add_argument("--attacker-password", default="attackerpassword000000")
    r.add_argument("--attacker-key", help="the attacker's PKCS#8 PEM key file")
    r.add_argument("--log")
    r.add_argument("--record", help="write the descriptions seen here, for a later replay")
    r.add_argument("--replay", help="a --record file of an earlier session")
    r.add_argument("--delay", type=float, default=0.0,
                   help="hold each relayed indication this many seconds")
    r.add_argument("--seconds", type=float, default=120)
    a = sub.add_parser("attacker")
    a.add_argument("--listen", required=True)
    a.add_argument("--password", default="attackerpassword000000")
    a.add_argument("--log", default="")
    a.add_argument("--report", required=True)
    a.add_argument("--seconds", type=float, default=120)
    p = sub.add_parser("spray")
    p.add_argument("--source", required=True)
    p.add_argument("--target", action="append", required=True, help="IP:PORT, repeatable")
    p.add_argument("--log", default="")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--interval", type=float, default=0.002, help="seconds between checks")
    p.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    return {"rendezvous": run_rendezvous, "attacker": run_attacker, "spray": run_spray}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
