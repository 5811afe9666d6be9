#!/usr/bin/python3
"""`porthole punch` through a lying rendezvous, and with a third host spraying checks.

The rendezvous is tests/lab/lying_rendezvous.py on public host 198.51.100.21 (it accepts
every registration unchecked and relays Connect / Answer between lan1 behind r1 and lan2
behind r2); the attacker is a STUN responder on 198.51.100.22 that answers every check
it can key (with a password it handed out or read on the rendezvous).
- honest relay (the control): both peers connect, each to the other's public address,
  naming the other's peer ID;
- every lying mode (candidates, ufrag/password swapped; a signature or a whole
  description from an earlier session; descriptions signed by the attacker's own key,
  claiming to be from the peer or naming the attacker): both peers give up (exit 7), no
  output names the attacker's address, and the attacker receives no check at all;
- a false XOR-PEER-ADDRESS (a hint outside the signature): the peers still connect to
  each other and never to the attacker, who can answer none of the checks it may get;
- with the argument `lie-mapped-address`, alone: a false XOR-MAPPED-ADDRESS, which each
  peer signs into its own offer as its server-reflexive candidate; the attacker answers
  the checks sent there with the password the description carries in the clear. No
  peer may report a path to the attacker (the checks are signed with the peers' keys,
  so its answers are refused);
- a sprayer (198.51.100.24 on the internet side, with both routers in full-cone mode so
  its packets reach the punch sockets, and lan1b on lan1's own LAN) sending Binding
  checks with wrong credentials at the punch sockets while the peers punch: random
  USERNAMEs, the real ufrags (read off the rendezvous) without MESSAGE-INTEGRITY, keyed
  with a random or the wrong side's password, and keyed right but with a broken
  FINGERPRINT. The peers still connect to each other; the sprayers get no success
  response (counted), and no check is sent to them (no peer-reflexive candidate is
  learned from an unauthenticated check).
"""

import atexit
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from porthole_lab import BIN, finish, porthole, state_dir
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

LIAR_PY = Path(__file__).resolve().parent.parent / "lying_rendezvous.py"
LIAR, ATTACKER, SPRAYER = "198.51.100.21", "198.51.100.22", "198.51.100.24"
RENDEZVOUS = f"{LIAR}:3478"
ATTACKER_EP = f"{ATTACKER}:40000"
WAN = {"lan1": "203.0.113.2", "lan2": "203.0.113.130"}
HOST = {"lan1": "192.168.1.100", "lan2": "192.168.2.100"}
# Fixed punch ports, so the sprayers know where to aim (eim keeps them outside).
PORT = {"lan1": 40301, "lan2": 40302}
OTHER = {"lan1": "lan2", "lan2": "lan1"}
LYING = ("swap-candidates", "swap-credentials", "swap-all", "replay-signature",
         "replay-description", "attacker-key", "attacker-self")

# `punch_hostile.py lie-mapped-address`: only the false XOR-MAPPED-ADDRESS case, a
# test of its own (lab.porthole.punch_hostile_mapped).
MAPPED_ONLY = sys.argv[1:] == ["lie-mapped-address"]
c = labkit.Checker("punch_hostile_mapped" if MAPPED_ONLY else "punch_hostile")
tmp = Path(tempfile.mkdtemp(prefix="porthole-punch-hostile-"))


_helpers = []


@atexit.register
def _stop_helpers() -> None:
    for h in list(_helpers):
        h.stop()


class Helper:
    """lying_rendezvous.py SUBCOMMAND ARGS in namespace ns, started and waited for READY;
    stop() sends SIGTERM (only to the process started here) and returns its stdout."""

    def __init__(self, ns: str, *args: str):
        self.proc = subprocess.Popen(
            [labkit.IP, "netns", "exec", labkit.ns_name(ns), labkit.PYTHON, "-u", str(LIAR_PY),
             *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        _helpers.append(self)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.proc.kill()
            raise RuntimeError(f"lying_rendezvous.py {args[0]} did not start: {line} {err}")

    def stop(self) -> str:
        if self in _helpers:
            _helpers.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        if self.proc.returncode:
            print(f"     helper exited {self.proc.returncode}: {err}")
        return out


def punch_both(ids: dict, *extra: str, timeout: float = 30.0) -> dict:
    """Both peers punch each other at once through the rendezvous; returns
    ns -> (Result, parsed JSON or None)."""
    procs = {}
    for ns in ("lan1", "lan2"):
        argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), BIN, "punch", ids[OTHER[ns]],
                "--rendezvous", RENDEZVOUS, "--port", str(PORT[ns]), "--json", *extra,
                "--state-dir", str(state_dir(ns))]
        procs[ns] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
    out = {}
    for ns, p in procs.items():
        try:
            so, se = p.communicate(timeout=timeout)
            res = labkit.Result(p.returncode, so, se, 0.0)
        except subprocess.TimeoutExpired:
            p.kill()
            so, se = p.communicate()
            res = labkit.Result(-9, so, se, timeout, timed_out=True)
        try:
            j = json.loads(res.stdout)
        except ValueError:
            j = None
        out[ns] = (res, j)
    return out


