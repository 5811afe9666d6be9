#!/usr/bin/python3
"""`porthole nat` when things go wrong: no STUN server answers (exit 3, every server's
reason), servers tried in order, names resolved (and one that does not resolve), a
malformed $PORTHOLE_STUN entry (exit 2, nothing sent), and a real STUN server without
RFC 5780 (Debian's stund with one address): public address yes, behaviour "unknown";
and a host with no NAT at all."""

import subprocess
import tempfile
from pathlib import Path

from nat_lab import STUN1, STUN2, OtherTraffic, nat
from porthole_lab import BIN, WAN_IP, PacketCounter, finish, porthole, state_dir
import labkit  # noqa: E402

c = labkit.Checker("nat_errors")
SILENT = "198.51.100.25"   # a public host with nothing on 3478

# No server answers: exit 3 within the deadline, the reason named. (And the counter
# that proves "nothing else contacted" elsewhere does count.)
with OtherTraffic(STUN1, STUN2) as other:
    r, j = nat("lan1", "--timeout", "1", stun=(SILENT,))
    c.check(other.packets() > 0, "the other-traffic counter sees requests to another host",
            other.packets())
c.check(r.rc == 3 and not r.timed_out, "silent server: exit 3", r)
c.check("no STUN server answered" in r.stderr and SILENT in r.stderr,
        "silent server: says which server did not answer", r.stderr)
c.check(j is not None and j["error"]["name"] == "no-service", "silent server: JSON error", r.stdout)

# In order: the first is silent, the second answers and is the one reported.
r, j = nat("lan1", "--timeout", "2", stun=(SILENT, STUN1))
c.check(r.ok and j and j["server"] == STUN1 and j["nat_type"] == "port-restricted-cone",
        "second server used when the first is silent", r)

# Names: resolved through /etc/hosts, and one that does not resolve, in a private mount
# namespace whose resolver points at the namespace's own loopback (no DNS traffic
# anywhere).
tmp = Path(tempfile.mkdtemp(prefix="porthole-nat-names-"))
(tmp / "hosts").write_text(f"127.0.0.1 localhost\n{STUN1} stun.lab.test\n")
(tmp / "resolv.conf").write_text("nameserver 127.0.0.1\n")
def with_names(*args):
    script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && '
              'shift 2 && exec "$@"')
    return labkit.run("lan1", ["sh", "-c", script, "sh", str(tmp / "hosts"),
                               str(tmp / "resolv.conf"), BIN, *args,
                               "--state-dir", str(state_dir("lan1"))], timeout=30)
with OtherTraffic(STUN1, STUN2) as other:
    r = with_names("nat", "--json", "--stun", "nosuch.lab.test", "--stun", "stun.lab.test:3478")
    c.check(r.ok and '"server": "stun.lab.test:3478"' in r.stdout,
            "a name that does not resolve is skipped, the next one used", r)
    r = with_names("nat", "--stun", "nosuch.lab.test")
    c.check(r.rc == 3 and "cannot resolve 'nosuch.lab.test'" in r.stderr,
            "only an unresolvable name: exit 3, says so", r)
    c.check(other.packets() == 0, "names: nothing but the STUN server was contacted",
            other.packets())

# A malformed $PORTHOLE_STUN entry: exit 2 before anything is sent (not even the
# gateway probe).
with PacketCounter("192.168.1.100") as counter:
    before = counter.packets()
    r = labkit.run("lan1", ["env", "PORTHOLE_STUN=stun.example:0", BIN, "nat",
                            "--state-dir", str(state_dir("lan1"))])
    c.check(r.rc == 2 and "stun.example:0" in r.stderr, "bad $PORTHOLE_STUN entry: exit 2", r)
    c.check(counter.packets() == before, "bad $PORTHOLE_STUN entry: nothing sent",
            counter.packets() - before)
    # $PORTHOLE_STUN is used when --stun is not given.
    r = labkit.run("lan1", ["env", f"PORTHOLE_STUN={STUN1}", BIN, "nat", "--json",
                            "--state-dir", str(state_dir("lan1"))])
    c.check(r.ok and f'"server": "{STUN1}"' in r.stdout, "$PORTHOLE_STUN names the server", r)

# No NAT at all: from the internet itself the server sees our own address.
r, j = nat("inet")
c.check(r.ok and j is not None and j["nat_type"] == "none" and j["double_nat"] is False and
        j["public_ip"] == j["local_ip"] and j["filtering"] == "endpoint-independent",
        "a host without NAT: nat_type none, no double NAT", r)

# Debian's stund with one address sends CHANGED-ADDRESS 0.0.0.0:3479: a real server
# without RFC 5780. Started here (and stopped by its own PID) in the internet.
ONE = "198.51.100.21"
stund = subprocess.Popen([labkit.IP, "netns", "exec", labkit.ns_name("inet"), "stund",
                          "-h", ONE, "-p", "3490"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    c.check(labkit.wait_until(lambda: ":3490" in labkit.run("inet", ["ss", "-Hlun"]).stdout),
            "one-address stund listens")
    r, j = nat("lan1", stun=(f"{ONE}:3490",))
    c.check(r.ok and j is not None, "one-address stund: exit 0 with JSON", r)
    if j:
        c.check(j["public_ip"] == WAN_IP, "one-address stund: public address", j["public_ip"])
        c.check(j["mapping"] == "unknown" and j["filtering"] == "unknown" and
                j["nat_type"] == "unknown", "one-address stund: behaviour unknown", r.stdout)
        c.check(any("RFC 5780" in w for w in j["warnings"]),
                "one-address stund: a warning says why", j["warnings"])
    # With a second server on another IP (test I only, against the lab's stund), the
    # mapping is compared across the two: EIM in eim mode, symmetric in symmetric mode.
    for mode, mapping, nat_type in (("eim", "endpoint-independent", "unknown"),
                                    ("symmetric", "unknown", "symmetric")):
        r = labkit.lab("nat-mode", "r1", mode)
        c.check(r.ok, f"lab.sh nat-mode r1 {mode}", r)
        r, j = nat("lan1", stun=(f"{ONE}:3490", STUN1))
        c.check(r.ok and j is not None and j["server"] == f"{ONE}:3490" and
                j["mapping"] == mapping and j["nat_type"] == nat_type and
                j["filtering"] == "unknown",
                f"one-address stund + a second server, {mode}: mapping {mapping}, "
                f"nat_type {nat_type}", r.stdout)
finally:
    labkit.lab("nat-mode", "r1", "eim")
    stund.terminate()
    stund.wait(5)
finish(c)
