#!/usr/bin/python3
"""`porthole open --verify` against real miniupnpd, with `porthole serve` in the fake
internet (lab.sh serve-start: 198.51.100.12/.13) as the --stun server:
- pcp, natpmp, upnp x tcp, udp: verified, and --json says how (method, observed, server);
- TCP with the user's own service already listening: proven by the completed handshake;
- UDP with the port held by another program: exit 6 saying so;
- the forward removed on the router behind porthole's back: exit 6, the mapping stays;
- double NAT (lan3 behind r3 behind r1, lab.sh up-double-nat): r3 maps the port, r1
  still blocks: exit 6 explaining that the mapping sits on an inner router."""

from porthole_lab import (LAN1, WAN_IP, cleanup, entries_for, finish, porthole,
                          porthole_json)
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

SERVE = "198.51.100.12"
R3_WAN = "192.168.1.2"
STUN = ["--stun", SERVE]

c = labkit.Checker("verify")
cleanup()
r = labkit.lab("serve-start")
c.check(r.ok, "porthole serve started in inet", r)

try:
    port = 43000
    for via in ("pcp", "natpmp", "upnp"):
        for transport in ("tcp", "udp"):
            port += 1
            name = f"{via} {transport} {port}"
            r, j = porthole_json("lan1", "open", f"{port}/{transport}", "--via", via,
                                 "--verify", *STUN)
            if not c.check(r.rc == 0 and j is not None, f"{name}: open --verify exits 0", r):
                continue
            v = j.get("verification", {})
            c.check(j.get("verified") is True, f"{name}: JSON verified true", j)
            c.check(j["protocol"] == via and j["external_port"] == port,
                    f"{name}: JSON still describes the mapping", j)
            want = "stun-change-request" if transport == "udp" else "connect-back-token"
            c.check(v.get("method") == want, f"{name}: method {want}", j)
            c.check(v.get("server") == f"{SERVE}:3478", f"{name}: server named", j)
            observed = f"{WAN_IP}:{port}" if transport == "udp" else WAN_IP
            c.check(v.get("observed") == observed, f"{name}: observed {observed}", j)
            r = porthole("lan1", "close", f"{port}/{transport}")
            c.check(r.rc == 0, f"{name}: closed", r)

    # Text output says what was proven.
    r = porthole("lan1", "open", "43010", "--verify", *STUN)
    c.check(r.rc == 0 and "verified (connect-back-token" in r.stdout and "token" in r.stdout,
            "text output names the proof", r)
    porthole("lan1", "close", "43010")

    # The user's service already listens: porthole cannot listen there; the server's
    # connection is proven by the handshake and this host's TCP table.
    with labkit.listen("lan1", 43011, "tcp", token="service"):
        r, j = porthole_json("lan1", "open", "43011", "--verify", *STUN)
        c.check(r.rc == 0 and j and j["verified"] is True
                and j["verification"]["method"] == "connect-back-handshake",
                "busy TCP port: verified by the completed handshake", r)
    porthole("lan1", "close", "43011")

    # A UDP port held by another program cannot be sent from: exit 6, said plainly.
    with labkit.listen("lan1", 43012, "udp", token="service"):
        r, j = porthole_json("lan1", "open", "43012/udp", "--verify", *STUN)
        c.check(r.rc == 6 and j and j["verified"] is False
                and "another program" in j["verification"]["explanation"],
                "busy UDP port: exit 6, explained", r)
        c.check(len(entries_for(LAN1, 43012, "udp")) == 1, "busy UDP port: mapping stays")
    porthole("lan1", "close", "43012/udp")

    # The forward removed on the router behind porthole's back (miniupnpd's filter
    # rules flushed; its DNAT entry and porthole's state remain). A UPnP refresh of
    # an entry miniupnpd still knows does not put the filter rule back.
    for transport in ("tcp", "udp"):
        p = 43020 if transport == "tcp" else 43021
        r = porthole("lan1", "open", f"{p}/{transport}", "--via", "upnp")
        c.check(r.rc == 0, f"forward removed {transport}: opened first", r)
        r = labkit.run("r1", ["nft", "flush", "chain", "inet", "filter", "miniupnpd"])
        c.check(r.ok, f"forward removed {transport}: router's filter rules flushed", r)
        r, j = porthole_json("lan1", "open", f"{p}/{transport}", "--via", "upnp", "--verify",
                             *STUN)
        c.check(r.rc == 6, f"forward removed {transport}: exit 6", r)
        c.check(j and j.get("verified") is False and "forward" in
                j.get("verification", {}).get("explanation", ""),
                f"forward removed {transport}: JSON verified false with the reason", j)
        c.check("not verified" in r.stderr, f"forward removed {transport}: said on stderr", r)
        c.check(len(entries_for(LAN1, p, transport)) == 1,
                f"forward removed {transport}: the mapping stays on exit 6")
        porthole("lan1", "close", f"{p}/{transport}")

    # Double NAT: the mapping is real on r3 (192.168.1.2) but r1 in front still blocks.
    r = labkit.lab("up-double-nat")
    if c.check(r.ok, "double NAT: lab.sh up-double-nat", r):
        try:
            for transport in ("tcp", "udp"):
                p = 43030
                r, j = porthole_json("lan3", "open", f"{p}/{transport}", "--verify", *STUN)
                v = (j or {}).get("verification", {})
                c.check(r.rc == 6, f"double NAT {transport}: exit 6", r)
                c.check(j and j.get("verified") is False and j.get("external_ip") == R3_WAN,
                        f"double NAT {transport}: mapped on r3, not verified", j)
                c.check("inner router" in v.get("explanation", "")
                        and "outer one still blocks" in v.get("explanation", ""),
                        f"double NAT {transport}: explained", j)
                c.check(v.get("observed", "").startswith(WAN_IP),
                        f"double NAT {transport}: the server saw r1's address", j)
                porthole("lan3", "close", f"{p}/{transport}")
        finally:
            r = labkit.lab("down-double-nat")
            c.check(r.ok, "double NAT: lab.sh down-double-nat", r)
finally:
    labkit.lab("serve-stop")
    cleanup()
finish(c)
