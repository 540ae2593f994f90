# SPDX-License-Identifier: MIT
"""The provenance database holds every requester's command line and parent
chain: it is the daemon's alone. Its state directory is 0700 and the
database with its -wal and -shm files 0600, owned by the daemon's uid, also
when they existed before with wider modes or another owner; a user such as
nobody cannot open it."""

import grp
import os
import pwd
import shutil
import stat
import subprocess

import pytest

from pycqtest import PYTHON, clean_env, describe, json_records, write

SQLITE3 = shutil.which("sqlite3", path="/usr/bin:/bin")
SETPRIV = shutil.which("setpriv", path="/usr/bin:/bin")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                                reason="needs root and setpriv to try the database as nobody")

COMPANIONS = ("-wal", "-shm", "-journal")


def as_nobody(*cmd):
    return subprocess.run([SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *cmd],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd="/", timeout=60)


def db_files(d):
    db = os.path.join(d.state_dir, "provenance.db")
    return [db] + [db + c for c in COMPANIONS if os.path.lexists(db + c)]


def assert_private(d):
    st = os.stat(d.state_dir)
    assert stat.S_IMODE(st.st_mode) == 0o700, "state dir mode %o" % stat.S_IMODE(st.st_mode)
    assert st.st_uid == os.geteuid()
    files = db_files(d)
    # WAL mode: the daemon's writer keeps a -wal and a -shm while it runs
    assert any(f.endswith("-wal") for f in files), files
    for f in files:
        st = os.lstat(f)
        assert stat.S_ISREG(st.st_mode), f
        assert stat.S_IMODE(st.st_mode) == 0o600, "%s: mode %o" % (f, stat.S_IMODE(st.st_mode))
        assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()), "%s: owner %d:%d" % (f, st.st_uid,
                                                                                           st.st_gid)


def assert_nobody_cannot_read(d):
    db = os.path.join(d.state_dir, "provenance.db")
    for path in [db] + [db + c for c in COMPANIONS]:
        p = as_nobody(PYTHON, "-I", "-c", "import sys; open(sys.argv[1], 'rb').read(1)", path)
        assert p.returncode != 0 and b"PermissionError" in p.stderr, (path, p.stderr)
    p = as_nobody(PYTHON, "-I", "-c", "import os, sys; os.listdir(sys.argv[1])", d.state_dir)
    assert p.returncode != 0 and b"PermissionError" in p.stderr, p.stderr
    if SQLITE3:
        p = as_nobody(SQLITE3, "-readonly", db, "SELECT cmdline FROM requests;")
        assert p.returncode != 0, p.stdout
        assert b"pycqueue" not in p.stdout


def history_targets_of(d, root):
    p = d.pycq("--json", "history", root)
    assert p.returncode == 0, describe(p)
    return [r["target"] for r in json_records(p)]


def compile_one(d, root, name):
    src = write(os.path.join(root, name), b"X = 1\n")
    p = d.pycq("compile", src)
    assert p.returncode == 0, describe(p)
    return src


def test_database_private_after_compile(traversable, start_daemon):
    d = start_daemon()
    compile_one(d, str(traversable), "a.py")
    p = d.pycq("history")  # flushed: the records are in the database
    assert p.returncode == 0 and "a.cpython" in p.out, describe(p)
    assert_private(d)
    assert_nobody_cannot_read(d)


def test_wider_modes_fixed_at_open(traversable, start_daemon):
    root = str(traversable)
    d = start_daemon()
    compile_one(d, root, "a.py")
    assert d.pycq("history").returncode == 0
    d.stop()

    # as an older version (or an admin's copy) left them: world-readable,
    # another owner, stale companions that anyone may write
    nobody, nogroup = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    db = os.path.join(d.state_dir, "provenance.db")
    os.chmod(d.state_dir, 0o755)
    os.chmod(db, 0o644)
    os.chown(db, nobody, nogroup)
    for c in ("-wal", "-shm"):
        if not os.path.exists(db + c):
            write(db + c, b"")
        os.chown(db + c, nobody, nogroup)
        os.chmod(db + c, 0o666)

    d.start()
    compile_one(d, root, "b.py")
    targets = history_targets_of(d, root)
    assert any("a.cpython" in t for t in targets) and any("b.cpython" in t for t in targets), targets
    assert d.status()["database"]["degraded"] is False
    assert_private(d)
    assert_nobody_cannot_read(d)


def test_shared_state_dir_refused(traversable, start_daemon):
    """A sticky, world-writable directory named as the state directory by
    mistake is not taken over (made 0700): recording is degraded instead,
    and compiles go on."""
    state = traversable / "shared"
    os.mkdir(state)
    os.chmod(state, 0o1777)
    d = start_daemon(args=("--state-dir=%s" % state,))
    compile_one(d, str(traversable), "a.py")
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o1777
    assert not os.path.exists(state / "provenance.db")
    st = d.status()["database"]
    assert st["degraded"] is True and "sticky" in st.get("degraded_reason", ""), st
