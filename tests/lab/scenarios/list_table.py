#!/usr/bin/python3
"""Lab: `porthole list` shows the router's whole UPnP table, and router text cannot
break it.

- 300 entries (lan1b, upnpc -r): list has every one of them, "complete": true, exit 0
  (it showed 6 at the default timeout before, silently); cut short by --timeout 0.5 it
  says so: "complete": false, a warning, exit 5. More than 128 entries: read row by
  row, and the router survives (miniupnpd 2.3.1 dies when GetListOfPortMappings covers
  more than 128 mappings).
- 100 entries: one GetListOfPortMappings per protocol (IGDv2), every entry.
- A description lan1b sends with upnpc as raw bytes (0xff, ESC, newline): `--json list`
  from lan1 is valid JSON, exit 0; the text output shows escapes, never the raw bytes.
- The same on an IGDv1 router (row by row).
- open --description with invalid UTF-8 or a control character: exit 2, nothing sent.
"""

import json

from porthole_lab import (GATEWAY, LAN1B, PacketCounter, finish, porthole, porthole_json)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

DESC_URL = f"http://{GATEWAY}:5000/rootDesc.xml"
HOSTILE = b"h\xff\x1b[31mX\nY"


def add_many(first: int, count: int) -> labkit.Result:
    """lan1b maps TCP first..first+count-1 to itself, in one upnpc run."""
    ports = []
    for p in range(first, first + count):
        ports += [str(p), str(p), "TCP"]
    return labkit.run("lan1b", ["upnpc", "-u", DESC_URL, "-e", "bulk", "-r", *ports],
                      timeout=120)


def add_hostile(port: int) -> labkit.Result:
    # upnpc puts the description into the SOAP body as it is: bytes and all.
    return labkit.run("lan1b", ["upnpc", "-u", DESC_URL, "-e", HOSTILE, "-a", LAN1B,
                                str(port), str(port), "UDP"])


def router_alive() -> bool:
    return "miniupnpd-r1: running" in labkit.lab("status").stdout


def lan1b_ports(listing) -> set:
    return {m["external_port"] for m in listing["mappings"] if m["internal_ip"] == LAN1B}


def check_whole_table(c: labkit.Checker, what: str, ports: range, *extra: str):
    """`porthole --json list` from lan1 is complete, exit 0, with every port of lan1b's
    in `ports`; returns the Result (for its -v log)."""
    r = porthole("lan1", "list", "--json", *extra)
    listing = json.loads(r.stdout) if r.rc == 0 else None
    c.check(listing is not None and listing["complete"] is True and not listing["warnings"],
            f"{what}: list complete, no warning, exit 0", r)
    if listing:
        c.check(lan1b_ports(listing) == set(ports), f"{what}: every entry listed",
                len(lan1b_ports(listing)))
    return r


def check_hostile(c: labkit.Checker, what: str) -> None:
    r = porthole("lan1", "list", "--json", "--timeout", "20")
    try:
        listing = json.loads(r.stdout)
    except ValueError:
        listing = None
    c.check(r.rc == 0 and listing is not None, f"{what}: --json list is valid JSON, exit 0", r)
    if listing:
        rows = [m for m in listing["mappings"] if m["external_port"] == 47000]
        c.check(len(rows) == 1 and rows[0]["description"] == "h\ufffd\x1b[31mX\nY",
                f"{what}: the description with U+FFFD for 0xff, ESC and newline as JSON "
                "escapes", rows)
        c.check("\x1b" not in r.stdout, f"{what}: no raw ESC in the JSON text")
    r = porthole("lan1", "list", "--timeout", "20")
    c.check(r.rc == 0 and "h\\xff\\x1b[31mX\\nY" in r.stdout, f"{what}: text list escapes it",
            r)
    c.check("\x1b" not in r.stdout and "\ufffd" not in r.stdout,
            f"{what}: no raw ESC reaches the terminal", r.stdout)


c = labkit.Checker("list_table")
try:
    # Refused before anything is sent.
    with PacketCounter("192.168.1.100") as sent:
        for bad, why in ((b"\xff", "UTF-8"), (b"a\x1b[2J", "control character"),
                         (b"two\nlines", "control character")):
            r = porthole("lan1", "open", "47001", "--description", bad)
            c.check(r.rc == 2 and "--description" in r.stderr and why in r.stderr,
                    f"open --description {bad!r}: exit 2, says why", r)
        c.check(sent.packets() == 0, "bad descriptions: nothing sent to the router",
                sent.packets())

    labkit.lab("router-reboot")
    r = add_many(41000, 100)
    c.check(r.rc == 0, "lan1b adds 100 entries", r.stderr[-500:])
    r = check_whole_table(c, "100 entries", range(41000, 41100), "-v")
    c.check("GetListOfPortMappings TCP: 100 rows" in r.stderr,
            "100 entries: one GetListOfPortMappings for TCP", r.stderr[-2000:])

    r = add_many(41100, 200)
    c.check(r.rc == 0, "lan1b adds 200 more (300)", r.stderr[-500:])
    # Row by row (more than 128 rows) miniupnpd takes ~11 ms a row here, ~3.5 s for 300:
    # a generous deadline keeps a loaded machine from cutting it short.
    check_whole_table(c, "300 entries", range(41000, 41300), "--timeout", "20")
    # Cut short by the deadline: the rows read so far, "complete": false, a warning, exit 5.
    r = porthole("lan1", "list", "--json", "--timeout", "0.5")
    listing = json.loads(r.stdout) if r.stdout else None
    c.check(r.rc == 5 and listing is not None and listing["complete"] is False,
            "300 entries, --timeout 0.5: exit 5, complete false", r)
    if listing:
        c.check(len(lan1b_ports(listing)) < 300, "--timeout 0.5: fewer rows than 300",
                len(lan1b_ports(listing)))
    c.check("not read to its end" in r.stderr, "--timeout 0.5: a warning says so", r.stderr)
    r = porthole("lan1", "list", "--timeout", "0.5")
    c.check(r.rc == 5 and "incomplete" in r.stdout, "--timeout 0.5: the text says incomplete",
            r.stdout[-300:])
    r = porthole("lan1", "list", "--timeout", "20")
    c.check(r.rc == 0 and r.stdout.count("bulk") == 300 and "incomplete" not in r.stdout,
            "300 entries: text list has all 300 rows, no warning", r.stdout[-300:])
    c.check(router_alive(), "300 entries: the router is still running")

    r = add_hostile(47000)
    c.check(r.rc == 0 and "is redirected" in r.stdout, "lan1b maps 47000 with a hostile "
            "description", r)
    check_hostile(c, "IGDv2, 300 entries")

    labkit.lab("router-reboot")
    r = add_hostile(47000)
    check_hostile(c, "IGDv2, listed in one answer")

    r = labkit.lab("router-start-igdv1")
    c.check(r.ok, "router restarted as IGDv1", r)
    r = add_many(41000, 300)
    c.check(r.rc == 0, "IGDv1: lan1b adds 300 entries", r.stderr[-500:])
    check_whole_table(c, "IGDv1, 300 entries", range(41000, 41300), "--timeout", "20")
    add_hostile(47000)
    check_hostile(c, "IGDv1")
finally:
    labkit.lab("router-reboot")
    labkit.lab("router-start")
finish(c)
