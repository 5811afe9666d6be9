#!/usr/bin/python3
"""The state directory and the router never disagree, and nothing outside the state
directory is ever written:
- a full file system and a read-only one (a small tmpfs in a private mount namespace):
  `open` and `close` exit 8 and leave the router as the state says;
- planted symlinks at every name porthole creates, and a state directory others may
  write to: refused or written around, the link targets untouched;
- a PCP mapping gone from the router (removed by someone else, lost in a reboot, taken
  over with another nonce): `list` marks it not confirmed, `close` succeeds and drops it;
- an external port porthole already holds for another internal port is never taken over
  (another one is chosen, or exit 4 with --strict-port)."""

import os
import shutil
import tempfile
from pathlib import Path

from porthole_lab import BIN, LAN1, PacketCounter, RouterFilter, cleanup, entries_for, finish, porthole, \
    porthole_json, router_idle, state_dir
import labkit  # noqa: E402  (porthole_lab puts it on sys.path)

c = labkit.Checker("state_faults")
cleanup()
work = Path(tempfile.mkdtemp(prefix="porthole-lab-fs-"))


def ext_ports(port: int) -> set:
    return {m.ext_port for m in entries_for(LAN1, port)}


# ---- full and read-only file system, in a private mount namespace of lan1
FS_SCRIPT = r"""
D=$1; BIN=$2; S=$D/state
mount -t tmpfs -o size=256k,mode=0700 porthole-lab-fs $D || exit 99
step() { name=$1; shift; "$BIN" "$@" --state-dir "$S" >"$D.out" 2>&1; rc=$?;
         echo "STEP $name $rc"; }
fill() { dd if=/dev/zero of=$D/fill bs=4096 2>/dev/null; sync; }
step first-list list
fill
step full-open-pcp open 45101 --via pcp
step full-open-natpmp open 45102 --via natpmp
step full-open-upnp open 45103 --via upnp
rm -f $D/fill
step open-pcp open 45104 --via pcp
fill
step full-close close 45104
rm -f $D/fill
mount -o remount,ro $D
step ro-open open 45105 --via upnp
step ro-close close 45104
mount -o remount,rw $D
"$BIN" list --json --state-dir "$S" >"$D.list" 2>/dev/null
echo "LISTED $(tr -d '\n' < $D.list)"
step rw-close close 45104
"""
fsdir = work / "fs"
fsdir.mkdir()
r = labkit.run("lan1", ["unshare", "-m", "/bin/sh", "-c", FS_SCRIPT, "sh", str(fsdir), BIN],
               timeout=120)
steps = {}
listed = None
for line in r.stdout.splitlines():
    if line.startswith("STEP "):
        _, name, rc = line.split()
        steps[name] = int(rc)
    elif line.startswith("LISTED "):
        import json
        try:
            listed = json.loads(line[len("LISTED "):])
        except ValueError:
            pass
c.check(r.rc == 0 and len(steps) == 9, "fs script ran every step", r)
for name, port in (("full-open-pcp", 45101), ("full-open-natpmp", 45102),
                   ("full-open-upnp", 45103)):
    c.check(steps.get(name) == 8, f"{name}: exit 8", steps)
    c.check(not ext_ports(port), f"{name}: nothing on the router", ext_ports(port))
c.check(steps.get("open-pcp") == 0, "open with space: exit 0", steps)
c.check(steps.get("full-close") == 8, "close on a full disk: exit 8", steps)
c.check(steps.get("ro-open") == 8 and not ext_ports(45105), "read-only: open exits 8, "
        "nothing on the router", (steps, ext_ports(45105)))
c.check(steps.get("ro-close") == 8, "read-only: close exits 8", steps)
rows = [m for m in (listed or {}).get("mappings", []) if m["internal_port"] == 45104]
c.check(len(rows) == 1 and rows[0].get("confirmed") is True and rows[0]["protocol"] == "pcp",
        "after the failed closes the state still lists 45104, confirmed", listed)
c.check(steps.get("rw-close") == 0 and not ext_ports(45104),
        "writable again: close exits 0 and removes it", (steps, ext_ports(45104)))

# ---- planted symlinks and a directory others may write to
victim = work / "victim"
VICTIM_TEXT = '{"version": 1, "mappings": []}\n'
for name in ("mappings.json", "lock"):
    sd = work / f"link-{name}"
    sd.mkdir(mode=0o700)
    victim.write_text(VICTIM_TEXT)
    os.symlink(victim, sd / name)
    with PacketCounter(LAN1) as counter:
        before = counter.packets()
        r = porthole("lan1", "open", "45120", "--via", "upnp", state=sd)
        c.check(r.rc == 8 and "symbolic link" in r.stderr, f"{name} a symlink: exit 8, says why",
                r)
        c.check(counter.packets() == before, f"{name} a symlink: nothing sent")
    c.check(victim.read_text() == VICTIM_TEXT and (sd / name).is_symlink(),
            f"{name} a symlink: its target untouched")
sd = work / "link-tmp"
sd.mkdir(mode=0o700)
victim.write_text(VICTIM_TEXT)
for n in range(1, 4096):  # every PID a writer could have had, in the old name scheme
    pid = os.getpid() + n
    os.symlink(victim, sd / f"mappings.json.tmp.{pid}")
r = porthole("lan1", "open", "45121", "--via", "upnp", state=sd)
c.check(r.rc == 0 and ext_ports(45121), "planted temp links: open works", r)
c.check(victim.read_text() == VICTIM_TEXT, "planted temp links: the target untouched")
c.check(not (sd / "mappings.json").is_symlink() and
        '"internal_port": 45121' in (sd / "mappings.json").read_text(),
        "planted temp links: mappings.json is our own file")
