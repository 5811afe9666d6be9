#!/usr/bin/python3
"""Carrier-grade NAT: lanc behind the home router rc (miniupnpd, WAN 100.64.0.2) behind
the ISP's NAT box isp (203.0.113.50), `lab.sh cgnat-start`. For both ISP modes (eim,
symmetric) x rc's four NAT modes:

- `porthole open PORT --verify` (TCP, and UDP) on lanc: rc grants the mapping (on
  100.64.0.2) but the internet cannot reach it: exit 6, JSON verified false, the server
  saw the ISP's address, and the explanation names the inner router. The mapping stays
  (exit 6 keeps it, as stderr says); `porthole close` then leaves nothing on rc.
- `porthole punch` lanc <-> lan2 (behind r2, eim; no mapping on either side): connects
  with a direct strategy ("direct" through two endpoint-independent NATs, "birthday"
  where either NAT in front of lanc is symmetric), bytes both ways over the punched
  socket.
With rc in eim, `porthole nat` on lanc reports the double NAT (rc says 100.64.0.2, STUN
sees 203.0.113.50) and the ISP's behaviour. A punch that maps its port on rc (no
--no-map on lanc) still connects, and the mapping is gone from rc afterwards.
Then the pairing that needs a relay: symmetric ISP box against a symmetric r2, with
coturn (`lab.sh turn-start`): strategy relay, path relayed, bytes both ways.
Prints pair, strategy, path kind, time and packets sent for every punch.
"""

import os

from porthole_lab import finish, porthole, porthole_json
from punch_lab import PATH_KINDS, STUN, exchanged, peer_id, punch_pair
import labkit  # noqa: E402

SERVE = "198.51.100.12"
ISP_PUBLIC, RC_WAN, LANC = "203.0.113.50", "100.64.0.2", "192.168.4.100"
TURN = "turn:198.51.100.14:3478"
ISP_MODES = ("eim", "symmetric")
# What `porthole nat` on lanc names with rc in eim: the ISP's NAT decides.
NAT_TYPE = {"eim": "port-restricted-cone", "symmetric": "symmetric"}
HOME_MODES = ("eim", "symmetric", "fullcone", "restricted")

c = labkit.Checker("cgnat")
env = labkit.lab_env()
table = []


def rc_entries(port: int, transport: str) -> list:
    return [m for m in labkit.upnp_table("rc")
            if m.int_ip == LANC and m.int_port == port and m.proto == transport.upper()]


def verify_blocked(name: str, port: int, transport: str) -> None:
    """open --verify behind the carrier NAT: mapped on rc, unreachable, exit 6; close."""
    spec = f"{port}/{transport}"
    r, j = porthole_json("lanc", "open", spec, "--verify", "--stun", SERVE)
    j = j or {}
    v = j.get("verification") or {}
    c.check(r.rc == 6, f"{name} {transport}: open --verify exits 6 (not verified)", r)
    c.check(j.get("verified") is False and j.get("external_ip") == RC_WAN
            and j.get("external_port") == port,
            f"{name} {transport}: mapped on rc ({RC_WAN}:{port}), verified false", j)
    c.check(v.get("observed", "").startswith(ISP_PUBLIC),
            f"{name} {transport}: the server saw the ISP's address {ISP_PUBLIC}", j)
    c.check("inner router" in v.get("explanation", ""),
            f"{name} {transport}: explained (the mapping sits on an inner router)", j)
    c.check(len(rc_entries(port, transport)) == 1 and "porthole close" in r.stderr,
            f"{name} {transport}: exit 6 keeps the mapping on rc and says how to close it", r)
    r = porthole("lanc", "close", spec)
    c.check(r.rc == 0 and rc_entries(port, transport) == [],
            f"{name} {transport}: close leaves nothing on rc", r)


def field(side, key):
    j = side.json if isinstance(side.json, dict) else {}
    return "-" if j.get(key) is None else j.get(key)


def punched(name: str, want: str, *args: str, lanc_args=("--no-map",)):
    a, b = punch_pair("lanc", ids["lanc"], "lan2", ids["lan2"], *args, a_args=lanc_args,
                      b_args=("--no-map",), bound=40)
    table.append((name, a, b))
    for side in (a, b):
        c.check(side.rc == 0 and not side.timed_out, f"{name}: {side.ns} exits 0", side)
        c.check(field(side, "strategy") == want,
                f"{name}: {side.ns} strategy {want} ({field(side, 'strategy')})", side.stdout)
        if want == "relay":
            c.check(side.path == "relayed", f"{name}: {side.ns} path relayed", side.stdout)
        else:
            c.check(side.path in PATH_KINDS,
                    f"{name}: {side.ns} a direct path kind ({side.path or 'none'})",
                    side.stdout)
    c.check(exchanged(a, b), f"{name}: bytes both ways over the punched socket", f"{a}\n{b}")
    return a


