# SPDX-License-Identifier: MIT
"""Guarantees 2 and 4: a daemon killed mid-batch leaves only complete .pyc
files and no temporary file; SIGTERM drains; a killed worker's file is still
compiled; --idle-exit exits cleanly."""

import os
import signal
import time

from pycqtest import (CLIENT_TIMEOUT, assert_tree_compiled, describe, fsb, non_cache_files, validate,
                      wait_until, write)

ALL_OPTS = ("-O", "0", "-O", "1", "-O", "2")


def count_new_pycs(root, since_ns):
    """.pyc files under @root written at or after @since_ns."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(fsb(root)):
        if os.path.basename(dirpath) != b"__pycache__":
            continue
        for f in filenames:
            try:
                if f.endswith(b".pyc") and os.lstat(os.path.join(dirpath, f)).st_mtime_ns >= since_ns:
                    n += 1
            except FileNotFoundError:
                pass
    return n


def start_compile(d, tree, *args):
    since = time.time_ns() - 10_000_000  # file times come from a coarser clock
    return d.pycq_popen("compile", *args, *ALL_OPTS, tree), since


def finish(client):
    out, err = client.communicate(timeout=CLIENT_TIMEOUT)
    return client.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:].split()[0] != b"Z"


# (pycs written before the kill, extra delay, -f, empty the caches first)
ROUNDS = [(1, 0.0, False, False), (40, 0.0, True, False), (150, 0.05, True, True),
          (400, 0.0, True, False), (800, 0.2, True, False)]


def test_sigkill_mid_batch(start_daemon, stdlib_tree):
    tree = stdlib_tree()
    before = non_cache_files(tree)
    d = start_daemon(workers=2)
    killed_mid_batch = 0
    workers_seen = set()
    for i, (threshold, delay, force, empty) in enumerate(ROUNDS):
        if empty:
            for dirpath, dirnames, _ in os.walk(tree):
                if "__pycache__" in dirnames:
                    for f in os.listdir(os.path.join(dirpath, "__pycache__")):
                        os.unlink(os.path.join(dirpath, "__pycache__", f))
                    dirnames.remove("__pycache__")
        if i:
            d.start()
        client, since = start_compile(d, tree, *(["-f"] if force else []))
        wait_until(lambda: client.poll() is not None or count_new_pycs(tree, since) >= threshold, 120)
        time.sleep(delay)
        if client.poll() is None:
            killed_mid_batch += 1
        workers_seen.update(d.worker_pids())
        d.kill()
        rc, out, err = finish(client)  # the client notices the dead daemon and exits

        v = validate(tree)
        assert not v.bad, "round %d: invalid .pyc after SIGKILL: %r" % (i, v.bad)
        assert not v.leftover, "round %d: temporary files left after SIGKILL: %r" % (i, v.leftover)
        assert not v.orphan, v.orphan
        assert non_cache_files(tree) == before, "round %d: files appeared outside __pycache__" % i

    assert killed_mid_batch >= 3, "test premise: only %d rounds were killed mid-batch" % killed_mid_batch

    d.start()
    p = d.pycq("compile", *ALL_OPTS, tree)
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree, opts=(0, 1, 2))
    assert non_cache_files(tree) == before

    # workers of the killed daemons exit once their pipes close
    stale = wait_until(lambda: not [w for w in workers_seen if alive(w)], 15)
    left = [w for w in workers_seen if alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert stale, "workers of a SIGKILLed daemon still running: %r" % left


def test_sigterm_drains(start_daemon, stdlib_tree):
    tree = stdlib_tree()
    d = start_daemon(workers=2)
    client, since = start_compile(d, tree)
    wait_until(lambda: client.poll() is not None or count_new_pycs(tree, since) >= 50, 120)
    assert client.poll() is None, "test premise: the compile finished before SIGTERM"
    rc = d.stop(timeout=CLIENT_TIMEOUT)
    assert rc == 0, "pycqueued exited with %s on SIGTERM" % rc
    finish(client)
    v = validate(tree)
    v.assert_clean()
    assert v.valid, "nothing was compiled before the drain"


def test_killed_worker_file_still_compiled(start_daemon, stdlib_tree):
    tree = stdlib_tree()
    d = start_daemon(workers=2)
    client, since = start_compile(d, tree)
    wait_until(lambda: (client.poll() is not None or count_new_pycs(tree, since) >= 20)
                         and (d.worker_pids() or client.poll() is not None), 120)
    assert client.poll() is None, "test premise: the compile finished before a worker was killed"
    pids = d.worker_pids()
    assert pids, "no worker process found under pycqueued %d" % d.pid
    os.kill(pids[0], signal.SIGKILL)

    rc, out, err = finish(client)
    assert rc == 0, "exit %s\n%s\n%s" % (rc, out, err)
    assert_tree_compiled(tree, opts=(0, 1, 2))
    assert d.running()
    # and the daemon still has workers that compile
    p = d.pycq("compile", "-f", os.path.join(tree, "os.py"))
    assert p.returncode == 0, describe(p)


def test_idle_exit(start_daemon, tmp_path):
    d = start_daemon(idle_exit=1)
    src = write(tmp_path / "src" / "m.py", "x = 1\n")
    p = d.pycq("compile", src)
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(str(tmp_path / "src"))
    d.expected_exit = True
    rc = d.proc.wait(timeout=60)
    assert rc == 0, "pycqueued --idle-exit=1 exited with %s" % rc
    p = d.pycq("status")
    assert p.returncode == 3, describe(p)
