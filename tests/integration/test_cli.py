# SPDX-License-Identifier: MIT
"""The command-line contract: status and its JSON, exit codes, socket
selection, and socket activation."""

import importlib.util
import json
import os
import select
import shutil
import socket
import subprocess
import time

import pytest

from pycqtest import (PYCQUEUED, PYTHON, assert_tree_compiled, clean_env, describe, fss, pycache_files,
                      run_client, terminate, wait_until, write)
from pycqtest import write_daemon_config


def small_tree(root, n=5):
    for i in range(n):
        write(os.path.join(root, "pkg", "m%d.py" % i), "X = %d\n" % i)
    return str(root)


# --- status ---------------------------------------------------------------------

def test_status_no_daemon_missing_socket(sockdir):
    p = run_client("status", socket_path=os.path.join(sockdir, "nothing.sock"))
    assert p.returncode == 3, describe(p)
    assert p.err.strip(), "no message on stderr"
    assert not os.path.exists(os.path.join(sockdir, "nothing.sock")), "status started something"


def test_status_no_daemon_dead_socket(sockdir):
    path = os.path.join(sockdir, "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays; connect() now gets ECONNREFUSED
    p = run_client("status", socket_path=path)
    assert p.returncode == 3, describe(p)
    p = run_client("status", "--json", socket_path=path)
    assert p.returncode == 3, describe(p)


def test_compile_no_daemon_exits_3(sockdir, tmp_path):
    tree = small_tree(tmp_path / "tree")
    p = run_client("compile", tree, socket_path=os.path.join(sockdir, "nothing.sock"))
    assert p.returncode == 3, describe(p)
    assert pycache_files(tree) == set()


def test_status_human(daemon):
    p = daemon.pycq("status")
    assert p.returncode == 0, describe(p)
    fields = dict(line.strip().split(": ", 1) for line in p.out.splitlines() if ": " in line)
    assert fields.get("PID", "").strip() == str(daemon.pid), describe(p)


def _magic_ok(value):
    magic = importlib.util.MAGIC_NUMBER
    v = str(value).lower()
    v = v[2:] if v.startswith("0x") else v
    return v in (magic.hex(), "%04x" % int.from_bytes(magic[:2], "little"))


@pytest.mark.parametrize("how", ["verb-option", "global-option"])
def test_status_json(daemon, tmp_path, how):
    good = write(tmp_path / "src" / "good.py", "X = 1\n")
    bad = write(tmp_path / "src" / "bad.py", "X = 1\n\ndef f(:\n    pass\n")
    assert daemon.pycq("compile", good).returncode == 0
    assert daemon.pycq("compile", bad).returncode == 1

    if how == "verb-option":
        p = daemon.pycq("status", "--json")
    else:
        p = daemon.pycq("status", global_args=["--json"])
    assert p.returncode == 0, describe(p)
    st = json.loads(p.stdout)

    for key in ("pid", "version", "uptime_seconds", "state", "queue_length", "in_flight", "connections",
                "workers", "totals", "throughput_files_per_second", "database", "recent_errors"):
        assert key in st, "status --json lacks %r: %r" % (key, st)
    assert st["pid"] == daemon.pid
    assert isinstance(st["version"], str) and st["version"]
    assert st["state"] == "running"
    for key in ("uptime_seconds", "throughput_files_per_second"):
        assert isinstance(st[key], (int, float)) and st[key] >= 0, (key, st[key])
    for key in ("queue_length", "in_flight", "connections"):
        assert isinstance(st[key], int) and st[key] >= 0, (key, st[key])

    assert isinstance(st["workers"], list) and st["workers"], st["workers"]
    for w in st["workers"]:
        for key in ("interpreter", "implementation", "version", "cache_tag", "magic", "count", "busy"):
            assert key in w, "worker entry lacks %r: %r" % (key, w)
    cpy = [w for w in st["workers"] if w["cache_tag"] == "cpython-311"]
    assert cpy, st["workers"]
    assert os.path.realpath(cpy[0]["interpreter"]) == os.path.realpath(PYTHON)
    assert cpy[0]["implementation"].lower() == "cpython"
    assert _magic_ok(cpy[0]["magic"]), cpy[0]["magic"]
    assert cpy[0]["count"] >= 1 and 0 <= cpy[0]["busy"] <= cpy[0]["count"]

    totals = st["totals"]
    for key in ("requests", "compiled", "up_to_date", "coalesced", "failed", "worker_restarts"):
        assert isinstance(totals.get(key), int), "totals lacks %r: %r" % (key, totals)
    assert totals["compiled"] == 1 and totals["failed"] == 1, totals
    assert totals["requests"] >= 2, totals

    db = st["database"]
    assert os.path.realpath(os.path.dirname(db["path"])) == os.path.realpath(daemon.state_dir), db
    assert isinstance(db["size_bytes"], int) and db["size_bytes"] >= 0, db

    errs = [e for e in st["recent_errors"] if e.get("source") == bad]
    assert errs, st["recent_errors"]
    assert errs[0]["type"] == "SyntaxError" and errs[0]["line"] == 3, errs[0]
    assert isinstance(errs[0]["message"], str) and errs[0]["message"]


def test_socket_from_environment(daemon):
    env = clean_env({"PYCQUEUE_SOCKET": daemon.socket})
    p = run_client("status", env=env)
    assert p.returncode == 0, describe(p)
    assert str(daemon.pid) in p.out


# --- usage errors -----------------------------------------------------------------

USAGE = {
    "unknown-global-option": ["--bogus-option", "status"],
    "unknown-compile-option": ["compile", "--bogus", "TREE"],
    "opt-level-3": ["compile", "-O", "3", "TREE"],
    "bad-invalidation-mode": ["compile", "--invalidation-mode=bogus", "TREE"],
    "unknown-verb": ["frobnicate", "TREE"],
}


@pytest.mark.parametrize("case", sorted(USAGE))
def test_usage_error_exits_2(daemon, tmp_path, case):
    tree = small_tree(tmp_path / "tree")
    args = [tree if a == "TREE" else a for a in USAGE[case]]
    p = daemon.pycq(*args)
    assert p.returncode == 2, describe(p)
    assert p.err.strip(), "no message on stderr"
    assert pycache_files(tree) == set()


# --- socket activation ----------------------------------------------------------------

def test_socket_activation(tmp_path, sockdir):
    if not shutil.which("systemd-socket-activate", path="/usr/bin:/bin"):
        pytest.skip("systemd-socket-activate missing")
    sock = os.path.join(sockdir, "act.sock")
    unused = os.path.join(sockdir, "unused.sock")
    notify_path = os.path.join(sockdir, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    conf = str(tmp_path / "act.conf")
    write_daemon_config(conf)
    log_path = str(tmp_path / "act.log")
    tree = small_tree(tmp_path / "tree")

    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["systemd-socket-activate", "-l", sock, "-E", "NOTIFY_SOCKET=" + notify_path,
             PYCQUEUED, "--socket=" + unused, "--state-dir=" + str(tmp_path / "state"), "--config=" + conf],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env(), cwd="/")

    def logtext():
        with open(log_path, "rb") as f:
            return f.read().decode(errors="replace")

    try:
        assert wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, 10) and \
            proc.poll() is None, logtext()
        p = run_client("compile", tree, socket_path=sock)
        assert p.returncode == 0, describe(p) + "\n--- log\n" + logtext()
        assert_tree_compiled(tree)

        p = run_client("status", "--json", socket_path=sock)
        assert p.returncode == 0, describe(p)
        st = json.loads(p.stdout)
        assert st["pid"] == proc.pid  # systemd-socket-activate exec'd the daemon
        assert st["started_by"] == "socket" and st["socket_activated"] is True, st
        p = run_client("status", socket_path=sock)
        assert "\n   Started: socket (" in p.out, describe(p)
        assert not os.path.exists(unused), "--socket was used although systemd passed a socket"

        messages = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(b"READY=1" in m.split(b"\n") for m in messages):
            r, _, _ = select.select([notify], [], [], 0.2)
            if r:
                messages.append(notify.recv(65536))
        assert any(b"READY=1" in m.split(b"\n") for m in messages), \
            "no READY=1 on NOTIFY_SOCKET (got %r)\n%s" % (messages, logtext())
    finally:
        rc = terminate(proc)
        notify.close()
    assert rc == 0, "pycqueued exited with %s on SIGTERM\n%s" % (rc, logtext())