def addresses_in(j) -> list:
    """Every address the punch output names (path peer and each pair's remote)."""
    if not isinstance(j, dict):
        return []
    found = [j.get("peer", "")]
    found += [p.get("remote", "") for p in j.get("candidates", []) if isinstance(p, dict)]
    return [a for a in found if a]


def ip_of(endpoint: str) -> str:
    return endpoint.rpartition(":")[0].strip("[]")


def run_mode(mode: str, ids: dict, attacker_key: Path, extra=(), record=None, replay=None):
    log = tmp / f"{mode}.log"
    liar_args = ["rendezvous", "--listen", RENDEZVOUS, "--mode", mode, "--attacker", ATTACKER_EP,
                 "--attacker-key", str(attacker_key), "--log", str(log)]
    if record:
        liar_args += ["--record", str(record)]
    if replay:
        liar_args += ["--replay", str(replay)]
    report = tmp / f"{mode}.attacker.json"
    attacker = Helper("inet", "attacker", "--listen", ATTACKER_EP, "--log", str(log),
                      "--report", str(report))
    liar = Helper("inet", *liar_args)
    try:
        results = punch_both(ids, *extra)
    finally:
        liar_out = liar.stop()
        attacker.stop()
    try:
        counts = json.loads(report.read_text())
    except (OSError, ValueError):
        counts = None
    lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return results, counts, lines, liar_out


def connected_to_each_other(mode: str, results: dict, ids: dict) -> None:
    for ns, (r, j) in results.items():
        ok = r.rc == 0 and isinstance(j, dict)
        c.check(ok, f"{mode}: {ns} punches through (exit 0, JSON)", r)
        if not ok:
            continue
        other = OTHER[ns]
        c.check(ip_of(j.get("peer", "")) == WAN[other],
                f"{mode}: {ns}'s peer is {other}'s public address {WAN[other]}", j)
        c.check(j.get("peer_id") == ids[other], f"{mode}: {ns} names {other}'s peer ID", j)


def no_path_to_the_attacker(mode: str, results: dict, counts) -> None:
    """The attacker's address is one of the peer's own signed candidates here, so it may
    be listed (as failed); what must hold is that no pair to it is ever accepted."""
    for ns, (r, j) in results.items():
        pairs = j.get("candidates", []) if isinstance(j, dict) else []
        accepted = [p for p in pairs if ip_of(p.get("remote", "")) == ATTACKER
                    and p.get("outcome") in ("succeeded", "nominated")]
        to_attacker = r.rc == 0 and isinstance(j, dict) and ip_of(j.get("peer", "")) == ATTACKER
        c.check(isinstance(j, dict) and not accepted and not to_attacker,
                f"{mode}: {ns} accepts no path to the attacker {ATTACKER}", r)
    c.check(counts is not None and counts["binding_requests"] > 0
            and counts["signed"] == counts["binding_requests"],
            f"{mode}: every check the attacker got is signed end to end (it cannot answer)",
            counts)


def never_the_attacker(mode: str, results: dict, counts) -> None:
    for ns, (r, j) in results.items():
        named = [a for a in addresses_in(j) if ip_of(a) == ATTACKER]
        c.check(not named and ATTACKER not in r.stdout,
                f"{mode}: {ns}'s output never names the attacker {ATTACKER}", r)
    c.check(counts is not None and counts["answerable"] == 0,
            f"{mode}: the attacker got no check it could answer", counts)


