# SPDX-License-Identifier: MIT
"""Symlinked sources are read with their link owner's rights.

A user who plants `a.py -> /root/secret` in a tree that root compiles must
not get root to read that file: the daemon opens a link's target as the
link's owner, so the file fails exactly as it would for that user
(PermissionError, FileNotFoundError), no .pyc is written, and nothing of its
content or hash reaches the client, the log or the database. Root's own
links (Debian links stdlib modules into /etc) are still read as root. No
source is ever read from /proc or /sys, whoever owns the link."""

import grp
import hashlib
import os
import pwd
import shutil
import sqlite3
import stat
import subprocess

import pytest

from pycqtest import PYTHON, cache_path, clean_env, describe, write

SETPRIV = shutil.which("setpriv", path="/usr/bin:/bin")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                                reason="needs root and setpriv to plant links as nobody")

SECRET = b"ROOT_ONLY_SECRET_7f3a9c = 'do not read me'\n"
SHADOW = b"SHADOW_LIKE_SECRET_2b81e4 = 'nor me'\n"
ENV_SECRET = "DAEMON_ENV_SECRET_5d0c17"


def as_nobody(*cmd):
    p = subprocess.run([SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", *cmd],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd="/", timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def plant_as_nobody(links):
    """Creates each link (path -> target) as nobody, so nobody owns it."""
    args = [x for link, target in links for x in (str(link), str(target))]
    as_nobody(PYTHON, "-I", "-c",
              "import os, sys; a = sys.argv[1:]\n"
              "for i in range(0, len(a), 2): os.symlink(a[i + 1], a[i])", *args)


def database_text(db):
    """Every value of every table, blobs as hex (upper and lower case)."""
    out = []
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            for row in con.execute('SELECT * FROM "%s"' % t):
                for v in row:
                    if isinstance(v, bytes):
                        out += [v.hex(), v.hex().upper(), v.decode("latin-1")]
                    elif v is not None:
                        out.append(str(v))
    finally:
        con.close()
    return "\n".join(out)


def error_line(p, path):
    lines = [l for l in p.err.splitlines() if str(path) in l]
    assert lines, "no error names %s:\n%s" % (path, describe(p))
    return lines[0]


@pytest.fixture
def layout(traversable):
    """tmp_path/
         secret.py      root 0600: nobody cannot read it
         shadow.py      root:shadow 0640
         public.py      root 0644
         etc/mod.py     root 0600, the target of root's own link
         tree/          root 0755, compiled by root
           user/        nobody's: the planted links
           sys/         root's links"""
    base = traversable
    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    try:
        shadow_gid = grp.getgrnam("shadow").gr_gid
    except KeyError:
        shadow_gid = 0
    secret = write(str(base / "secret.py"), SECRET, mode=0o600)
    shadow = write(str(base / "shadow.py"), SHADOW, mode=0o640)
    os.chown(shadow, 0, shadow_gid)
    public = write(str(base / "public.py"), b"PUBLIC = 1\n", mode=0o644)
    os.mkdir(base / "etc")
    etc_mod = write(str(base / "etc" / "mod.py"), b"ETC = 1\n", mode=0o600)
    tree = base / "tree"
    user = tree / "user"
    sysdir = tree / "sys"
    os.makedirs(user)
    os.mkdir(sysdir)
    os.chmod(tree, 0o755)
    os.chmod(sysdir, 0o755)
    os.chown(user, nobody, nogroup)
    os.chmod(user, 0o755)
    write(str(user / "plain.py"), b"PLAIN = 1\n", mode=0o644)

    planted = {
        "secret": (user / "a.py", secret),
        "shadow": (user / "shadow_link.py", shadow),
        "environ": (user / "env.py", "/proc/self/environ"),
        "missing": (user / "gone.py", str(base / "no-such-file.py")),
        "relative_secret": (user / "rel.py", os.path.relpath(secret, user)),
        "public": (user / "pub.py", public),
    }
    plant_as_nobody(planted.values())
    roots = {
        "etc": (sysdir / "sitecustomize.py", etc_mod),
        "proc": (sysdir / "penv.py", "/proc/self/environ"),
    }
    for link, target in roots.values():
        os.symlink(target, link)
    for link, _ in list(planted.values()) + list(roots.values()):
        assert os.lstat(link).st_uid == (nobody if link.parent == user else 0), link
    return {"tree": tree, "planted": planted, "roots": roots, "secret": secret, "shadow": shadow}


def test_symlinked_sources_read_as_link_owner(layout, start_daemon, monkeypatch):
    # the daemon's own environment holds a secret too (/proc/self/environ)
    monkeypatch.setenv("PYCQ_TEST_ENV_SECRET", ENV_SECRET)
    d = start_daemon()
    planted, roots = layout["planted"], layout["roots"]

    p = d.pycq("compile", layout["tree"])
    assert p.returncode == 1, describe(p)

    # what the link owner could read compiles
    for link in (planted["public"][0], roots["etc"][0], layout["tree"] / "user" / "plain.py"):
        assert os.path.isfile(cache_path(str(link))), "%s not compiled:\n%s" % (link, describe(p))

    # what nobody could not read fails as it would for nobody, without a .pyc
    expect = {
        "secret": "PermissionError",
        "relative_secret": "PermissionError",
        "shadow": "PermissionError",
        "environ": "PermissionError",
    }
    for key, exc in expect.items():
        link = planted[key][0]
        assert exc in error_line(p, link), (key, describe(p))
        assert not os.path.lexists(cache_path(str(link))), key
    # a dangling link is skipped by the walk; named, it fails as for anyone
    link = planted["missing"][0]
    q = d.pycq("compile", link)
    assert q.returncode == 1 and "FileNotFoundError" in error_line(q, link), describe(q)
    assert not os.path.lexists(cache_path(str(link)))
    # root's own link to /proc is refused for being on /proc
    assert "penv.py" in p.err, describe(p)
    assert not os.path.lexists(cache_path(str(roots["proc"][0])))

    assert d.pycq("history").returncode == 0  # the records are flushed
    db_text = database_text(os.path.join(d.state_dir, "provenance.db"))
    secrets = [SECRET, SHADOW, ENV_SECRET.encode()]
    hashes = [hashlib.sha256(s).hexdigest() for s in (SECRET, SHADOW)]
    for where, text in (("client output", p.out + p.err + q.out + q.err), ("daemon log", d.log_text()), ("database", db_text)):
        for s in secrets:
            assert s.decode().split(" =")[0] not in text, "%s leaked into the %s" % (s, where)
        for h in hashes:
            assert h not in text.lower(), "a secret's sha256 reached the %s" % where
    # the database knows each refused file only by its own (link) path
    assert str(layout["secret"]) not in db_text and str(layout["shadow"]) not in db_text


def test_pseudo_file_system_source_refused(layout, start_daemon):
    """A root-owned link is read as root, but never from /proc."""
    d = start_daemon()
    link = layout["roots"]["proc"][0]
    p = d.pycq("compile", link)
    assert p.returncode == 1, describe(p)
    line = error_line(p, link)
    assert "OSError" in line, describe(p)
    assert not os.path.lexists(cache_path(str(link)))
    # the Debian case beside it still works
    p = d.pycq("compile", layout["roots"]["etc"][0])
    assert p.returncode == 0, describe(p)


def test_second_hop_of_roots_link_read_as_its_owner(traversable, start_daemon):
    """Root's own link may lead into a directory another user can write; a
    link that user plants there is read with that user's rights, not root's
    (the first link being root's changes nothing)."""
    base = traversable
    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    secret = write(str(base / "secret.py"), SECRET, mode=0o600)
    app = base / "app"  # nobody's: nobody may replace what is in it
    os.mkdir(app)
    os.chown(app, nobody, nogroup)
    os.chmod(app, 0o755)
    tree = base / "tree"
    os.mkdir(tree)
    os.chmod(tree, 0o755)
    # root links tree/x.py and tree/y.py into app/; nobody makes them links
    # to root's secret and to a file of its own
    os.symlink(app / "x.py", tree / "x.py")
    os.symlink(app / "y.py", tree / "y.py")
    write(str(base / "mine.py"), b"MINE = 1\n", mode=0o644)
    plant_as_nobody([(app / "x.py", secret), (app / "y.py", base / "mine.py")])
    d = start_daemon()
    p = d.pycq("compile", str(tree))
    assert p.returncode == 1, describe(p)
    assert "PermissionError" in error_line(p, tree / "x.py"), describe(p)
    assert not os.path.exists(cache_path(str(tree / "x.py")))
    assert os.path.isfile(cache_path(str(tree / "y.py"))), describe(p)
    d.pycq("history")  # the records are written
    text = database_text(os.path.join(d.state_dir, "provenance.db"))
    assert "ROOT_ONLY_SECRET" not in text + p.out + p.err + d.log_text()