r = porthole("lan1", "close", "45121", state=sd)
c.check(r.rc == 0 and not ext_ports(45121), "planted temp links: close works", r)
for mode in (0o777, 0o1777, 0o770):
    sd = work / f"open-{mode:o}"
    sd.mkdir()
    os.chmod(sd, mode)
    with PacketCounter(LAN1) as counter:
        before = counter.packets()
        r = porthole("lan1", "open", "45122", "--via", "upnp", state=sd)
        c.check(r.rc == 8 and "writable by group or others" in r.stderr,
                f"state dir mode {mode:o}: exit 8, says why", r)
        c.check(counter.packets() == before, f"state dir mode {mode:o}: nothing sent")
    c.check(not list(sd.iterdir()), f"state dir mode {mode:o}: nothing created in it")
sd = work / "foreign"
sd.mkdir(mode=0o700)
os.chown(sd, 4242, -1)
r = porthole("lan1", "open", "45122", "--via", "upnp", state=sd)
c.check(r.rc == 8 and "owned by uid 4242" in r.stderr, "foreign state dir: exit 8", r)
c.check(not ext_ports(45122), "bad state dirs: nothing on the router", ext_ports(45122))


# ---- PCP mappings the router no longer holds
def listed_row(port):
    r, j = porthole_json("lan1", "list")
    rows = [m for m in (j or {}).get("mappings", []) if m["internal_port"] == port]
    return r, rows


r = porthole("lan1", "open", "45130", "--via", "pcp")
c.check(r.rc == 0 and ext_ports(45130), "pcp 45130 opened", r)
labkit.run("lan1", ["upnpc", "-u", "http://192.168.1.1:5000/rootDesc.xml", "-d", "45130", "TCP"])
c.check(not ext_ports(45130), "someone else removed 45130")
r, rows = listed_row(45130)
c.check(r.rc == 0 and len(rows) == 1 and rows[0].get("confirmed") is False,
        "list marks the vanished mapping confirmed: false", rows)
r = porthole("lan1", "list")
c.check(r.rc == 0 and any(line.startswith("?") and "45130" in line
                          for line in r.stdout.splitlines()),
        "list text marks it with ?", r)
r = porthole("lan1", "close", "45130")
c.check(r.rc == 0 and "no longer holds" in r.stderr, "close of the vanished one: exit 0, "
        "with a note", r)
c.check(not listed_row(45130)[1], "and its entry is gone", listed_row(45130))

r = porthole("lan1", "open", "45131", "--via", "pcp")
c.check(r.rc == 0, "pcp 45131 opened", r)
reply = labkit.pcp_map("lan1", "192.168.1.1", "tcp", 45131, 600)  # a new nonce takes it over
c.check(reply is not None and reply.result == 0, "another client took 45131 over", reply)
r = porthole("lan1", "close", "45131")
c.check(r.rc == 0 and not ext_ports(45131), "close of the taken-over one: exit 0, removed",
        r)

# The same with no UPnP table to ask (SSDP silenced): list cannot confirm either way,
# close settles it with a PCP MAP + delete under our nonce.
r = porthole("lan1", "open", "45133", "--via", "pcp")
c.check(r.rc == 0 and ext_ports(45133), "pcp 45133 opened", r)
labkit.run("lan1", ["upnpc", "-u", "http://192.168.1.1:5000/rootDesc.xml", "-d", "45133", "TCP"])
with RouterFilter("upnp"):
    r, rows = listed_row(45133)
    c.check(len(rows) == 1 and rows[0].get("confirmed", False) is None,
            "no UPnP table: list says confirmed null", rows)
    r = porthole("lan1", "close", "45133")
    c.check(r.rc == 0 and "re-asserted" in r.stderr, "no UPnP table: close exits 0, says how",
            r)
c.check(not ext_ports(45133) and not listed_row(45133)[1],
        "no UPnP table: nothing left on the router or in the state", ext_ports(45133))

r = porthole("lan1", "open", "45132", "--via", "pcp")
c.check(r.rc == 0, "pcp 45132 opened", r)
labkit.lab("router-reboot")
c.check(router_idle(), "router back after the reboot")
c.check(not ext_ports(45132), "the reboot lost 45132")
r, rows = listed_row(45132)
c.check(len(rows) == 1 and rows[0].get("confirmed") is False, "list: 45132 not confirmed", rows)
r = porthole("lan1", "close", "45132")
c.check(r.rc == 0 and not listed_row(45132)[1], "close after the reboot: exit 0, dropped", r)

# ---- an external port that is already ours is never taken over
r, j = porthole_json("lan1", "open", "46100", "--via", "pcp")
c.check(r.rc == 0 and j and j["external_port"] == 46100, "pcp 46100 -> 46100", r)
for extra in (["--strict-port"], []):
    r, j = porthole_json("lan1", "open", "46150", "--external-port", "46100", "--via", "upnp",
                         *extra)
    if extra:
        c.check(r.rc == 4 and "already porthole's mapping" in r.stderr,
                "--strict-port onto our own external port: exit 4", r)
    else:
        c.check(r.rc == 0 and j and j["external_port"] != 46100,
                "onto our own external port: another one chosen", r)
    c.check(ext_ports(46100) == {46100}, f"{extra}: 46100 still forwards to 46100",
            entries_for(LAN1, 46100))
r = porthole("lan1", "close", "46100")
c.check(r.rc == 0 and not ext_ports(46100), "close 46100: exit 0", r)
r = porthole("lan1", "close", "46150")
c.check(r.rc == 0 and not ext_ports(46150), "close 46150: exit 0", r)

cleanup()
shutil.rmtree(work, ignore_errors=True)
finish(c)
