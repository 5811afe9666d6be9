#!/usr/bin/python3
"""`porthole expose` / `porthole connect`, lab test 7: bad input gets a clear error and
the documented exit status, before anything is sent.

- connect with a bad -L spec (no remote port, port 0 or above 65535, not a number, an
  unknown protocol, a bad bind address, too many fields): exit 2, the message quotes the
  spec, not one packet leaves lan1;
- connect with a bad PEER_ID, no -L at all: exit 2, nothing sent;
- connect with a -L whose local port is in use on lan1: exit 2 saying "in use", nothing
  sent (local ports are bound before anything goes out);
- connect, and expose, with a rendezvous where nothing listens: exit 3 naming it;
- expose with neither --allow nor --allow-any: exit 2 naming both options, nothing sent;
  with a bad port spec or a malformed --allow ID: exit 2;
- expose --allow-any: a warning on stderr, and it runs (ready; SIGTERM: exit 0).
"""

from porthole_lab import LAN1, PacketCounter, cleanup, finish, porthole
from tunnel_lab import (EXIT_NO_GATEWAY, EXIT_USAGE, EventTimeout, RENDEZVOUS, STUN, expose,
                        lab_ready, lab_restore, peer_id, started)
import labkit  # noqa: E402

UNREACHABLE = "198.51.100.29:3478"   # a public host in inet where nothing listens
IN_USE = 18090


def says(r, *words) -> bool:
    text = f"{r.stdout} {r.stderr}".lower()
    return all(w.lower() in text for w in words)


def run(sub: str, *args: str, rendezvous: str = RENDEZVOUS, timeout: float = 20.0):
    return porthole("lan1", sub, *args, "--rendezvous", rendezvous, "--stun", STUN,
                    timeout=timeout)


c = labkit.Checker("tunnel_bad_input")
cleanup("lan1")
held = None
try:
    lab_ready(c, miniupnpd={"r1": False})
    peer = peer_id("lan2")
    c.check(peer and peer_id("lan1"), "porthole id --json: IDs for lan1 and lan2", peer)
    held = labkit.listen("lan1", IN_USE, ip="127.0.0.1")

    with PacketCounter(LAN1, forwarded=True) as counter:
        before = counter.packets()
        bad_specs = ["18080", "18080:", ":8080", "0:8080", "18080:0", "70000:8080",
                     "18080:70000", "abc:8080", "18080:http", "18080:8080/sctp",
                     "300.1.1.1:18080:8080", "127.0.0.1:18080:8080:1", ""]
        for spec in bad_specs:
            r = run("connect", peer, "-L", spec, "--no-map")
            c.check(r.rc == EXIT_USAGE and not r.timed_out, f"-L {spec!r}: exit 2", r)
            c.check(says(r, spec) if spec else says(r, "-L"),
                    f"-L {spec!r}: the message quotes what is wrong", r.stderr)
        r = run("connect", peer[:-1], "-L", "18080:8080", "--no-map")
        c.check(r.rc == EXIT_USAGE, "connect with a malformed PEER_ID: exit 2", r)
        r = run("connect", peer, "--no-map")
        c.check(r.rc == EXIT_USAGE, "connect without any -L: exit 2", r)
        r = run("connect", peer, "-L", f"{IN_USE}:8080", "--no-map")
        c.check(r.rc == EXIT_USAGE and says(r, "in use") and says(r, str(IN_USE)),
                f"-L {IN_USE}:8080 with {IN_USE} taken: exit 2, \"in use\", names the port", r)
        r = run("expose", "8080", "--no-map")
        c.check(r.rc == EXIT_USAGE and says(r, "--allow") and says(r, "--allow-any"),
                "expose with neither --allow nor --allow-any: exit 2 naming both", r)
        for ports in ("0", "70000", "8080/sctp", "http"):
            r = run("expose", ports, "--allow", peer, "--no-map")
            c.check(r.rc == EXIT_USAGE and says(r, ports),
                    f"expose {ports!r}: exit 2 quoting it", r)
        r = run("expose", "8080", "--allow", peer[:-1], "--no-map")
        c.check(r.rc == EXIT_USAGE, "expose --allow with a malformed ID: exit 2", r)
        c.check(counter.packets() == before, "bad input: not one packet left lan1",
                counter.packets() - before)

        # The same counter sees a real attempt (so zero above means something).
        r = run("connect", peer, "-L", "18080:8080", "--no-map", "--wait", "1",
                "--timeout", "5")
        c.check(counter.packets() > before, "the counter sees a real connect attempt", r)

    r = run("connect", peer, "-L", "18080:8080", "--no-map", "--timeout", "3",
            rendezvous=UNREACHABLE)
    c.check(r.rc == EXIT_NO_GATEWAY and not r.timed_out,
            f"rendezvous {UNREACHABLE} unreachable: exit 3", r)
    c.check(says(r, UNREACHABLE.split(":")[0]), "unreachable rendezvous: the message names it",
            r.stderr)

    r = run("expose", "8080", "--allow", peer, "--no-map", "--timeout", "3",
            rendezvous=UNREACHABLE)
    c.check(r.rc == EXIT_NO_GATEWAY and not r.timed_out,
            f"expose: rendezvous {UNREACHABLE} unreachable: exit 3", r)
    c.check(says(r, UNREACHABLE.split(":")[0]),
            "expose: unreachable rendezvous: the message names it", r.stderr)

    ex = expose("lan1", ["8080"], (), "--allow-any", "--no-map")
    try:
        started(ex)
        c.check(ex.says("allow-any") or ex.says("any peer"),
                "expose --allow-any: a warning on stderr", ex.summary())
    except EventTimeout as e:
        c.check(False, "expose --allow-any runs", e)
    finally:
        rc = ex.stop()
        c.check(rc == 0, f"expose --allow-any: SIGTERM, exit 0 (rc={rc})", ex.summary())
finally:
    if held:
        held.stop()
    lab_restore(c)
    cleanup("lan1")
finish(c)
