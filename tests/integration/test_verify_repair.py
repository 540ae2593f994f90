# SPDX-License-Identifier: MIT
"""verify classifies every .pyc under its paths (corrupt, stale, foreign,
orphan, missing) and repair fixes each class: one test per class and per
repair, each on a tree the daemon compiled."""

import os
import shutil

import pytest

from pycqtest import (PYCQUEUE, cache_path, describe, json_records, py_compile_ref, read, run_client,
                      validate, verify_problems, write)

# Big enough that its .pyc is well over 100 bytes, with a docstring and an
# assert so that -OO output differs from -O0.
SOURCE_A = ('"""Module a."""\n'
            'import os\n\n'
            'def f(x):\n'
            '    """Doubles x."""\n'
            '    assert x is not None\n'
            '    return [os.sep * 2, x * 2, {"k": (1, 2.5, None)}]\n\n'
            'class C:\n'
            '    def m(self):\n'
            '        return f(3)\n')


@pytest.fixture
def tree(daemon, tmp_path):
    """A compiled tree: pkg/a.py (damaged by the tests) and pkg/b.py (left alone)."""
    root = tmp_path / "tree"
    a = write(root / "pkg" / "a.py", SOURCE_A)
    b = write(root / "pkg" / "b.py", "Y = 2\n")
    write(root / "pkg" / "__init__.py", "")
    p = daemon.pycq("compile", str(root))
    assert p.returncode == 0, describe(p)
    return {"root": str(root), "a": a, "b": b, "pyc_a": cache_path(a), "pyc_b": cache_path(b)}


def _truncate(t, tmp_path):
    data = read(t["pyc_a"])
    assert len(data) > 100
    with open(t["pyc_a"], "wb") as f:
        f.write(data[:100])
    return {t["pyc_a"]: "corrupt"}


def _bad_magic(t, tmp_path):
    data = read(t["pyc_a"])
    with open(t["pyc_a"], "wb") as f:
        f.write(b"\x00\x00\x0d\x0a" + data[4:])
    return {t["pyc_a"]: "corrupt"}


def _bad_flags(t, tmp_path):
    data = read(t["pyc_a"])
    with open(t["pyc_a"], "wb") as f:
        f.write(data[:4] + b"\x07\x00\x00\x00" + data[8:])
    return {t["pyc_a"]: "corrupt"}


def _header_only(t, tmp_path):
    data = read(t["pyc_a"])
    with open(t["pyc_a"], "wb") as f:
        f.write(data[:16])
    return {t["pyc_a"]: "corrupt"}


def _bad_marshal(t, tmp_path):
    # a valid header for the current source, marshal data that does not load
    data = read(t["pyc_a"])
    with open(t["pyc_a"], "wb") as f:
        f.write(data[:16] + b"\xff" * 64)
    return {t["pyc_a"]: "corrupt"}


def _stale(t, tmp_path):
    st = os.stat(t["a"])
    os.utime(t["a"], (st.st_atime, st.st_mtime - 1000))
    return {t["pyc_a"]: "stale"}


def _foreign_replaced(t, tmp_path):
    # what py_compile writes for -OO, under the -O0 name: a valid .pyc for
    # the current source, but not what the daemon wrote
    before = read(t["pyc_a"])
    py_compile_ref(t["a"], t["pyc_a"], opt=2)
    assert read(t["pyc_a"]) != before
    return {t["pyc_a"]: "foreign"}


def _foreign_never_ours(t, tmp_path):
    c = write(os.path.join(t["root"], "pkg", "c.py"), "Z = 3\n")
    py_compile_ref(c, cache_path(c))
    return {cache_path(c): "foreign"}


def _orphan(t, tmp_path):
    ghost = os.path.join(os.path.dirname(t["pyc_a"]), "ghost.cpython-311.pyc")
    shutil.copy(t["pyc_b"], ghost)
    return {ghost: "orphan"}


