#!/usr/bin/env python3
"""`porthole serve --json` on loopback: its log is JSON lines on stdout, one object per
event with the text log's content; every line parses. A STUN Binding request (RFC 8489
s6.1) is answered and, with -v, logged; SIGTERM ends it with a "stopped" line.
    serve_json.py PORTHOLE"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

porthole = sys.argv[1]
env = dict(os.environ, PORTHOLE_SYSTEM_CONFIG="", XDG_CONFIG_HOME="/nonexistent/porthole-serve-json")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
         socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        for _ in range(50):
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                u.close()
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raise SystemExit("no free port")


def fail(msg: str) -> None:
    print("FAIL:", msg)
    sys.exit(1)


port = free_port()
proc = subprocess.Popen([porthole, "serve", "--listen", f"127.0.0.1:{port}", "--json", "-v"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
try:
    first = proc.stdout.readline()  # the start line: the server is up
    if not first:
        fail(f"serve exited: {proc.wait()} {proc.stderr.read().decode()}")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    tid = os.urandom(12)
    s.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, ("127.0.0.1", port))
    answer, _ = s.recvfrom(2048)
    if answer[:2] != b"\x01\x01" or answer[8:20] != tid:
        fail("no Binding success response")
finally:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
lines = [first.decode()] + out.decode().splitlines(keepends=True)
if proc.returncode != 0:
    fail(f"exit {proc.returncode}")
if err.strip():
    fail(f"log lines on stderr with --json: {err.decode()!r}")
events = []
for n, line in enumerate(lines, 1):
    if not line.endswith("\n"):
        fail(f"line {n} is not a whole line: {line!r}")
    try:
        obj = json.loads(line)
    except ValueError as e:
        fail(f"line {n} is not JSON ({e}): {line!r}")
    if set(obj) != {"time", "level", "message"}:
        fail(f"line {n} keys: {sorted(obj)}")
    if obj["level"] not in ("debug", "info", "warning"):
        fail(f"line {n} level {obj['level']}")
    time.strptime(obj["time"], "%Y-%m-%dT%H:%M:%SZ")
    events.append(obj)
print(f"{len(events)} JSON lines")
for e in events:
    print(" ", e["level"], e["message"])
if not any(f"127.0.0.1:{port}" in e["message"] for e in events[:1]):
    fail("the first line does not say where it serves")
if not any(e["level"] == "debug" and "127.0.0.1" in e["message"] for e in events[1:-1]):
    fail("-v logged no request")
if events[-1]["message"] != "stopped":
    fail("the last line is not 'stopped'")
print("ok")
