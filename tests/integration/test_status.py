# SPDX-License-Identifier: MIT
"""`pycqueue status` for people: the block's lines, colour on a terminal
only, --json's keys (each documented in pycqueue(1)), exit 3 when nothing
runs and never 4, --watch under a terminal, and how the daemon was started
(autostart, by hand; socket activation is checked in test_cli.py)."""

import errno
import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from pycqtest import (PYCQUEUE, PYCQUEUED, PYTHON, clean_env, daemons_for_socket, describe, kill_pid,
                      run_client, wait_until, write, write_daemon_config)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LABELS = ("State", "Started", "PID", "Queue", "Workers", "Totals", "Throughput", "Cache", "Database",
          "Errors")


def block(text):
    """{label: value} of the block's "Label: value" lines (the first of each)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^ *([A-Z][A-Za-z]*): (.*)$", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


def compile_good_and_bad(d, tmp_path):
    good = write(tmp_path / "src" / "good.py", "X = 1\n")
    bad = write(tmp_path / "src" / "bad.py", "X = 1\n\ndef f(:\n    pass\n")
    assert d.pycq("compile", good).returncode == 0
    assert d.pycq("compile", bad).returncode == 1
    return good, bad


def run_in_pty(args, env, until, timeout=20, interrupt=False):
    """Runs pycqueue ARGS with a terminal as stdin, stdout and stderr. Reads
    until @until(output) holds (or the program exits); with @interrupt then
    sends SIGINT. Returns (exit status, output bytes)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        try:
            os.execve(PYCQUEUE, [PYCQUEUE] + args, env)
        finally:
            os._exit(127)
    buf = b""
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline and not until(buf):
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    data = os.read(fd, 65536)
                except OSError as e:  # EIO: the child closed the terminal
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    break
                buf += data
        assert until(buf), "the condition never held; output so far: %r" % buf
        if interrupt:
            os.kill(pid, signal.SIGINT)
        while True:
            r, _, _ = select.select([fd], [], [], 10)
            if not r:
                break
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            buf += data
        _, st = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(st)
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return status, buf


def tty_env(extra=None):
    env = clean_env({"TERM": "xterm"}, drop=("NO_COLOR",))
    env.update(extra or {})
    return env


# --- the block -------------------------------------------------------------------

def test_block_lines(daemon, tmp_path):
    _, bad = compile_good_and_bad(daemon, tmp_path)
    p = daemon.pycq("status")
    assert p.returncode == 0, describe(p)
    assert "\x1b" not in p.out, "escape sequences although stdout is no terminal: %r" % p.out
    lines = p.out.splitlines()
    assert re.match(r"^\u25cf pycqueued \S+ - ", lines[0]), lines[0]
    b = block(p.out)
    assert list(b) == list(LABELS), p.out  # all of them, in this order
    assert re.match(r"^running since .+; .+ ago$", b["State"]), b["State"]
    assert b["Started"].startswith("manual "), b["Started"]
    assert b["PID"] == str(daemon.pid)
    assert b["Queue"] == "0 queued, 0 in flight; 1 connection", b["Queue"]
    assert re.match(r"^/\S+ \(cpython 3\.\d+\.\d+\S*, cpython-3\d+\): \d+ workers?, 0 busy, 0 queued$",
                    b["Workers"]), b["Workers"]
    assert b["Totals"] == "2 requests; 1 compiled, 0 up to date, 0 coalesced, 1 failed", b["Totals"]
    assert re.match(r"^\d+\.\d files/s \(last 10 s\)$", b["Throughput"]), b["Throughput"]
    assert re.match(r"^[\d.]+% hit rate \(0 hits, 2 misses\); \d+ entries, \S+ of \S+ in /", b["Cache"]), \
        b["Cache"]
    db = os.path.join(daemon.state_dir, "provenance.db")
    assert re.match(r"^%s, \S+, \d+ rows: ok$" % re.escape(db), b["Database"]), b["Database"]
    assert b["Errors"] == "1 recent, newest first:", b["Errors"]
    i = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Errors:"))
    assert re.match(r"^ {12}\w{3} \d\d \d\d:\d\d:\d\d %s:3: SyntaxError: \S" % re.escape(bad), lines[i + 1]), \
        lines[i + 1]


