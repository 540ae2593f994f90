# SPDX-License-Identifier: MIT
"""Guarantee 1 (one writer) seen from outside: many clients at once on one
tree, and many clients racing to autostart one daemon."""

import os
import re
import subprocess

from pycqtest import (CLIENT_TIMEOUT, PYCQUEUE, PYCQUEUED, assert_tree_compiled, clean_env,
                      daemons_for_socket, expected_pycs, kill_pid, write)
from pycqtest import write_daemon_config

SUMMARY_RE = re.compile(r"(\d+) compiled, (\d+) up to date, (\d+) coalesced, (\d+) failed")


def run_all(procs):
    """Waits for every Popen; returns [(returncode, stdout, stderr)]."""
    out = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append((p.returncode, o.decode(errors="replace"), e.decode(errors="replace")))
    return out


def summary(stdout):
    m = SUMMARY_RE.search(stdout)
    assert m, "no summary line in %r" % stdout
    return tuple(int(x) for x in m.groups())


def test_16_clients_one_tree(daemon, stdlib_tree):
    tree = stdlib_tree()
    n = len(expected_pycs(tree))

    results = run_all([daemon.pycq_popen("compile", tree) for _ in range(16)])
    for rc, out, err in results:
        assert rc == 0, "exit %s\n%s\n%s" % (rc, out, err)
    assert_tree_compiled(tree)

    # every target written exactly once, whoever asked first
    totals = daemon.status()["totals"]
    assert totals["compiled"] == n, totals
    assert totals["failed"] == 0, totals
    sums = [summary(out) for _, out, _ in results]
    for s in sums:
        assert sum(s) == n and s[3] == 0, "a client's summary does not cover the tree: %r" % (s,)
    assert sum(s[0] for s in sums) == n, "compiled counts over all clients: %r" % (sums,)

    # now 16 forced recompiles racing each other on the busy daemon
    results = run_all([daemon.pycq_popen("compile", "-f", tree) for _ in range(16)])
    for rc, out, err in results:
        assert rc == 0, "exit %s\n%s\n%s" % (rc, out, err)
    assert_tree_compiled(tree)
    totals = daemon.status()["totals"]
    assert totals["failed"] == 0, totals
    assert 2 * n <= totals["compiled"] <= 17 * n, totals


def test_autostart_race(tmp_path, sockdir):
    """8 clients without --no-autostart on a fresh socket: exactly one daemon."""
    sock = os.path.join(sockdir, "auto.sock")
    # The daemon the clients start gets our state dir and config through this
    # exec wrapper, so that the test stays out of /var/lib and /etc; the
    # process is still pycqueued itself.
    wrapper = str(tmp_path / "pycqueued-wrapper")
    conf = str(tmp_path / "auto.conf")
    write_daemon_config(conf)
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec "%s" --state-dir="%s" --config="%s" "$@"\n'
                % (PYCQUEUED, str(tmp_path / "state-auto"), conf))
    os.chmod(wrapper, 0o755)

    trees = []
    for i in range(8):
        t = str(tmp_path / ("tree%d" % i))
        for j in range(5):
            write(os.path.join(t, "pkg", "m%d.py" % j), "X = %d\nY = %d\n" % (i, j))
        trees.append(t)

    env = clean_env({"PYCQUEUE_DAEMON": wrapper})
    procs = [subprocess.Popen([PYCQUEUE, "--socket=" + sock, "compile", t], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for t in trees]
    try:
        results = run_all(procs)
        daemons = daemons_for_socket(sock)
        for rc, out, err in results:
            assert rc == 0, "exit %s\n%s\n%s" % (rc, out, err)
        for t in trees:
            assert_tree_compiled(t)
        assert len(daemons) == 1, "pycqueued processes for %s: %r" % (sock, daemons)
    finally:
        for pid in daemons_for_socket(sock):
            kill_pid(pid)


def test_other_mode_never_coalesces(daemon, stdlib_tree):
    """A checked-hash request that meets a timestamp job for the same target
    must not be handed that job's .pyc: it waits, then gets its own."""
    tree = stdlib_tree()
    n = len(expected_pycs(tree))

    a = daemon.pycq_popen("compile", tree)
    b = daemon.pycq_popen("compile", "--invalidation-mode=checked-hash", tree)
    (rc_a, out_a, err_a), (rc_b, out_b, err_b) = run_all([a, b])
    assert rc_a == 0, (out_a, err_a)
    assert rc_b == 0, (out_b, err_b)
    sa, sb = summary(out_a), summary(out_b)
    assert sa[2] == 0 and sb[2] == 0, "a request coalesced onto a job of the other mode: %r %r" % (sa, sb)
    assert sum(sa) == n and sum(sb) == n, (sa, sb)
    assert_tree_compiled(tree)
    # both wrote every target of theirs: the daemon compiled each twice
    assert daemon.status()["totals"]["compiled"] == 2 * n
