#!/usr/bin/python3
"""Lab test 9: bad arguments and a corrupt state file give a clear error, send nothing
to the router and lose nothing."""

from porthole_lab import (PacketCounter, cleanup, finish, porthole, porthole_json,
                          state_dir)
import labkit

c = labkit.Checker("bad_input")
cleanup()

with PacketCounter("192.168.1.100") as counter:
    before = counter.packets()
    bad = [
        (["open", "0"], "out of range"),
        (["open", "70000"], "out of range"),
        (["open", "abc"], "not a port"),
        (["open", "8080/sctp"], "tcp or udp"),
        (["open", "8080", "--lifetime", "-1"], "negative"),
        (["open", "8080", "--via", "smoke-signals"], "unknown protocol"),
        (["open", "8080", "--gateway", "not-an-ip"], "not an IPv4 address"),
        (["--gateway", "300.1.1.1", "probe"], "not an IPv4 address"),
        (["close", "65536/udp"], "out of range"),
        (["open"], "PORT"),
        (["--gateway", "0.0.0.0", "probe"], "not a host address"),
        (["--gateway", "224.0.0.1", "probe"], "multicast"),
        (["--gateway", "239.255.255.250", "open", "8080"], "multicast"),
        (["--gateway", "255.255.255.255", "probe"], "broadcast"),
        (["--gateway", "240.0.0.1", "list"], "reserved"),
        (["--timeout", "0", "probe"], "above 0 and at most 3600"),
    ]
    for args, says in bad:
        r = porthole("lan1", *args)
        c.check(r.rc == 2, f"{' '.join(args)}: exit 2", r)
        c.check(says.lower() in r.stderr.lower(), f"{' '.join(args)}: says '{says}'", r.stderr)
    # Under --json a usage error is the error object on stdout as well.
    r, j = porthole_json("lan1", "--gateway", "255.255.255.255", "open", "8080")
    c.check(r.rc == 2 and j and j["error"]["name"] == "usage" and j["error"]["code"] == 2,
            "usage error under --json: the error object on stdout", r)
    c.check(counter.packets() == before, "bad arguments: not one packet reached the router",
            counter.packets() - before)

    # A corrupt state file: named in the error, exit 8, left byte for byte as it was.
    sd = state_dir("lan1")
    sd.mkdir(parents=True, exist_ok=True)
    f = sd / "mappings.json"
    garbage = b'{"version": 1, "mappings": [ {"gateway": "192.168.1.1", oops'
    f.write_bytes(garbage)
    for args in (["open", "8080"], ["close", "8080"], ["list"]):
        r, j = porthole_json("lan1", *args)
        c.check(r.rc == 8, f"corrupt state, {args[0]}: exit 8", r)
        c.check(str(f) in r.stderr, f"corrupt state, {args[0]}: the file is named", r.stderr)
        c.check(j and j["error"]["name"] == "state", f"corrupt state, {args[0]}: JSON error",
                r.stdout)
        c.check(f.read_bytes() == garbage, f"corrupt state, {args[0]}: file untouched")
    c.check(counter.packets() == before, "corrupt state: not one packet reached the router",
            counter.packets() - before)

    # And the counter does count: a real probe shows up.
    r = porthole("lan1", "probe")
    c.check(r.rc == 0 and counter.packets() > before, "the counter sees a real probe", r)
cleanup()
finish(c)
