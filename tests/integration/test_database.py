# SPDX-License-Identifier: MIT
"""The provenance database under stress: repeated SIGKILLs mid-batch leave
it intact; a full disk or a lock held by another process makes recording
"degraded" while compiles go on, and recording resumes afterwards; an
external reader holding a read transaction stalls nothing; recording can be
turned off."""

import errno
import os
import select
import shutil
import subprocess
import time

import pytest

from pycqtest import (CLIENT_TIMEOUT, PYTHON, assert_tree_compiled, cache_path, clean_env, describe, fsb,
                      json_records, sources_in, sqlite_integrity, validate, wait_until, write)

SQLITE3 = shutil.which("sqlite3", path="/usr/bin:/bin")


def db_of(d):
    return os.path.join(d.state_dir, "provenance.db")


def new_pycs(root, since_ns):
    n = 0
    for dirpath, _, filenames in os.walk(fsb(root)):
        if os.path.basename(dirpath) == b"__pycache__":
            for f in filenames:
                try:
                    if os.lstat(os.path.join(dirpath, f)).st_mtime_ns >= since_ns:
                        n += 1
                except FileNotFoundError:
                    pass
    return n


def history_targets(d, root):
    p = d.pycq("--json", "history", "--limit=1000000", root)
    assert p.returncode == 0, describe(p)
    return [r["target"] for r in json_records(p)]


# --- SIGKILL ----------------------------------------------------------------------

def test_integrity_after_repeated_sigkill(start_daemon, stdlib_tree):
    tree = stdlib_tree()
    d = start_daemon(workers=2)
    killed_mid_batch = 0
    for i, threshold in enumerate((30, 200, 500)):
        if i:
            d.start()
        since = time.time_ns() - 10_000_000
        client = d.pycq_popen("compile", "-f", "-O", "0", "-O", "1", tree)
        wait_until(lambda: client.poll() is not None or new_pycs(tree, since) >= threshold, 120)
        if client.poll() is None:
            killed_mid_batch += 1
        d.kill()
        client.communicate(timeout=CLIENT_TIMEOUT)
        assert sqlite_integrity(db_of(d)) == "ok", "round %d" % i
    assert killed_mid_batch >= 2, "test premise: only %d rounds were killed mid-batch" % killed_mid_batch

    # and the daemon works on that database
    d.start()
    p = d.pycq("compile", "-f", "-O", "0", "-O", "1", tree)
    assert p.returncode == 0, describe(p)
    p = d.pycq("--json", "verify", tree)
    assert p.returncode == 0, describe(p)
    assert len(history_targets(d, tree)) >= len(sources_in(tree))
    d.stop()
    assert sqlite_integrity(db_of(d)) == "ok"


# --- degraded ----------------------------------------------------------------------

