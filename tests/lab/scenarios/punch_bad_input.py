#!/usr/bin/python3
"""`porthole punch` and `porthole id` with bad input: a clear error, the documented exit
status, nothing sent where nothing may be sent, and nothing lost.

- a malformed PEER_ID (a typo, too short, too long): exit 2, not one packet leaves lan1;
- a rendezvous where nothing listens: exit 3 by itself (within --timeout), naming it;
- a valid peer ID that never comes online, --wait 1 --timeout 20: exit 7 saying "not
  online", because the wait ran out, not the overall deadline;
- the identity key file readable by others (0644), or corrupt, or the state directory
  writable by others or the group: exit 8 naming what is wrong, the key file byte for
  byte and mode for mode as it was, nothing sent.
"""

import os
import stat

from porthole_lab import LAN1, PacketCounter, cleanup, finish, porthole, state_dir
from punch_lab import RENDEZVOUS, error_of, peer_id, punch
import labkit  # noqa: E402

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
UNREACHABLE = "198.51.100.29:3478"   # a public host in inet where nothing listens


def typo(text: str, at: int) -> str:
    """`text` with the character at `at` swapped for another base32 character."""
    other = BASE32[(BASE32.index(text[at]) + 1) % len(BASE32)]
    return text[:at] + other + text[at + 1:]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


c = labkit.Checker("punch_bad_input")
cleanup()
try:
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)

    # porthole id: the key is made once, the ID printed as text and as JSON is the same.
    me = peer_id("lan1")
    text = porthole("lan1", "id")
    key = state_dir("lan1") / "identity.key"
    c.check(me is not None and len(me) == 55, "id --json: a 55-character ID", me)
    c.check(text.ok and text.stdout.strip() == me, "id: the same ID as text, key kept", text)
    c.check(key.exists() and mode(key) == 0o600, "id: the key file is mode 0600",
            oct(mode(key)) if key.exists() else "missing")
    peer = peer_id("lan2")   # a valid ID; lan2 never runs punch here
    c.check(peer is not None and peer != me, "lan2 has an ID of its own", peer)

    with PacketCounter(LAN1, forwarded=True) as counter:
        before = counter.packets()
        malformed = [(typo(peer, 20), ("checksum", "typo")),
                     (peer[:-1], ("1 missing",)),
                     (peer + "a", ("1 too many",)),
                     (peer[:30], ("25 missing",))]
        for bad, says in malformed:
            r = punch("lan1", bad, exchange=False, bound=15)
            c.check(r.rc == 2 and not r.timed_out, f"PEER_ID {bad}: exit 2", r)
            c.check(any(r.says(s) for s in says), f"PEER_ID {bad}: says {' or '.join(says)}",
                    r.stderr)
            c.check(error_of(r.json).get("name") == "usage", f"PEER_ID {bad}: JSON usage error",
                    r.stdout)
        c.check(counter.packets() == before, "malformed PEER_ID: not one packet left lan1",
                counter.packets() - before)

        # The same counter sees a real punch attempt (so zero above means something).
        r = punch("lan1", peer, "--wait", "1", "--timeout", "5", exchange=False, bound=15)
        c.check(counter.packets() > before, "the counter sees a real punch attempt", r)

    # Nothing listens at the rendezvous: exit 3 before the harness bound, naming it.
    r = punch("lan1", peer, "--timeout", "3", rendezvous=UNREACHABLE, exchange=False, bound=15)
    c.check(r.rc == 3 and not r.timed_out, f"rendezvous {UNREACHABLE} unreachable: exit 3", r)
    c.check(r.says(UNREACHABLE.split(":")[0]), "unreachable rendezvous: the message names it",
            r.stderr)

    # Not online: --wait 1 ends it; --timeout 20 is far beyond the harness bound of 15 s.
    r = punch("lan1", peer, "--wait", "1", "--timeout", "20", exchange=False, bound=15)
    c.check(r.rc == 7 and not r.timed_out, "peer never online, --wait 1: exit 7", r)
    c.check(r.says("not online"), "peer never online: says 'not online'", r.stderr)
    c.check(not r.says("timed out") and not r.says("deadline"),
            "peer never online: the wait ended it, not the overall timeout", r.stderr)

    # The identity's files: every case exits 8, names the problem, changes nothing, sends
    # nothing. --wait 1 --timeout 5: should a check be missing, the run still ends soon.
    good = key.read_bytes()

    def refused(what: str, names: str, why: str) -> None:
        kept, kept_mode = key.read_bytes(), mode(key)
        with PacketCounter(LAN1, forwarded=True) as counter:
            for args in (("punch",), ("id",)):
                if args[0] == "punch":
                    r = punch("lan1", peer, "--wait", "1", "--timeout", "5", exchange=False,
                              bound=15)
                else:
                    r = porthole("lan1", "id", "--json")
                c.check(r.rc == 8, f"{what}: {args[0]} exits 8", r)
                c.check(names in r.stderr and why in r.stderr,
                        f"{what}: {args[0]} names {names} and says '{why}'", r.stderr)
                c.check(key.read_bytes() == kept and mode(key) == kept_mode,
                        f"{what}: {args[0]} leaves the key file as it was")
            c.check(counter.packets() == 0, f"{what}: not one packet left lan1",
                    counter.packets())

    os.chmod(key, 0o644)
    refused("key file mode 0644", str(key), "0644")
    os.chmod(key, 0o600)

    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key at all\n-----END PRIVATE KEY-----\n")
    refused("corrupt key file", str(key), "corrupt")
    key.write_bytes(good)

    for dir_mode, who in ((0o777, "others"), (0o770, "its group")):
        os.chmod(state_dir("lan1"), dir_mode)
        refused(f"state directory writable by {who} ({dir_mode:04o})", str(state_dir("lan1")),
                f"writable by {who}")
        os.chmod(state_dir("lan1"), 0o700)

    r = porthole("lan1", "id")
    c.check(r.ok and r.stdout.strip() == me, "restored: the same ID as before", r)
finally:
    labkit.lab("serve-stop")
    cleanup()
finish(c)