def test_block_without_errors_or_pools(daemon):
    b = block(daemon.pycq("status").out)
    assert b["Errors"] == "none since start"
    assert b["Workers"].startswith("none"), b["Workers"]
    assert re.match(r"^\d+ requests?; 0 compiled, ", b["Totals"]), b["Totals"]


def test_colour_on_a_terminal_only(daemon):
    args = ["--socket=" + daemon.socket, "--no-autostart", "status"]
    has_pid = lambda buf: b"PID:" in buf and b"Errors:" in buf

    rc, out = run_in_pty(args, tty_env(), has_pid)
    assert rc == 0, out
    text = out.decode("utf-8", "replace")
    assert "\x1b[0;32mrunning\x1b[0m" in text, text  # the state, green
    plain = ANSI.sub("", text).replace("\r\n", "\n")
    assert block(plain)["PID"] == str(daemon.pid), plain

    for env, extra in ((tty_env({"NO_COLOR": "1"}), []), (tty_env(), ["--no-color"]),
                       (tty_env({"TERM": "dumb"}), [])):
        rc, out = run_in_pty(args + extra, env, has_pid)
        assert rc == 0, out
        assert b"\x1b" not in out, (extra, env.get("NO_COLOR"), out)


def test_degraded_is_loud(start_daemon, tmp_path):
    hold = r'''
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
c.execute("COMMIT")
'''
    d = start_daemon()
    src = write(tmp_path / "src" / "m.py", "X = 1\n")
    holder = subprocess.Popen([PYTHON, "-I", "-c", hold, os.path.join(d.state_dir, "provenance.db")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=clean_env())
    try:
        assert holder.stdout.readline() == b"locked\n"
        assert d.pycq("compile", src).returncode == 0
        assert wait_until(lambda: d.status()["database"]["degraded"], 15, 0.1), d.status()
        st = d.status()["database"]
        assert st["health"] == "degraded", st
        line = block(d.pycq("status").out)["Database"]
        assert ": DEGRADED: " + st["degraded_reason"] in line, line
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


# --- --json --------------------------------------------------------------------

def flat_keys(obj, prefix=""):
    """Dotted keys of @obj's leaves, array indices as N."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from flat_keys(v, prefix + k + ".")
    elif isinstance(obj, list):
        for v in obj:
            yield from flat_keys(v, prefix + "N.")
    else:
        yield prefix[:-1]


def documented_keys():
    """The keys listed in pycqueue(1)'s STATUS KEYS: each is a .TP tag."""
    page = os.path.join(os.environ.get("PYCQUEUE_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")),
                        "doc", "pycqueue.1")
    with open(page) as f:
        text = f.read()
    section = text.split(".SS Status keys", 1)[1].split("\n.S", 1)[0]
    return set(re.findall(r"^\.TP\n\.B (\S+)", section, re.M))


def test_json_keys(daemon, tmp_path):
    _, bad = compile_good_and_bad(daemon, tmp_path)
    p = daemon.pycq("status", "--json")
    assert p.returncode == 0, describe(p)
    st = json.loads(p.stdout)
    # today's keys keep their names; the new ones are there
    for key in ("pid", "version", "uptime_seconds", "state", "audit", "socket_activated", "queue_length",
                "in_flight", "connections", "workers", "totals", "throughput_files_per_second", "database",
                "cache", "recent_errors", "started_by"):
        assert key in st, "status --json lacks %r: %r" % (key, st)
    assert st["started_by"] == "manual" and st["socket_activated"] is False, st
    assert st["database"]["health"] == "ok", st["database"]
    assert st["recent_errors"][0]["source"] == bad, st["recent_errors"]

    documented = documented_keys()
    assert documented, "no key found in pycqueue(1)"
    missing = set(flat_keys(st)) - documented
    assert not missing, "keys of status --json not in pycqueue(1): %s" % sorted(missing)


# --- who may ask, and when nothing runs -----------------------------------------------

def test_not_running_exits_3(sockdir):
    path = os.path.join(sockdir, "nothing.sock")
    for args in (["status"], ["status", "--json"], ["status", "--watch"]):
        p = run_client(*args, socket_path=path)
        assert p.returncode == 3, describe(p)
        assert "not running" in p.err, describe(p)
        assert p.out == "", describe(p)
    assert not os.path.exists(path), "status started something"


