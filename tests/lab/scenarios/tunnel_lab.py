#!/usr/bin/python3
"""Helpers for the `porthole expose` / `porthole connect` scenarios (docs/tunnel.md).

`expose` runs on one lab host (lan1, behind r1) and `connect` on another (lan2, behind
r2), each with its own state directory and so its own peer ID, as two real machines
would. Both are long-running: a Tunnel object collects their JSON event lines as they
arrive, waits for one with a bound that fails clearly (the event, the last lines and
stderr in the message), and stops the process it started by PID with SIGTERM.

Every run names lab servers only: the rendezvous is `porthole serve` in inet (`lab.sh
serve-start`) and the extra STUN server is the lab's stund.

Services behind `expose` run inside lan1 on 127.0.0.1 (expose's default --to): a static
HTTP server (`python3 -m http.server`) over a directory of random files, labkit's
answering listeners for TCP and UDP. The client programs run inside lan2 against
connect's local ports. Files are compared by SHA-256.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from porthole_lab import BIN, _state_root, state_dir  # first: labkit's path
from punch_lab import RENDEZVOUS, STUN, error_of, peer_id  # noqa: F401 (re-exported)
import labkit  # noqa: E402

LAN1, LAN2 = "192.168.1.100", "192.168.2.100"
PATH_KINDS = ("host", "server-reflexive", "peer-reflexive", "mapped", "relayed")
# Exit statuses (README "Exit status"; docs/tunnel.md).
EXIT_USAGE, EXIT_NO_GATEWAY, EXIT_NO_PATH, EXIT_REFUSED = 2, 3, 7, 9
# The modes punch_matrix.py crosses, and the three pairings a direct punch cannot serve.
MODES = ("eim", "symmetric", "fullcone", "restricted")
BLOCKED = {("eim", "symmetric"), ("symmetric", "eim"), ("symmetric", "symmetric")}
DIRECT_PAIRINGS = [(a, b) for a in MODES for b in MODES if (a, b) not in BLOCKED]


def other_state(name: str) -> Path:
    """A state directory (so a peer ID) that belongs to no lab host: a third machine."""
    return _state_root / name


def id_of(ns: str, state: Optional[Path] = None) -> Optional[str]:
    """`porthole id --json` for host ns, or for an explicit state directory."""
    if state is None:
        return peer_id(ns)
    r = labkit.run(ns, [BIN, "id", "--json", "--state-dir", str(state)], timeout=20)
    try:
        return json.loads(r.stdout).get("id") if r.ok else None
    except ValueError:
        return None


class EventTimeout(AssertionError):
    pass


class Tunnel:
    """`porthole SUBCOMMAND ARGS --json --state-dir DIR` running in namespace ns.
    .events: every JSON line so far, each with "t" (monotonic arrival time); stdout lines
    that are not JSON are kept as {"event": "unparsable", "line": ...}."""

    def __init__(self, ns: str, subcommand: str, *args: str, state=None, json_out=True,
                 env=None):
        argv = [labkit.IP, "netns", "exec", labkit.ns_name(ns), BIN, subcommand, *args]
        if json_out:
            argv.append("--json")
        argv += ["--state-dir", str(state or state_dir(ns))]
        self.ns, self.subcommand, self.argv = ns, subcommand, argv
        self.events, self.stderr, self.stdout = [], "", ""
        self.lock = threading.Lock()
        self.started = time.monotonic()
        # `ip netns exec` execs porthole itself: self.proc.pid is porthole's PID.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self._threads = [threading.Thread(target=self._pump, daemon=True),
                         threading.Thread(target=self._pump_err, daemon=True)]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self):
        for line in self.proc.stdout:
            with self.lock:
                self.stdout += line
            try:
                e = json.loads(line)
                if not isinstance(e, dict):
                    raise ValueError
            except ValueError:
                e = {"event": "unparsable", "line": line.rstrip("\n")}
            e["t"] = time.monotonic()
            with self.lock:
                self.events.append(e)

    def _pump_err(self):
        for line in self.proc.stderr:
            with self.lock:
                self.stderr += line

    def of(self, kind: str, since: float = 0.0, pred=None) -> list:
        with self.lock:
            return [e for e in self.events if e.get("event") == kind and e["t"] >= since
                    and (pred is None or pred(e))]

    def event(self, kind: str, timeout: float, since: float = 0.0, pred=None) -> dict:
        """The first `kind` event (after `since`, matching pred); waits at most `timeout`
        seconds (a bound against hangs, never a timing check). Raises EventTimeout with
        what the process said when it does not come, or the process exited first."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.of(kind, since, pred)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                for t in self._threads:   # the last lines, then give up
                    t.join(2)
                found = self.of(kind, since, pred)
                if found:
                    return found[0]
                raise EventTimeout(f"{self.ns} {self.subcommand} exited "
                                   f"(rc={self.proc.returncode}) without a {kind!r} event\n"
                                   f"{self.summary()}")
            if time.monotonic() >= deadline:
                raise EventTimeout(f"{self.ns} {self.subcommand}: no {kind!r} event within "
                                   f"{timeout:g} s\n{self.summary()}")
            time.sleep(0.05)

    def has(self, kind: str, timeout: float, **kw) -> Optional[dict]:
        """Like event(), but None instead of raising (for a Checker)."""
        try:
            return self.event(kind, timeout, **kw)
        except EventTimeout as e:
            print(f"     {e}".replace("\n", "\n     "), flush=True)
            return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> Optional[int]:
        """The exit status once it exits by itself; None (and killed) after `timeout` s."""
        try:
            rc = self.proc.wait(max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            rc = None
        for t in self._threads:
            t.join(5)
        return rc

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        """SIGTERM to the PID we started; the exit status, None if it had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def objects(self) -> list:
        """Every JSON object on stdout: the event lines and a pretty-printed error object
        (which spans lines) alike."""
        with self.lock:
            text = self.stdout
        found, decoder, pos = [], json.JSONDecoder(), text.find("{")
        while pos >= 0:
            try:
                obj, end = decoder.raw_decode(text, pos)
                found.append(obj)
                pos = text.find("{", end)
            except ValueError:
                pos = text.find("{", pos + 1)
        return [o for o in found if isinstance(o, dict)]

    def says(self, text: str) -> bool:
        """`text` (any case) on stderr or in a JSON error object's message or hint."""
        with self.lock:
            err = self.stderr
        where = [err] + [f"{error_of(o).get('message', '')} {o.get('hint', '')}"
                         for o in self.objects()]
        return text.lower() in " ".join(where).lower()

    def error_name(self) -> str:
        """The name of the JSON error object it printed, if any ("peer-refused", ...)."""
        names = [error_of(o).get("name", "") for o in self.objects()]
        return next((n for n in names if n), "")

    def summary(self) -> str:
        with self.lock:
            lines = [json.dumps({k: v for k, v in e.items() if k != "t"})
                     for e in self.events[-20:] if e.get("event") != "unparsable"]
            if any(e.get("event") == "unparsable" for e in self.events):
                lines.append("--stdout--\n" + self.stdout[-2000:])
            err = self.stderr[-3000:]
        return f"argv: {' '.join(self.argv[4:])}\n" + "\n".join(lines) + f"\n--stderr--\n{err}"

    def rss_peak_kib(self) -> Optional[int]:
        return proc_status(self.pid, "VmHWM")

    def cpu_seconds(self) -> Optional[float]:
        return proc_cpu_seconds(self.pid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def proc_status(pid: int, field: str) -> Optional[int]:
    """A kB field of /proc/PID/status (VmHWM: peak resident set)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_seconds(pid: int) -> Optional[float]:
    """utime + stime of /proc/PID/stat, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def expose(ns: str, ports, allow=(), *args: str, rendezvous: str = RENDEZVOUS,
           stun: Optional[str] = STUN, state=None, **kw) -> Tunnel:
    """`porthole expose PORTS --rendezvous R --stun S --allow ID... ARGS` in ns."""
    argv = [*ports]
    if rendezvous:
        argv += ["--rendezvous", rendezvous]
    if stun:
        argv += ["--stun", stun]
    for peer in allow:
        argv += ["--allow", peer]
    return Tunnel(ns, "expose", *argv, *args, state=state, **kw)


def connect(ns: str, peer: str, forwards, *args: str, rendezvous: str = RENDEZVOUS,
            stun: Optional[str] = STUN, state=None, **kw) -> Tunnel:
    """`porthole connect PEER --rendezvous R --stun S -L SPEC... ARGS` in ns."""
    argv = [peer]
    if rendezvous:
        argv += ["--rendezvous", rendezvous]
    if stun:
        argv += ["--stun", stun]
    for spec in forwards:
        argv += ["-L", spec]
    return Tunnel(ns, "connect", *argv, *args, state=state, **kw)


def started(exposer: Tunnel, timeout: float = 20.0) -> dict:
    """expose's "ready" event: registered at the rendezvous (raises when it fails)."""
    return exposer.event("ready", timeout)


def connected(connector: Tunnel, forwards: int = 1, timeout: float = 30.0) -> dict:
    """connect's "connected" event, then one "listening" event per -L (raises)."""
    ev = connector.event("connected", timeout)
    if not labkit.wait_until(lambda: len(connector.of("listening")) >= forwards, timeout=10):
        raise EventTimeout(f"{connector.ns} connect: {len(connector.of('listening'))} of "
                           f"{forwards} 'listening' events\n{connector.summary()}")
    return ev


def stop_all(*tunnels) -> dict:
    """SIGTERM to each (connect first, as a user would); {ns subcommand: exit status}."""
    return {f"{t.ns} {t.subcommand}": t.stop() for t in tunnels if t is not None}


def stopped(c: labkit.Checker, *tunnels, what: str = "SIGTERM: both exit 0") -> dict:
    """stop_all(), checked: every one exited 0."""
    rcs = stop_all(*tunnels)
    c.check(all(rc == 0 for rc in rcs.values()), what, rcs)
    return rcs


def ours_on_r1() -> list:
    """r1's live redirects (its table, read on the router) to lan1, any port."""
    return [m for m in labkit.upnp_table("r1") if m.int_ip == LAN1]


# ------------------------------------------------------------------ services in lan1

class Service:
    """A process in a lab namespace that we started (and stop by its PID)."""

    def __init__(self, ns: str, argv, ready_port: Optional[int] = None, ip: str = "127.0.0.1",
                 cwd: Optional[str] = None):
        self.ns = ns
        # stderr to a file: a chatty service never blocks on a full pipe.
        self.log = Path(_state_root) / f"service-{ns}-{time.monotonic_ns()}.log"
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen([labkit.IP, "netns", "exec", labkit.ns_name(ns),
                                          *argv], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err, cwd=cwd)
        if ready_port is not None and not labkit.wait_until(
                lambda: self.proc.poll() is not None or tcp_open(ns, ip, ready_port),
                timeout=10, interval=0.1) or self.proc.poll() is not None:
            err = self.stop()
            raise RuntimeError(f"{argv[:3]} in {ns} did not start: {err}")

    def stop(self) -> str:
        terminate(self.proc)
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def terminate(p: subprocess.Popen) -> None:
    """SIGTERM to a process we started, SIGKILL when it has not gone after 5 s."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


_TCP_OPEN = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()
except OSError:
    sys.exit(1)
"""


def tcp_open(ns: str, ip: str, port: int) -> bool:
    """Something accepts TCP on ip:port inside ns."""
    return labkit.run(ns, [labkit.PYTHON, "-c", _TCP_OPEN, ip, str(port)], timeout=5).ok


# What `python3 -m http.server --bind 127.0.0.1 PORT --directory DIR` runs (a thread
# per connection), with a listen backlog for 100 connections at once (its default is 5).
_HTTP = r"""
import functools, http.server, sys
http.server.ThreadingHTTPServer.request_queue_size = 128
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""


class FileServer(Service):
    """Python's static HTTP server on 127.0.0.1:port in ns, serving a fresh directory of
    files with random content, by name and size (.files: name -> SHA-256). `script`: the
    server's program (argv: port, directory), _HTTP unless a scenario needs more."""

    def __init__(self, ns: str, port: int, files: dict, script: str = _HTTP):
        self.root = Path(_state_root) / f"www-{ns}-{port}"
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.files = {name: random_file(self.root / name, size) for name, size in files.items()}
        self.port = port
        super().__init__(ns, [labkit.PYTHON, "-c", script, str(port), str(self.root)],
                         ready_port=port)

    def stop(self) -> str:
        err = super().stop()
        shutil.rmtree(self.root, ignore_errors=True)
        return err


def random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to path; returns their SHA-256 (hex)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def curl(ns: str, port: int, name: str, timeout: float = 60.0, ip: str = "127.0.0.1"):
    """`curl` http://ip:port/name inside ns into a file; (labkit.Result, SHA-256 or None).
    --max-time bounds a stalled transfer; the harness timeout bounds curl itself."""
    out = Path(_state_root) / f"curl-{ns}-{port}-{os.getpid()}-{time.monotonic_ns()}"
    r = labkit.run(ns, ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*",
                        "--max-time", str(int(timeout)), "-o", str(out),
                        f"http://{ip}:{port}/{name}"], timeout=timeout + 10)
    digest = sha256_of(out) if r.ok and out.exists() else None
    out.unlink(missing_ok=True)
    return r, digest


# Runs in lan2: N TCP connections to 127.0.0.1:PORT, all opened first (a barrier), then
# each fetches its own file over HTTP/1.0 and checks its SHA-256. Prints one JSON line:
# {"ok": n, "bad": [...], "errors": [...]}.
_MANY = r"""
import hashlib, json, socket, sys, threading
port, want = int(sys.argv[1]), json.loads(sys.argv[2])
names = sorted(want)
barrier = threading.Barrier(len(names), timeout=60)
ok, bad, errors, lock = [], [], [], threading.Lock()
def one(name):
    try:
        s = socket.create_connection(("127.0.0.1", port), 30)
        s.settimeout(60)
        barrier.wait()
        s.sendall(f"GET /{name} HTTP/1.0\r\nHost: lab\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        good = head.startswith(b"HTTP/1.0 200") and hashlib.sha256(body).hexdigest() == want[name]
        with lock:
            (ok if good else bad).append(name if good else f"{name}: {head[:40]!r} {len(body)} bytes")
    except Exception as e:
        with lock:
            errors.append(f"{name}: {e!r}")
        try:
            barrier.abort()
        except Exception:
            pass
threads = [threading.Thread(target=one, args=(n,)) for n in names]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"ok": len(ok), "bad": bad, "errors": errors[:10]}))
"""


def fetch_many(ns: str, port: int, files: dict, timeout: float = 120.0) -> dict:
    """All of `files` (name -> SHA-256) at once through 127.0.0.1:port inside ns."""
    r = labkit.run(ns, [labkit.PYTHON, "-c", _MANY, str(port), json.dumps(files)],
                   timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": 0, "bad": [], "errors": [str(r)]}


# Runs in lan2: two UDP sockets (two local sources) send numbered nonces to
# 127.0.0.1:PORT, a labkit UDP listener behind the tunnel answers "TOKEN PEER NONCE".
# Prints {"a": {...}, "b": {...}}: per socket the nonces answered, the answers that
# carried the other socket's nonce, and the sources the service saw.
_TWO_SOURCES = r"""
import json, socket, sys, time
port, count, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = {n: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for n in ("a", "b")}
for s in socks.values():
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
got = {n: {"answered": set(), "foreign": 0, "seen_as": set(), "source": s.getsockname()[1]}
       for n, s in socks.items()}
deadline = time.monotonic() + limit
while time.monotonic() < deadline and not all(len(g["answered"]) == count for g in got.values()):
    for n, s in socks.items():
        for i in range(count):
            if i not in got[n]["answered"]:
                try:
                    s.send(f"{n}-{i}\n".encode())
                except OSError:
                    pass
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        for n, s in socks.items():
            try:
                data = s.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            words = data.decode(errors="replace").split()
            if len(words) != 3:
                continue
            who, _, i = words[2].partition("-")
            if who != n:
                got[n]["foreign"] += 1
                continue
            got[n]["answered"].add(int(i))
            got[n]["seen_as"].add(words[1])
        time.sleep(0.005)
print(json.dumps({n: {"answered": len(g["answered"]), "foreign": g["foreign"],
                      "seen_as": sorted(g["seen_as"]), "source": g["source"]}
                  for n, g in got.items()}))
"""


def udp_two_sources(ns: str, port: int, count: int = 20, limit: float = 15.0) -> dict:
    r = labkit.run(ns, [labkit.PYTHON, "-c", _TWO_SOURCES, str(port), str(count), str(limit)],
                   timeout=limit + 10)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": str(r)}


def free_port_in(ns: str) -> int:
    """A TCP port nothing listens on in ns (asked from the kernel there)."""
    r = labkit.run(ns, [labkit.PYTHON, "-c",
                        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
                        "print(s.getsockname()[1])"])
    return int(r.stdout.strip())


def forward_rule(router: str, comment: str, rule: Optional[str]) -> bool:
    """With a rule: insert it at the top of the router's forward chain, named by
    comment. Without: delete every forward rule so named (true when none is left)."""
    if rule is not None:
        return labkit.run(router, ["nft", f'insert rule inet filter forward {rule} '
                                          f'comment "{comment}"']).ok
    listing = labkit.run(router, ["nft", "-a", "list", "chain", "inet", "filter", "forward"])
    ok = listing.ok
    for line in listing.stdout.splitlines():
        if f'"{comment}"' in line and "# handle " in line:
            handle = line.rsplit("# handle ", 1)[1].strip()
            ok = labkit.run(router, ["nft", "delete", "rule", "inet", "filter", "forward",
                                     "handle", handle]).ok and ok
    return ok


def lab_ready(c: labkit.Checker, routers=("r1", "r2"), modes=None, miniupnpd=None) -> None:
    """Set the routers up for a tunnel scenario and start the rendezvous:
    miniupnpd = {router: True/False} (running or stopped), modes = {router: nat mode}."""
    for r, run in (miniupnpd or {}).items():
        res = labkit.lab("router-start" if run else "router-stop", r)
        c.check(res.ok, f"lab.sh router-{'start' if run else 'stop'} {r}", res)
    for r, mode in (modes or {}).items():
        res = labkit.lab("nat-mode", r, mode)
        c.check(res.ok, f"lab.sh nat-mode {r} {mode}", res)
    res = labkit.lab("serve-start")
    c.check(res.ok, "lab.sh serve-start (the rendezvous)", res)


def lab_restore(c: labkit.Checker, *services) -> None:
    """Stop `services` (those that were started: None is skipped), then put back what
    lab.sh up left: both routers in eim mode with miniupnpd running; no serve."""
    for s in services:
        if s is not None:
            s.stop()
    for r in ("r1", "r2"):
        res = labkit.lab("nat-mode", r, "eim")
        c.check(res.ok, f"{r} back in eim mode", res)
        res = labkit.lab("router-start", r)
        c.check(res.ok, f"lab.sh router-start {r}", res)
    labkit.lab("serve-stop")