@pytest.fixture
def tmpfs_state(tmp_path):
    """A 2 MiB tmpfs mounted where the daemon "d" keeps its state (request
    this fixture before start_daemon, so the daemon is stopped first)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "state-d"
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % p.stderr.decode(errors="replace"))
    yield str(mnt)
    p = subprocess.run(["umount", str(mnt)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], timeout=30)


def fill(directory):
    """Writes a file in @directory until the file system is full; returns its path."""
    path = os.path.join(directory, "filler")
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 4096, 1):  # the last partial blocks too
            try:
                while os.write(fd, chunk[:size]) == size:
                    pass
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    return path


def database_status(d):
    return d.status()["database"]


def test_degraded_on_full_disk(tmpfs_state, start_daemon, stdlib_tree, tmp_path):
    d = start_daemon(workers=2)
    assert d.state_dir == tmpfs_state
    st = database_status(d)
    assert st["degraded"] is False and st["recording"] is True, st
    filler = fill(tmpfs_state)

    # enough records (three levels) that the database must grow
    tree = stdlib_tree(subset=True)
    p = d.pycq("compile", "-O", "0", "-O", "1", "-O", "2", tree)
    assert p.returncode == 0, "compile failed on a full state dir: " + describe(p)
    assert_tree_compiled(tree, opts=(0, 1, 2))
    st = wait_until(lambda: (lambda s: s if s["degraded"] else None)(database_status(d)), 15, 0.1)
    assert st, "status never said degraded: %r" % database_status(d)
    assert st.get("degraded_reason"), st
    assert "DEGRADED" in d.log_text(), "the log does not say it loudly"

    # compiles go on while degraded
    tree2 = stdlib_tree(tmp_path / "tree2", subset=True)
    p = d.pycq("compile", tree2)
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree2)

    # space again: recording resumes, and what was kept in memory is written
    os.unlink(filler)
    p = d.pycq("compile", "-f", os.path.join(tree, "json"))
    assert p.returncode == 0, describe(p)
    st = wait_until(lambda: (lambda s: s if not s["degraded"] else None)(database_status(d)), 20, 0.2)
    assert st, "still degraded after space was freed: %r" % database_status(d)
    assert st["dropped_records"] == 0, st
    assert set(history_targets(d, tree2)) == {cache_path(os.fsdecode(s)) for s in sources_in(tree2)}
    assert {cache_path(os.fsdecode(s), opt=o) for s in sources_in(tree) for o in (0, 1, 2)} <= \
        set(history_targets(d, tree))
    d.stop()
    assert sqlite_integrity(db_of(d)) == "ok"


HOLD_LOCK = r'''
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
c.execute("COMMIT")
'''


def test_degraded_while_locked(start_daemon, stdlib_tree):
    d = start_daemon(workers=2)
    p = d.pycq("status")  # the database exists
    holder = subprocess.Popen([PYTHON, "-I", "-c", HOLD_LOCK, db_of(d)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        assert holder.stdout.readline() == b"locked\n"
        tree = stdlib_tree(subset=True)
        p = d.pycq("compile", tree)
        assert p.returncode == 0, describe(p)
        assert_tree_compiled(tree)
        st = wait_until(lambda: (lambda s: s if s["degraded"] else None)(database_status(d)), 15, 0.1)
        assert st, "status never said degraded while another process held the write lock"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    st = wait_until(lambda: (lambda s: s if not s["degraded"] else None)(database_status(d)), 20, 0.2)
    assert st, "still degraded after the lock was released: %r" % database_status(d)
    assert set(history_targets(d, tree)) == {cache_path(os.fsdecode(s)) for s in sources_in(tree)}


# --- an external reader ---------------------------------------------------------------

class SqliteShell:
    """The sqlite3 command-line shell on a database, kept open."""

    def __init__(self, db):
        self.proc = subprocess.Popen([SQLITE3, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=clean_env())

    def query(self, sql, timeout=30):
        """Runs @sql (one statement printing one line); returns that line."""
        self.proc.stdin.write(sql.encode() + b"\n")
        self.proc.stdin.flush()
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert r, "sqlite3 did not answer %r within %ss" % (sql, timeout)
        return self.proc.stdout.readline().decode().strip()

    def execute(self, sql):
        self.proc.stdin.write(sql.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.stdout.read()
        return self.proc.wait(timeout=30)


@pytest.mark.skipif(SQLITE3 is None, reason="sqlite3 shell not installed")
def test_external_reader_does_not_stall(start_daemon, stdlib_tree):
    d = start_daemon(workers=2)
    first = stdlib_tree(subset=True)
    p = d.pycq("compile", os.path.join(first, "json"))
    assert p.returncode == 0, describe(p)
    p = d.pycq("history")  # flushed
    shell = SqliteShell(db_of(d))
    try:
        shell.execute("BEGIN;")
        before = int(shell.query("SELECT count(*) FROM jobs;"))
        assert before > 0

        tree = first
        p = d.pycq("compile", tree, timeout=120)
        assert p.returncode == 0, describe(p)
        assert_tree_compiled(tree)
        # the reader's transaction really was open all along: its snapshot is old
        assert int(shell.query("SELECT count(*) FROM jobs;")) == before
        # and the daemon recorded everything meanwhile, not degraded
        assert set(history_targets(d, tree)) == {cache_path(os.fsdecode(s)) for s in sources_in(tree)}
        assert database_status(d)["degraded"] is False
    finally:
        assert shell.close() == 0
    # once the reader closes, a new reader sees the records too
    shell = SqliteShell(db_of(d))
    try:
        assert int(shell.query("SELECT count(*) FROM jobs;")) >= len(sources_in(tree))
        assert shell.query("PRAGMA integrity_check;") == "ok"
    finally:
        shell.close()


# --- configuration ------------------------------------------------------------------

def test_recording_off(start_daemon, tmp_path, stdlib_tree):
    d = start_daemon(config="recording = off\n")
    tree = stdlib_tree(subset=True)
    p = d.pycq("compile", tree)
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(tree)
    st = database_status(d)
    assert st["recording"] is False and st["rows"] == 0, st
    # no durable queue without the database: refused, clearly
    p = d.pycq("compile", "--no-wait", "-f", tree)
    assert p.returncode == 5 and "durabl" in p.err, describe(p)
    # the record verbs have nothing to show; when they fail, they must say why
    src = os.fsdecode(sources_in(tree)[0])
    for args, ok_rc in ((("history",), 0), (("why", src), 1), (("verify", tree), None)):
        p = d.pycq("--json", *args)
        if p.returncode == 5:
            assert "recording" in p.err, "%s: unclear error with recording off: %s" % (args[0], describe(p))
        else:
            assert ok_rc is None or p.returncode == ok_rc, describe(p)
            json_records(p)
    # clean needs no record
    p = d.pycq("clean", tree)
    assert p.returncode == 0, describe(p)
    assert validate(tree).valid == {}


def test_retention_rows(start_daemon, tmp_path):
    d = start_daemon(config="retention_rows = 5\n")
    srcs = [write(tmp_path / "r" / ("m%02d.py" % i), "X = %d\n" % i) for i in range(20)]
    p = d.pycq("compile", str(tmp_path / "r"))
    assert p.returncode == 0, describe(p)
    # retention runs in the background after a flush; restart to be sure it ran
    d.stop()
    d.start()
    p = d.pycq("compile", "-f", srcs[0])
    assert p.returncode == 0, describe(p)
    rows = wait_until(lambda: (lambda s: s["rows"] if s["rows"] <= 5 else None)(database_status(d)), 15, 0.2)
    assert rows is not None, "retention_rows = 5 not enforced: %r" % database_status(d)
    p = d.pycq("--json", "history")
    assert len(json_records(p)) <= 5, describe(p)