def _orphan_source_deleted(t, tmp_path):
    os.unlink(t["a"])
    return {t["pyc_a"]: "orphan"}


def _missing(t, tmp_path):
    os.unlink(t["pyc_a"])
    return {t["pyc_a"]: "missing"}


def _missing_cache_dir(t, tmp_path):
    shutil.rmtree(os.path.dirname(t["pyc_a"]))
    return {t["pyc_a"]: "missing", t["pyc_b"]: "missing",
            cache_path(os.path.join(t["root"], "pkg", "__init__.py")): "missing"}


DAMAGE = {
    "corrupt-truncated": _truncate,
    "corrupt-bad-magic": _bad_magic,
    "corrupt-bad-flags": _bad_flags,
    "corrupt-header-only": _header_only,
    "corrupt-bad-marshal": _bad_marshal,
    "stale": _stale,
    "foreign-replaced": _foreign_replaced,
    "foreign-never-ours": _foreign_never_ours,
    "orphan": _orphan,
    "orphan-source-deleted": _orphan_source_deleted,
    "missing": _missing,
    "missing-cache-dir": _missing_cache_dir,
}


def test_verify_clean_tree(daemon, tree, tmp_path):
    p = daemon.pycq("compile", "-O", "1", "-O", "2", tree["root"])
    assert p.returncode == 0, describe(p)
    rc, problems = verify_problems(daemon, tree["root"])
    assert rc == 0 and problems == {}, problems
    p = daemon.pycq("verify", tree["root"])
    assert p.returncode == 0, describe(p)
    assert p.out.strip().splitlines()[-1] == "9 checked, 0 problems", describe(p)
    # a file argument, source or .pyc
    for path in (tree["a"], tree["pyc_a"]):
        rc, problems = verify_problems(daemon, path)
        assert rc == 0 and problems == {}, (path, problems)


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_verify_finds(daemon, tree, tmp_path, kind):
    want = DAMAGE[kind](tree, tmp_path)
    rc, problems = verify_problems(daemon, tree["root"])
    assert rc == 1, problems
    assert problems == want

    p = daemon.pycq("verify", tree["root"])
    assert p.returncode == 1, describe(p)
    for path, problem in want.items():
        assert any(line.startswith("%s: %s: " % (path, problem)) for line in p.out.splitlines()), describe(p)
    assert p.out.strip().splitlines()[-1].endswith(" %d problems" % len(want)), describe(p)


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_repair(daemon, tree, tmp_path, kind):
    want = DAMAGE[kind](tree, tmp_path)
    sources_left = [s for s in (tree["a"], tree["b"]) if os.path.exists(s)]

    p = daemon.pycq("--json", "repair", tree["root"])
    assert p.returncode == 0, describe(p)
    recs = json_records(p)
    assert {r["path"]: r["problem"] for r in recs} == want, recs
    for r in recs:
        assert r["result"] == "ok", r
        assert r["action"] == ("removed" if r["problem"] == "orphan" else "recompiled"), r

    rc, problems = verify_problems(daemon, tree["root"])
    assert rc == 0 and problems == {}, "still wrong after repair: %r" % problems
    for path, problem in want.items():
        if problem == "orphan":
            assert not os.path.lexists(path), "orphan %s not removed" % path
    v = validate(tree["root"])
    v.assert_clean()
    # everything left is what py_compile writes
    for i, src in enumerate(sources_left):
        ref = py_compile_ref(src, tmp_path / ("ref%d.pyc" % i))
        assert read(cache_path(src)) == ref, "%s differs from py_compile's output" % cache_path(src)
    for path, problem in want.items():
        if problem != "orphan":
            src = os.path.join(os.path.dirname(os.path.dirname(path)),
                               os.path.basename(path).split(".")[0] + ".py")
            assert read(path) == py_compile_ref(src, tmp_path / "ref-x.pyc"), path


