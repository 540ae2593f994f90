# SPDX-License-Identifier: MIT
"""Guarantee 4, nothing lost: `compile --no-wait` returns once the jobs are
committed to the database; a daemon SIGKILLed right after that resumes them
when restarted on the same state directory, and `wait` blocks until they
are done."""

import json
import os
import re

from pycqtest import (CLIENT_TIMEOUT, assert_tree_compiled, count_pycs, describe, expected_pycs, json_records,
                      sources_in, sqlite_integrity)


def queued_count(p):
    m = re.fullmatch(r"(\d+) queued\n", p.out)
    assert m, "no 'N queued' line: " + describe(p)
    return int(m.group(1))


def test_no_wait_then_wait(daemon, stdlib_tree):
    tree = stdlib_tree(subset=True)
    n = len(sources_in(tree))
    p = daemon.pycq("compile", "--no-wait", tree)
    assert p.returncode == 0, describe(p)
    assert queued_count(p) == n
    p = daemon.pycq("wait")
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree)
    # recorded like any compile
    p = daemon.pycq("--json", "history", "--limit=100000", tree)
    assert p.returncode == 0, describe(p)
    assert len([r for r in json_records(p) if r["outcome"] == "compiled"]) == n


def test_no_wait_json(daemon, tmp_path, stdlib_tree):
    tree = stdlib_tree(subset=True)
    n = len(sources_in(tree))
    p = daemon.pycq("--json", "compile", "--no-wait", "-O", "0", "-O", "1", tree)
    assert p.returncode == 0, describe(p)
    assert json.loads(p.stdout) == {"queued": 2 * n}
    p = daemon.pycq("wait")
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree, opts=(0, 1))


def test_wait_package(daemon, tmp_path, stdlib_tree):
    one = stdlib_tree(tmp_path / "one", subset=True)
    p = daemon.pycq("compile", "--no-wait", "--package=one", one)
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("wait", "--package=one")
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(one)
    p = daemon.pycq("--json", "history", "--package=one", "--limit=100000")
    assert len(json_records(p)) == len(sources_in(one)), describe(p)


def test_no_wait_survives_sigkill(start_daemon, stdlib_tree):
    tree = stdlib_tree()
    want = len(expected_pycs(tree, opts=(0, 1)))
    d = start_daemon(workers=1)
    p = d.pycq("compile", "--no-wait", "-O", "0", "-O", "1", tree)
    d.kill()  # right after the acknowledgement
    assert p.returncode == 0, describe(p)
    assert queued_count(p) == want
    done_before = count_pycs(tree)
    assert done_before < want, "test premise: everything was compiled before the SIGKILL"

    d.workers = 2
    d.start()
    p = d.pycq("wait", timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree, opts=(0, 1))
    st = d.status()
    assert st["queue_length"] == 0 and st["in_flight"] == 0, st
    assert "Resuming queued request" in d.log_text(), "the restart did not say it resumed the request"

    # the queue is empty now: another restart compiles nothing
    d.stop()
    d.start()
    p = d.pycq("wait")
    assert p.returncode == 0, describe(p)
    assert d.status()["totals"]["compiled"] == 0
    assert sqlite_integrity(os.path.join(d.state_dir, "provenance.db")) == "ok"


def test_no_wait_survives_two_crashes(start_daemon, stdlib_tree):
    """Killed again while resuming: the request is still queued."""
    tree = stdlib_tree()
    want = len(expected_pycs(tree, opts=(0, 1)))
    d = start_daemon(workers=1)
    p = d.pycq("compile", "--no-wait", "-O", "0", "-O", "1", tree)
    d.kill()
    assert p.returncode == 0, describe(p)
    d.start()
    d.kill()  # as soon as it listens, mid-resume
    assert count_pycs(tree) < want, "test premise: everything was compiled before the second SIGKILL"
    d.workers = 2
    d.start()
    p = d.pycq("wait")
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree, opts=(0, 1))
