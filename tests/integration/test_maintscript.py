# SPDX-License-Identifier: MIT
"""py3compile inside a maintainer script: queued and left to pycqueue's dpkg
trigger, whose flush (`pycqueue wait --failures`) reports what failed.

dpkg sets $DPKG_MAINTSCRIPT_NAME and $DPKG_MAINTSCRIPT_PACKAGE for the
scripts it runs; here they are set by hand, and a fake `dpkg-trigger` first
on $PATH records its command line (or fails, to stand for a pycqueue that
cannot be triggered). The front-end reaches the test daemon through
$PYCQUEUE_SOCKET and never autostarts one."""

import json
import os
import sqlite3
import subprocess

import pytest

from pycqtest import (CLEAN_PATH, CLIENT_TIMEOUT, EXIT_PERM, PYCQUEUE, assert_tree_compiled, cache_path,
                      clean_env, count_pycs, describe, expected_pycs, json_records, run_client, write)

FRONTEND = os.path.join(os.path.dirname(PYCQUEUE), "py3compile")
PACKAGE = "python3-foo"

pytestmark = pytest.mark.skipif(not os.access(FRONTEND, os.X_OK), reason="front-end not built")


@pytest.fixture
def fake_trigger(tmp_path):
    """A directory holding a dpkg-trigger that appends its arguments (one
    line per call) to a record file and exits with $FAKE_TRIGGER_EXIT.
    Returns (bindir, record path)."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    record = tmp_path / "trigger-calls"
    script = bindir / "dpkg-trigger"
    script.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\nexit "${FAKE_TRIGGER_EXIT:-0}"\n' % record)
    script.chmod(0o755)
    return str(bindir), str(record)


def trigger_calls(record):
    try:
        with open(record) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def maintscript_env(d, bindir, extra=None, script="postinst"):
    env = clean_env({"PYCQUEUE_SOCKET": d.socket, "PYCQUEUE_NO_AUTOSTART": "1",
                     "DPKG_MAINTSCRIPT_NAME": script, "DPKG_MAINTSCRIPT_PACKAGE": PACKAGE,
                     "PATH": bindir + ":" + CLEAN_PATH})
    if extra:
        env.update(extra)
    return env


def py3compile(args, env):
    p = subprocess.run([FRONTEND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=CLIENT_TIMEOUT, stdin=subprocess.DEVNULL)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def small_tree(tmp_path, bad=False):
    root = tmp_path / "tree"
    write(root / "a.py", b"A = 1\n")
    write(root / "pkg" / "__init__.py", b"")
    write(root / "pkg" / "b.py", b"def f():\n    return 2\n")
    if bad:
        write(root / "pkg" / "broken.py", b"x = 1\ndef g(:\n")
    return str(root)


def test_deferred_then_compiled_and_attributed(daemon, tmp_path, fake_trigger):
    bindir, record = fake_trigger
    tree = small_tree(tmp_path)
    p = py3compile([tree], maintscript_env(daemon, bindir))
    assert p.returncode == 0, describe(p)
    assert p.out == "", describe(p)
    # dpkg-trigger ran once, without a shell, asking not to await
    assert trigger_calls(record) == ["--no-await pycqueue"]

    p = daemon.pycq("wait")
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree)

    source = os.path.join(tree, "pkg", "b.py")
    p = daemon.pycq("why", source)
    assert p.returncode == 0, describe(p)
    assert "py3compile (postinst of %s)" % PACKAGE in p.out, describe(p)
    p = daemon.pycq("--json", "why", source)
    assert p.returncode == 0, describe(p)
    rec = json_records(p)[0]
    assert (rec["tool"], rec["dpkg_package"], rec["dpkg_script"]) == ("py3compile", PACKAGE, "postinst"), rec
    p = daemon.pycq("history", tree)
    assert p.returncode == 0, describe(p)
    assert "by py3compile (postinst of %s)" % PACKAGE in p.out, describe(p)

    # nothing failed: the flush prints nothing and succeeds
    p = daemon.pycq("wait", "--failures")
    assert (p.returncode, p.out, p.err) == (0, "", ""), describe(p)


def test_flush_reports_failures_once(daemon, tmp_path, fake_trigger):
    bindir, _ = fake_trigger
    tree = small_tree(tmp_path, bad=True)
    broken = os.path.join(tree, "pkg", "broken.py")
    p = py3compile([tree], maintscript_env(daemon, bindir))
    assert p.returncode == 0, describe(p)  # the failure is the flush's to report

    p = daemon.pycq("wait", "--failures")
    assert p.returncode == 1, describe(p)
    lines = p.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(broken + ":2: SyntaxError: "), describe(p)
    assert os.path.exists(cache_path(os.path.join(tree, "pkg", "b.py"))), "the good files are compiled"

    # collected once: the next flush has nothing to say
    p = daemon.pycq("wait", "--failures")
    assert (p.returncode, p.out, p.err) == (0, "", ""), describe(p)

    # the JSON form counts them
    p = py3compile([tree], maintscript_env(daemon, bindir))
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("--json", "wait", "--failures")
    assert p.returncode == 1, describe(p)
    out = json.loads(p.stdout)
    assert out["failed"] == 1 and out["errors"][0]["source"] == broken and out["errors"][0]["line"] == 2, out


def test_failing_trigger_compiles_now(daemon, tmp_path, fake_trigger):
    """pycqueue cannot be triggered: nothing would report a failure later,
    so the front-end waits for its files and reports them itself."""
    bindir, record = fake_trigger
    tree = small_tree(tmp_path, bad=True)
    broken = os.path.join(tree, "pkg", "broken.py")
    p = py3compile([tree], maintscript_env(daemon, bindir, {"FAKE_TRIGGER_EXIT": "2"}))
    assert trigger_calls(record) == ["--no-await pycqueue"]
    assert p.returncode == 1, describe(p)
    assert broken + ":2: SyntaxError: " in p.err, describe(p)
    assert "compiling now" in p.err, describe(p)
    # compiled before it returned, without a wait
    for s in ("a.py", "pkg/__init__.py", "pkg/b.py"):
        assert os.path.exists(cache_path(os.path.join(tree, s))), s
    # and nothing was left for the flush
    p = daemon.pycq("wait", "--failures")
    assert (p.returncode, p.err) == (0, ""), describe(p)


def test_missing_trigger_compiles_now(daemon, tmp_path):
    empty = tmp_path / "emptybin"
    empty.mkdir()
    tree = small_tree(tmp_path)
    env = maintscript_env(daemon, str(empty), {"PATH": str(empty)})  # no dpkg-trigger anywhere
    p = py3compile([tree], env)
    assert p.returncode == 0, describe(p)
    assert "cannot run dpkg-trigger" in p.err, describe(p)
    assert_tree_compiled(tree)


def test_no_defer(daemon, tmp_path, fake_trigger):
    bindir, record = fake_trigger
    tree = small_tree(tmp_path)
    p = py3compile([tree], maintscript_env(daemon, bindir, {"PYCQUEUE_NO_DEFER": "1"}))
    assert p.returncode == 0, describe(p)
    assert trigger_calls(record) == []
    assert_tree_compiled(tree)


def test_outside_maintscript_not_deferred(daemon, tmp_path, fake_trigger):
    """Only with both variables dpkg sets: a stray DPKG_MAINTSCRIPT_NAME alone
    defers nothing."""
    bindir, record = fake_trigger
    tree = small_tree(tmp_path)
    env = maintscript_env(daemon, bindir)
    del env["DPKG_MAINTSCRIPT_PACKAGE"]
    p = py3compile([tree], env)
    assert p.returncode == 0, describe(p)
    assert trigger_calls(record) == []
    assert_tree_compiled(tree)


def test_collector_must_be_root(daemon, tmp_path, fake_trigger, nobody_client):
    bindir, _ = fake_trigger
    tree = small_tree(tmp_path, bad=True)
    p = py3compile([tree], maintscript_env(daemon, bindir))
    assert p.returncode == 0, describe(p)
    assert daemon.pycq("wait").returncode == 0

    p = run_client("wait", "--failures", socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    assert p.returncode == EXIT_PERM, describe(p)
    assert "only root may collect" in p.err, describe(p)
    assert "broken.py" not in p.err + p.out
    # a plain wait stays open to everyone
    p = run_client("wait", socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    assert p.returncode == 0, describe(p)

    # the refusal took nothing away: root still collects the failure
    p = daemon.pycq("wait", "--failures")
    assert p.returncode == 1 and "broken.py:2: SyntaxError" in p.err, describe(p)


def test_replayed_request_keeps_script(start_daemon, tmp_path, fake_trigger, stdlib_tree):
    """Killed right after the front-end returned: the restarted daemon
    replays the queued request, and its records still name the maintainer
    script and the package, and its failures still reach the flush."""
    bindir, _ = fake_trigger
    tree = stdlib_tree()
    write(os.path.join(tree, "zz_broken.py"), b"def g(:\n")
    want = len(expected_pycs(tree))
    d = start_daemon(workers=1)
    p = py3compile([tree], maintscript_env(d, bindir, script="preinst"))
    d.kill()
    assert p.returncode == 0, describe(p)
    assert count_pycs(tree) < want - 1, "test premise: everything was compiled before the SIGKILL"

    d.workers = 2
    d.start()
    p = d.pycq("wait", "--failures", timeout=CLIENT_TIMEOUT)
    assert p.returncode == 1, describe(p)
    assert p.err.splitlines() == [p.err.splitlines()[0]] and "zz_broken.py:1: SyntaxError" in p.err, describe(p)
    assert count_pycs(tree) == want - 1
    assert "Resuming queued request" in d.log_text()

    p = d.pycq("--json", "why", os.path.join(tree, "json", "decoder.py"))
    assert p.returncode == 0, describe(p)
    rec = json_records(p)[0]
    assert rec["outcome"] == "compiled" and rec["dpkg_script"] == "preinst" and rec["dpkg_package"] == PACKAGE, rec
    assert rec["tool"] == "py3compile", rec


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', 1);
CREATE TABLE requests (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, uid INTEGER, gid INTEGER, pid INTEGER,
  exe TEXT, cmdline TEXT, parents TEXT, tool TEXT, dpkg_package TEXT, package TEXT);
CREATE TABLE interpreters (id INTEGER PRIMARY KEY, path TEXT NOT NULL, cache_tag TEXT NOT NULL,
  magic TEXT NOT NULL, UNIQUE (path, cache_tag, magic));
CREATE TABLE jobs (id INTEGER PRIMARY KEY, request_id INTEGER, target TEXT NOT NULL, source TEXT,
  source_mtime INTEGER, source_size INTEGER, source_sha256 BLOB, pyc_sha256 BLOB, interpreter_id INTEGER,
  opt_level INTEGER, mode INTEGER, outcome INTEGER NOT NULL, error_type TEXT, error_line INTEGER,
  error_message TEXT, start INTEGER, end INTEGER);
CREATE INDEX jobs_by_target ON jobs (target);
CREATE INDEX jobs_by_request ON jobs (request_id);
CREATE TABLE queue (request_id INTEGER PRIMARY KEY, uid INTEGER, spec BLOB NOT NULL);
CREATE TABLE audit (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, path TEXT NOT NULL, pid INTEGER,
  exe TEXT, cmdline TEXT, parents TEXT);
CREATE INDEX audit_by_path ON audit (path);
INSERT INTO requests VALUES (7, 1700000000000000, 0, 0, 42, '/usr/bin/py3compile', 'py3compile -p old',
  '', 'py3compile', 'old', 'old');
INSERT INTO jobs (request_id, target, outcome, start, end)
  VALUES (7, '/srv/old/__pycache__/m.cpython-311.pyc', 0, 1700000000000000, 1700000000000000);
"""