def test_repair_human_output(daemon, tree, tmp_path):
    _truncate(tree, tmp_path)
    ghost = _orphan(tree, tmp_path)
    p = daemon.pycq("repair", tree["root"])
    assert p.returncode == 0, describe(p)
    lines = p.out.splitlines()
    assert any(l.startswith("%s: corrupt: recompiled (ok)" % tree["pyc_a"]) for l in lines), describe(p)
    assert any(l.startswith("%s: orphan: removed (ok)" % list(ghost)[0]) for l in lines), describe(p)
    assert lines[-1] == "2 repaired, 0 failed", describe(p)


def test_repair_records_provenance(daemon, tree, tmp_path):
    """A repair's recompile is a write in the record; why shows it, and the
    file on disk matches it."""
    _truncate(tree, tmp_path)
    p = daemon.pycq("repair", tree["root"])
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("--json", "why", tree["a"])
    assert p.returncode == 0, describe(p)
    recs = json_records(p)
    assert len(recs) == 2, recs
    assert recs[0]["matches_disk"] is True and recs[1]["matches_disk"] is False, recs


def test_verify_package(daemon, tmp_path):
    a = write(tmp_path / "p1" / "a.py", "A = 1\n")
    b = write(tmp_path / "p2" / "b.py", "B = 1\n")
    for src, pkg in ((a, "one"), (b, "two")):
        p = daemon.pycq("compile", "--package=" + pkg, src)
        assert p.returncode == 0, describe(p)
    os.unlink(cache_path(a))
    with open(cache_path(b), "r+b") as f:
        f.truncate(20)
    p = daemon.pycq("--json", "verify", "--package=one")
    assert p.returncode == 1, describe(p)
    assert [(r["path"], r["problem"]) for r in json_records(p)] == [(cache_path(a), "missing")]
    p = daemon.pycq("--json", "verify", "--package=two")
    assert p.returncode == 1, describe(p)
    assert [(r["path"], r["problem"]) for r in json_records(p)] == [(cache_path(b), "corrupt")]
    p = daemon.pycq("repair", "--package=one")
    assert p.returncode == 0, describe(p)
    assert os.path.exists(cache_path(a))
    p = daemon.pycq("--json", "verify", "--package=one")
    assert p.returncode == 0 and json_records(p) == [], describe(p)
    # the other package was left alone
    assert os.path.getsize(cache_path(b)) == 20


def test_verify_open_to_nobody(daemon, tree, tmp_path, nobody_client, make_traversable):
    _missing(tree, tmp_path)
    # nobody's verify acts with nobody's rights: without a way to the tree
    # it learns nothing of it
    p = run_client("--json", "verify", tree["root"], socket_path=daemon.socket, user="nobody",
                   pycqueue=nobody_client)
    assert p.returncode == 4, describe(p)
    assert "a.cpython" not in p.out + p.err, describe(p)
    make_traversable(tmp_path)
    p = run_client("--json", "verify", tree["root"], socket_path=daemon.socket, user="nobody",
                   pycqueue=nobody_client)
    assert p.returncode == 1, describe(p)
    assert [(r["path"], r["problem"]) for r in json_records(p)] == [(tree["pyc_a"], "missing")]
    p = run_client("repair", tree["root"], socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    assert p.returncode == 4, describe(p)
    assert not os.path.exists(tree["pyc_a"])


def test_repair_records_requester(daemon, tree, tmp_path):
    """A repair's recompile names the process that asked for the repair."""
    _truncate(tree, tmp_path)
    c = daemon.pycq_popen("repair", tree["root"])
    out, err = c.communicate(timeout=120)
    assert c.returncode == 0, (out, err)
    p = daemon.pycq("--json", "why", tree["a"])
    assert p.returncode == 0, describe(p)
    newest = json_records(p)[0]
    assert newest["pid"] == c.pid, "repair's write not attributed to the repair client (pid %d): %r" % (c.pid, newest)
    assert newest.get("exe") == os.path.realpath(PYCQUEUE), newest
    assert "repair" in newest.get("cmdline", ""), newest
