# SPDX-License-Identifier: MIT
"""clean (removes .pyc files through the daemon, recorded; root only) and
audit (fanotify catches .pyc files other processes write; verify calls them
foreign)."""

import os
import shutil
import subprocess

import pytest

from pycqtest import (PYCQUEUE, PYPY, PYTHON, cache_path, clean_env, describe, json_records,
                      py_compile_ref, read, run_client, sources_in, verify_problems,
                      wait_until, write)


def all_pycs(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        out += [os.path.join(dirpath, f) for f in filenames if f.endswith(".pyc")]
    return sorted(out)


def cache_dirs(root):
    return sorted(os.path.join(d, "__pycache__") for d, dirnames, _ in os.walk(root) if "__pycache__" in dirnames)


@pytest.fixture
def compiled_tree(daemon, tmp_path):
    root = tmp_path / "tree"
    for rel in ("a.py", "pkg/__init__.py", "pkg/b.py", "pkg/sub/c.py", "other/d.py"):
        write(root / rel, "X = %r\n" % rel)
    p = daemon.pycq("compile", "-O", "0", "-O", "1", "-O", "2", str(root))
    assert p.returncode == 0, describe(p)
    assert len(all_pycs(root)) == 15
    return str(root)


# --- clean -----------------------------------------------------------------------

def test_clean_removes_every_pyc(daemon, compiled_tree):
    root = compiled_tree
    # a .pyc the daemon never wrote and an orphan go too; a non-.pyc file stays
    extra = write(os.path.join(root, "other", "e.py"), "E = 1\n")
    py_compile_ref(extra, cache_path(extra))
    orphan = os.path.join(root, "pkg", "__pycache__", "gone.cpython-311.pyc")
    shutil.copy(cache_path(os.path.join(root, "a.py")), orphan)
    keep = write(os.path.join(root, "other", "__pycache__", "notes.txt"), "keep me\n")
    sources_before = sources_in(root)
    pycs = all_pycs(root)
    assert len(pycs) == 17

    p = daemon.pycq("-v", "clean", root)
    assert p.returncode == 0, describe(p)
    assert all_pycs(root) == [], "left behind: %r" % all_pycs(root)
    assert sources_in(root) == sources_before
    assert read(keep) == b"keep me\n"
    # empty __pycache__ directories are gone, the one with notes.txt stays
    assert cache_dirs(root) == [os.path.dirname(keep)]
    lines = p.out.splitlines()
    assert sorted(l[len("removed "):] for l in lines if l.startswith("removed ")) == pycs, describe(p)
    assert lines[-1] == "17 removed", describe(p)

    # recorded: history shows a "removed" row for each
    p = daemon.pycq("--json", "history", root)
    assert p.returncode == 0, describe(p)
    removed = sorted(r["target"] for r in json_records(p) if r["outcome"] == "removed")
    assert removed == pycs
    p = daemon.pycq("history", root)
    assert p.returncode == 0, describe(p)
    assert all(any(pyc in l and "removed" in l for l in p.out.splitlines()) for pyc in pycs), describe(p)

    # a second clean finds nothing
    p = daemon.pycq("--json", "clean", root)
    assert p.returncode == 0, describe(p)
    assert json_records(p) == []


def test_clean_json_and_file_argument(daemon, compiled_tree):
    root = compiled_tree
    src = os.path.join(root, "pkg", "b.py")
    mine = sorted(cache_path(src, opt=o) for o in (0, 1, 2))
    p = daemon.pycq("--json", "clean", src)
    assert p.returncode == 0, describe(p)
    assert sorted(r["path"] for r in json_records(p)) == mine
    assert not any(os.path.exists(x) for x in mine)
    assert len(all_pycs(root)) == 12


def test_clean_python_filter(daemon, tmp_path):
    if not os.access(PYPY, os.X_OK):
        pytest.skip("pypy3 not installed")
    src = write(tmp_path / "t" / "m.py", "X = 1\n")
    p = daemon.pycq("compile", "--python=" + PYTHON, "--python=" + PYPY, src)
    assert p.returncode == 0, describe(p)
    cp, pp = cache_path(src), cache_path(src, tag="pypy39")
    assert os.path.exists(cp) and os.path.exists(pp)
    p = daemon.pycq("--json", "clean", "--python=" + PYPY, str(tmp_path / "t"))
    assert p.returncode == 0, describe(p)
    assert [r["path"] for r in json_records(p)] == [pp]
    assert os.path.exists(cp) and not os.path.exists(pp)


def test_clean_refused_to_nobody(daemon, compiled_tree, nobody_client):
    before = all_pycs(compiled_tree)
    p = run_client("clean", compiled_tree, socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    assert p.returncode == 4, describe(p)
    assert p.err.strip(), describe(p)
    assert all_pycs(compiled_tree) == before


def test_clean_records_requester(daemon, compiled_tree):
    """A removal is provenance like a write: the record names who asked."""
    src = os.path.join(compiled_tree, "a.py")
    c = daemon.pycq_popen("clean", src)
    out, err = c.communicate(timeout=120)
    assert c.returncode == 0, (out, err)
    p = daemon.pycq("--json", "history", src)
    assert p.returncode == 0, describe(p)
    removed = [r for r in json_records(p) if r["outcome"] == "removed"]
    assert len(removed) == 3, removed
    for r in removed:
        assert r["pid"] == c.pid, "removal not attributed to the clean client (pid %d): %r" % (c.pid, r)
        assert r.get("exe") == os.path.realpath(PYCQUEUE), r
        assert "clean" in r.get("cmdline", ""), r


def test_why_pyc_after_clean(daemon, compiled_tree):
    """why on a .pyc path still answers after clean removed its __pycache__."""
    src = os.path.join(compiled_tree, "pkg", "sub", "c.py")
    pyc = cache_path(src)
    p = daemon.pycq("clean", os.path.dirname(src))
    assert p.returncode == 0, describe(p)
    assert not os.path.exists(os.path.dirname(pyc))
    p = daemon.pycq("--json", "why", pyc)
    assert p.returncode == 0, describe(p)
    recs = json_records(p)
    assert len(recs) == 1 and recs[0]["target"] == pyc and recs[0]["matches_disk"] is False, recs
    p = daemon.pycq("why", src)
    assert p.returncode == 0, describe(p)
    assert "not on disk" in p.out.splitlines()[0], describe(p)


# --- audit -------------------------------------------------------------------------

def audit_records(d):
    p = d.pycq("--json", "audit")
    assert p.returncode == 0, describe(p)
    return json_records(p)


def rogue_py_compile(src):
    """Runs `/usr/bin/python3 -m py_compile SRC` in SRC's directory; returns its pid."""
    r = subprocess.Popen([PYTHON, "-m", "py_compile", src], cwd=os.path.dirname(src), env=clean_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = r.communicate(timeout=60)
    assert r.returncode == 0, err
    return r.pid


def test_audit_catches_rogue_py_compile(start_daemon, tmp_path):
    audited = tmp_path / "audited"
    ours = write(audited / "pkg" / "ours.py", "X = 1\n")
    rogue = write(audited / "pkg" / "rogue.py", "Y = 2\n")
    d = start_daemon(args=["--audit=" + str(audited)])
    assert d.status()["audit"] is True

    p = d.pycq("compile", ours)
    assert p.returncode == 0, describe(p)
    pid = rogue_py_compile(rogue)
    assert os.path.exists(cache_path(rogue))

    recs = wait_until(lambda: [r for r in audit_records(d) if r["path"] == cache_path(rogue)], 15, 0.1)
    assert recs, "audit did not list %s: %r" % (cache_path(rogue), audit_records(d))
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["pid"] == pid, r
    assert r["exe"] == os.path.realpath(PYTHON), r
    assert "py_compile" in r["cmdline"] and r["cmdline"].startswith(PYTHON), r
    assert r["parents"] and r["parents"][0]["pid"] == os.getpid(), r
    # the daemon's own write is not listed
    assert not [x for x in audit_records(d) if x["path"] == cache_path(ours)]

    p = d.pycq("audit")
    assert p.returncode == 0, describe(p)
    assert any(cache_path(rogue) in l and str(pid) in l for l in p.out.splitlines()), describe(p)

    rc, problems = verify_problems(d, str(audited))
    assert rc == 1 and problems == {cache_path(rogue): "foreign"}, problems
    p = d.pycq("--json", "verify", str(audited))
    assert "audit" in json_records(p)[0]["detail"], describe(p)


def test_audit_identical_bytes_still_foreign(start_daemon, tmp_path):
    """A rogue writer that happens to write the same bytes as the daemon is
    still caught; repair makes the file ours again."""
    audited = tmp_path / "audited"
    src = write(audited / "m.py", "X = 1\n")
    d = start_daemon(args=["--audit=" + str(audited)])
    p = d.pycq("compile", src)
    assert p.returncode == 0, describe(p)
    ours = read(cache_path(src))
    subprocess.run([PYTHON, "-m", "py_compile", src], env=clean_env(), timeout=60, check=True)
    assert read(cache_path(src)) == ours, "test premise: py_compile wrote other bytes"
    assert wait_until(lambda: [r for r in audit_records(d) if r["path"] == cache_path(src)], 15, 0.1)

    rc, problems = verify_problems(d, str(audited))
    assert rc == 1 and problems == {cache_path(src): "foreign"}, problems
    p = d.pycq("repair", str(audited))
    assert p.returncode == 0, describe(p)
    rc, problems = verify_problems(d, str(audited))
    assert rc == 0 and problems == {}, problems


def test_audit_roots_from_config(start_daemon, tmp_path):
    audited = tmp_path / "cfg-audited"
    src = write(audited / "m.py", "X = 1\n")
    d = start_daemon(config="AuditRoots = %s\n" % audited)
    assert d.status()["audit"] is True
    pid = rogue_py_compile(src)
    recs = wait_until(lambda: [r for r in audit_records(d) if r["path"] == cache_path(src)], 15, 0.1)
    assert recs and recs[0]["pid"] == pid, recs


def test_audit_outside_roots_ignored(start_daemon, tmp_path):
    audited = tmp_path / "audited"
    inside = write(audited / "in.py", "X = 1\n")
    outside = write(tmp_path / "elsewhere" / "out.py", "X = 2\n")
    d = start_daemon(args=["--audit=" + str(audited)])
    rogue_py_compile(outside)
    rogue_py_compile(inside)  # as a marker: once it is listed, the other would be too
    assert wait_until(lambda: [r for r in audit_records(d) if r["path"] == cache_path(inside)], 15, 0.1)
    assert [r["path"] for r in audit_records(d)] == [cache_path(inside)]


def test_audit_disabled(daemon):
    assert daemon.status()["audit"] is False
    p = daemon.pycq("audit")
    assert p.returncode == 5, describe(p)
    assert "--audit" in p.err and "not enabled" in p.err, describe(p)
    p = daemon.pycq("--json", "audit")
    assert p.returncode == 5, describe(p)