def nat_seen(isp_mode: str) -> None:
    r, j = porthole_json("lanc", "nat", "--stun", STUN.split(":")[0])
    j = j or {}
    c.check(r.rc == 0 and j.get("double_nat") is True
            and j.get("gateway_external_ip") == RC_WAN and j.get("public_ip") == ISP_PUBLIC,
            f"isp {isp_mode}: porthole nat on lanc: double NAT, rc {RC_WAN}, public {ISP_PUBLIC}",
            r)
    c.check(j.get("nat_type") == NAT_TYPE[isp_mode],
            f"isp {isp_mode}: porthole nat on lanc: {NAT_TYPE[isp_mode]} ({j.get('nat_type')})", j)


try:
    for cmd in (("router-stop", "r2"), ("serve-start",), ("cgnat-start", "eim")):
        r = labkit.lab(*cmd)
        c.check(r.ok, "lab.sh " + " ".join(cmd), r)
    ids = {ns: peer_id(ns) for ns in ("lanc", "lan2")}
    c.check(all(ids.values()), "porthole id --json: an ID for lanc and lan2", ids)

    # The carrier NAT drops what nobody inside asked for, mapping or not.
    r = porthole("lanc", "open", "44100")
    c.check(r.rc == 0 and len(rc_entries(44100, "tcp")) == 1, "rc maps 44100 for lanc", r)
    with labkit.listen("lanc", 44100, "tcp", token="lanc"):
        c.check(labkit.reach("isp", RC_WAN, 44100, "tcp", token="lanc"),
                f"inside the carrier network {RC_WAN}:44100 reaches lanc (the mapping works)", "")
        c.check(not labkit.reach("inet", ISP_PUBLIC, 44100, "tcp", timeout=1),
                f"a public host cannot reach {ISP_PUBLIC}:44100", "")
    porthole("lanc", "close", "44100")

    port = 44000
    for isp_mode in ISP_MODES:
        r = labkit.lab("cgnat-start", isp_mode)
        c.check(r.ok, f"lab.sh cgnat-start {isp_mode}", r)
        for home in HOME_MODES:
            r = labkit.lab("nat-mode", "rc", home)
            c.check(r.ok, f"lab.sh nat-mode rc {home}", r)
            if home == "eim":
                nat_seen(isp_mode)
            name = f"isp {isp_mode} / rc {home}"
            port += 1
            verify_blocked(name, port, "tcp")
            verify_blocked(name, port, "udp")
            hard = "symmetric" in (isp_mode, home)
            punched(f"lanc({isp_mode}+{home})<->lan2(eim)", "birthday" if hard else "direct")

    # Still isp symmetric, rc restricted: lanc maps its port on rc this time. The
    # mapping cannot help (isp is in front), the punch still gets through, and the
    # mapping is removed when it is done.
    a = punched("lanc(symmetric+restricted, mapped on rc)<->lan2(eim)", "birthday", "-v",
                lanc_args=())
    c.check(f"gateway mapping {RC_WAN}:" in a.stderr, "lanc mapped its punch port on rc",
            a.stderr)
    c.check(labkit.wait_until(lambda: not [m for m in labkit.upnp_table("rc")
                                           if m.int_ip == LANC and m.proto == "UDP"]),
            "the punch's mapping is gone from rc afterwards", labkit.upnp_table("rc"))

    # Symmetric behind symmetric against a symmetric r2: only a relay gets through.
    r = labkit.lab("nat-mode", "rc", "eim")
    c.check(r.ok, "lab.sh nat-mode rc eim", r)
    for cmd in (("nat-mode", "r2", "symmetric"), ("turn-start",)):
        r = labkit.lab(*cmd)
        c.check(r.ok, "lab.sh " + " ".join(cmd), r)
    os.environ["PORTHOLE_TURN"] = env.get("LAB_TURN_CREDENTIALS", "")
    punched("lanc(symmetric+eim)<->lan2(symmetric)", "relay", "--turn", TURN)
    del os.environ["PORTHOLE_TURN"]
finally:
    os.environ.pop("PORTHOLE_TURN", None)
    print(f"{'pair':52} {'strategy':9} {'path lanc / lan2':34} {'ms':>11} {'packets':>11}")
    for name, a, b in table:
        print(f"{name:52} {field(a, 'strategy'):9} "
              f"{str(field(a, 'path')) + ' / ' + str(field(b, 'path')):34} "
              f"{field(a, 'elapsed_ms'):>5} {field(b, 'elapsed_ms'):>5} "
              f"{field(a, 'packets_sent'):>5} {field(b, 'packets_sent'):>5}")
    for cmd in (("turn-stop",), ("serve-stop",), ("cgnat-stop",), ("nat-mode", "r2", "eim"),
                ("router-start", "r2")):
        r = labkit.lab(*cmd)
        c.check(r.ok, "cleanup: lab.sh " + " ".join(cmd), r)
finish(c)