def test_schema_1_migrated(start_daemon, tmp_path):
    """A database of schema 1 is brought up to date at startup (through 2 and
    3) and keeps its records; the old requests have no maintainer script and
    no root."""
    d = start_daemon(wait=False)
    d.stop()
    os.makedirs(d.state_dir, mode=0o700, exist_ok=True)
    db = os.path.join(d.state_dir, "provenance.db")
    if os.path.exists(db):
        os.unlink(db)
    c = sqlite3.connect(db)
    c.executescript(V1_SCHEMA)
    c.commit()
    c.close()
    d.start()
    p = d.pycq("--json", "history", "--package=old")
    assert p.returncode == 0, describe(p)
    recs = json_records(p)
    assert len(recs) == 1 and recs[0]["tool"] == "py3compile" and "dpkg_script" not in recs[0], recs
    assert "root" not in recs[0], recs
    d.stop()
    c = sqlite3.connect(db)
    try:
        assert c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == 3
        cols = [r[1] for r in c.execute("PRAGMA table_info(requests)")]
        assert "dpkg_script" in cols and "root" in cols
        assert "peer_root" in [r[1] for r in c.execute("PRAGMA table_info(queue)")]
        assert c.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0
    finally:
        c.close()


def test_module_imported_before_the_flush(start_daemon, tmp_path, fake_trigger, stdlib_tree):
    """A postinst that imports a module after py3compile queued it and before
    the flush: Python compiles it in memory and, as root, writes the .pyc
    itself; pycqueue's later job finds that .pyc current and leaves it."""
    bindir, _ = fake_trigger
    tree = stdlib_tree()
    fresh = os.path.join(tree, "zz_fresh.py")
    write(fresh, b"VALUE = 42\n")
    pyc = cache_path(fresh)
    d = start_daemon(workers=1)
    p = py3compile([tree], maintscript_env(d, bindir))
    d.kill()  # the queued jobs wait in the durable queue
    assert p.returncode == 0, describe(p)
    assert not os.path.exists(pyc), "test premise: the module was compiled before the SIGKILL"

    imp = subprocess.run(["/usr/bin/python3", "-c", "import zz_fresh; print(zz_fresh.VALUE)"], cwd=tree,
                         env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CLIENT_TIMEOUT)
    assert imp.stdout == b"42\n", imp.stderr
    with open(pyc, "rb") as f:
        written = f.read()
    ino = os.stat(pyc).st_ino

    d.start()
    p = d.pycq("wait", "--failures", timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, describe(p)
    with open(pyc, "rb") as f:
        assert f.read() == written
    assert os.stat(pyc).st_ino == ino, "pycqueue replaced the importer's .pyc"
    p = d.pycq("--json", "history", fresh)
    assert p.returncode == 0, describe(p)
    assert [r["outcome"] for r in json_records(p)] == ["up to date"], describe(p)


def test_replayed_request_that_cannot_start_is_reported(start_daemon, stdlib_tree, trusted_bindir):
    """A queued request that fails as a whole after its client left (here:
    replayed after a crash, its interpreter gone) is reported by the flush
    for each of its paths, not lost."""
    tree = stdlib_tree()
    python = os.path.join(trusted_bindir, "python3")
    os.symlink("/usr/bin/python3.11", python)
    d = start_daemon(workers=1)
    p = d.pycq("compile", "--no-wait", "--python=" + python, tree)
    d.kill()
    assert p.returncode == 0, describe(p)
    assert count_pycs(tree) < len(expected_pycs(tree)), "test premise: all compiled before the SIGKILL"
    os.unlink(python)
    d.start()
    p = d.pycq("wait", "--failures")
    assert p.returncode == 1, describe(p)
    assert p.err.startswith(tree + ": Error: ") and len(p.err.splitlines()) == 1, describe(p)
    p = d.pycq("wait", "--failures")
    assert (p.returncode, p.err) == (0, ""), describe(p)