try:
    labkit.require_lab()
    ids = {}
    for ns in ("lan1", "lan2"):
        r = porthole(ns, "id")
        ids[ns] = r.stdout.strip()
        c.check(r.ok and len(ids[ns]) == 55, f"porthole id on {ns}", r)
    attacker_dir = tmp / "attacker-state"
    r = porthole("inet", "id", state=attacker_dir)
    c.check(r.ok, "the attacker has an identity of its own (porthole id)", r)
    attacker_key = attacker_dir / "identity.key"
    for ns in ("r1", "r2"):
        labkit.lab("nat-mode", ns, "eim")

    if MAPPED_ONLY:
        # A false XOR-MAPPED-ADDRESS (registration and every answer): each peer offers
        # the attacker's address as its own server-reflexive candidate, signed by
        # itself, and the attacker answers the checks sent there, keyed with the
        # password it read in the description. No gateway mapping (--no-map), so that
        # candidate and the peer-reflexive one are all there is to the peer.
        results, counts, _, _ = run_mode("lie-mapped-address", ids, attacker_key,
                                         extra=("--no-map", "--timeout", "4", "--wait", "2"))
        no_path_to_the_attacker("lie-mapped-address", results, counts)
        for ns, (r, j) in results.items():
            c.check(r.rc in (0, 7), f"lie-mapped-address: {ns} exits 0 or 7", r)
    else:
        # The control: an honest relay connects (and its descriptions are recorded for the
        # replay modes).
        record = tmp / "earlier-session.json"
        results, counts, lines, _ = run_mode("honest", ids, attacker_key, record=record)
        connected_to_each_other("honest", results, ids)
        never_the_attacker("honest", results, counts)
        c.check(len(lines) >= 2 and all(x["roundtrip"] for x in lines),
                "honest: the double rebuilds every relayed description byte for byte",
                lines)

        for mode in LYING:
            results, counts, lines, liar_out = run_mode(
                mode, ids, attacker_key, extra=("--timeout", "4", "--wait", "2"),
                replay=record if mode.startswith("replay") else None)
            try:
                tampered = json.loads(liar_out.strip().splitlines()[-1])["tampered"]
            except (IndexError, ValueError, KeyError):
                tampered = 0
            c.check(tampered > 0 and lines and all(x["roundtrip"] for x in lines),
                    f"{mode}: the double relayed descriptions and changed them", liar_out)
            for ns, (r, j) in results.items():
                c.check(r.rc == 7, f"{mode}: {ns} gives up (exit 7)", r)
                c.check(isinstance(j, dict) and isinstance(j.get("error"), dict)
                        and j["error"].get("name") == "punch-failed",
                        f"{mode}: {ns} prints the punch-failed error object", r.stdout)
            never_the_attacker(mode, results, counts)
            c.check(counts is not None and counts["binding_requests"] == 0,
                    f"{mode}: no check was ever sent to the attacker", counts)

        results, counts, _, _ = run_mode("lie-peer-address", ids, attacker_key)
        connected_to_each_other("lie-peer-address", results, ids)
        never_the_attacker("lie-peer-address", results, counts)

        # The sprayers: both routers full-cone, so packets from the internet reach the
        # punch sockets' public ports as a peer's would.
        for ns in ("r1", "r2"):
            r = labkit.lab("nat-mode", ns, "fullcone")
            c.check(r.ok, f"lab.sh nat-mode {ns} fullcone", r)
        log = tmp / "spray.log"
        liar = Helper("inet", "rendezvous", "--listen", RENDEZVOUS, "--mode", "honest",
                      "--log", str(log), "--delay", "0.3")
        sprayers = {
            "internet": Helper("inet", "spray", "--source", SPRAYER, "--log", str(log),
                               "--target", f"{WAN['lan1']}:{PORT['lan1']}",
                               "--target", f"{WAN['lan2']}:{PORT['lan2']}", "--seconds", "20"),
            "lan1b": Helper("lan1b", "spray", "--source", "192.168.1.101", "--log", str(log),
                            "--target", f"{HOST['lan1']}:{PORT['lan1']}", "--seconds", "20",
                            "--seed", "2"),
        }
        try:
            results = punch_both(ids)
        finally:
            liar.stop()
            sprayed = {}
            for name, h in sprayers.items():
                out = h.stop().strip().splitlines()
                try:
                    sprayed[name] = json.loads(out[-1])
                except (IndexError, ValueError):
                    sprayed[name] = None
        connected_to_each_other("spray", results, ids)
        for ns, (r, j) in results.items():
            named = [a for a in addresses_in(j) if ip_of(a) in (SPRAYER, "192.168.1.101")]
            c.check(not named, f"spray: {ns}'s output never names a sprayer", r)
        for name, s in sprayed.items():
            c.check(s is not None and s["sent"] > 0 and s["with_real_username"] > 0,
                    f"spray: the {name} sprayer sent checks, some with the real ufrags", s)
            if s is None:
                continue
            print(f"     {name} sprayer: {s}")
            c.check(s["success_responses"] == 0,
                    f"spray: the {name} sprayer got 0 success responses", s)
            c.check(s["requests_to_us"] == 0,
                    f"spray: no check went to the {name} sprayer (no peer-reflexive candidate "
                    "from an unauthenticated check)", s)
            c.check(s["error_responses"] == 0,
                    f"spray: checks with wrong credentials are dropped, never answered ({name})",
                    s)
finally:
    for ns in ("r1", "r2"):
        labkit.lab("nat-mode", ns, "eim")
    shutil.rmtree(tmp, ignore_errors=True)
finish(c)