def test_unprivileged_user_gets_status(daemon, tmp_path, sockdir, nobody_client):
    _, bad = compile_good_and_bad(daemon, tmp_path)
    p = run_client("status", socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    assert p.returncode == 0, describe(p)
    b = block(p.out)
    assert b["PID"] == str(daemon.pid), p.out
    assert b["Errors"].startswith("1 recent; their files are shown to root only"), b["Errors"]
    assert bad not in p.out and "bad.py" not in p.out, p.out
    p = run_client("status", "--json", socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    st = json.loads(p.stdout)
    assert st["recent_errors_hidden"] == 1 and "recent_errors" not in st, st

    # a socket nobody may not reach: unreachable (3), not "permission denied" (4)
    private = os.path.join(sockdir, "private")
    os.mkdir(private, 0o700)
    os.symlink(daemon.socket, os.path.join(private, "s"))
    p = run_client("status", socket_path=os.path.join(private, "s"), user="nobody", pycqueue=nobody_client)
    assert p.returncode == 3, describe(p)
    assert "permission denied" in p.err, describe(p)


@pytest.mark.parametrize("args", [["--interval=1"], ["--watch", "--interval=0"], ["--watch", "--interval=x"],
                                  ["extra"]])
def test_usage_errors(daemon, args):
    p = daemon.pycq("status", *args)
    assert p.returncode == 2, describe(p)


# --- --watch -----------------------------------------------------------------------

def test_watch_refreshes_in_place_until_sigint(daemon):
    args = ["--socket=" + daemon.socket, "--no-autostart", "status", "--watch", "--interval=0.1"]
    rc, out = run_in_pty(args, tty_env(), lambda buf: buf.count(b"\x1b[H\x1b[J") >= 3 and
                         buf.rstrip().endswith(b"since start"), interrupt=True)
    assert rc == 0, out
    assert out.startswith(b"\x1b[?25l"), out[:40]  # the cursor hidden while drawing
    assert out.rstrip().endswith(b"\x1b[?25h"), out[-40:]  # and shown again
    frames = out.split(b"\x1b[H\x1b[J")[1:]
    assert len(frames) >= 3
    for frame in frames[:3]:
        plain = ANSI.sub("", frame.decode("utf-8", "replace"))
        assert block(plain)["PID"] == str(daemon.pid), plain


def test_watch_json_lines_follow_a_restart(start_daemon):
    d = start_daemon()
    proc = subprocess.Popen([PYCQUEUE, "--socket=" + d.socket, "--no-autostart", "status", "--watch", "--json",
                             "--interval=0.1"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())
    try:
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
        assert first["pid"] == second["pid"] == d.pid
        d.stop()
        for _ in range(200):
            line = json.loads(proc.stdout.readline())
            if line.get("state") == "not running":
                break
        assert line == {"state": "not running"}, line
        d.start()
        for _ in range(200):
            line = json.loads(proc.stdout.readline())
            if "pid" in line:
                break
        assert line["pid"] == d.pid, line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- how the daemon was started ----------------------------------------------------------

def test_started_by_autostart(tmp_path, sockdir):
    sock = os.path.join(sockdir, "auto.sock")
    # The daemon the client starts gets our state dir and config through this
    # exec wrapper; the process is still pycqueued itself.
    wrapper = str(tmp_path / "pycqueued-wrapper")
    conf = str(tmp_path / "auto.conf")
    write_daemon_config(conf)
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec "%s" --state-dir="%s" --config="%s" "$@"\n'
                % (PYCQUEUED, str(tmp_path / "state-auto"), conf))
    os.chmod(wrapper, 0o755)
    src = write(tmp_path / "src" / "m.py", "X = 1\n")
    env = clean_env({"PYCQUEUE_DAEMON": wrapper})
    try:
        p = run_client("compile", src, socket_path=sock, autostart=True, env=env)
        assert p.returncode == 0, describe(p)
        p = run_client("status", "--json", socket_path=sock)
        assert p.returncode == 0, describe(p)
        st = json.loads(p.stdout)
        assert st["started_by"] == "autostart" and st["socket_activated"] is False, st
        assert block(run_client("status", socket_path=sock).out)["Started"].startswith("autostart ")
    finally:
        for pid in daemons_for_socket(sock):
            kill_pid(pid)
