# SPDX-License-Identifier: MIT
"""Guarantee 3: a tree compiled through the daemon is byte-identical to what
compileall writes for the same sources, interpreter, optimization level and
invalidation mode.

co_filename embeds the absolute source path, so the reference is made at the
very path the daemon compiles later: compileall runs on copy A at TREE, A is
renamed aside, and an identical fresh copy (mtimes preserved) is put at TREE
for the daemon."""

import os

import pytest

from pycqtest import (CPYTHON_TAG, PYPY, PYPY_TAG, PYTHON, compileall_ref, describe, differing_code,
                      expected_pycs, fsb, non_cache_files, pycache_files, read, validate)


def compare_trees(ref, tree, tag, opts, by_value_with=None):
    want = pycache_files(ref)
    # the reference itself is what we think it is
    assert want == expected_pycs(ref, tag, opts), "compileall produced an unexpected set of files"
    have = pycache_files(tree)
    assert have == want, "different .pyc sets: missing %r, extra %r" % (
        sorted(want - have)[:10], sorted(have - want)[:10])
    if by_value_with:
        differing = differing_code(ref, tree, sorted(want), by_value_with)
    else:
        differing = [r for r in sorted(want)
                     if read(os.path.join(fsb(ref), r)) != read(os.path.join(fsb(tree), r))]
    assert not differing, "%d of %d .pyc files differ from compileall's, e.g. %r" % (
        len(differing), len(want), differing[:10])


def identity(tmp_path, daemon, make_tree, interpreter, compileall_args, client_args, tag, opts,
             by_value=False):
    tree = str(tmp_path / "tree")
    make_tree(tree)
    compileall_ref(tree, interpreter, compileall_args)
    ref = str(tmp_path / "ref")
    os.rename(tree, ref)
    make_tree(tree)
    assert pycache_files(tree) == set()
    before = non_cache_files(tree)

    p = daemon.pycq("compile", *client_args, tree)
    assert p.returncode == 0, describe(p)
    compare_trees(ref, tree, tag, opts, interpreter if by_value else None)
    assert non_cache_files(tree) == before, "the compile added or removed files outside __pycache__"
    return tree


def test_full_stdlib_identical_to_compileall(tmp_path, daemon, stdlib_tree):
    tree = identity(tmp_path, daemon, stdlib_tree, PYTHON, [], [], CPYTHON_TAG, (0,))
    n = len(expected_pycs(tree))
    assert n > 500
    # a second run finds everything up to date and writes nothing
    p = daemon.pycq("compile", tree)
    assert p.returncode == 0, describe(p)
    assert "0 compiled, %d up to date" % n in p.out, describe(p)
    assert daemon.status()["totals"]["compiled"] == n


VARIANTS = {
    "O1": (["-o", "1"], ["-O", "1"], (1,)),
    "O2": (["-o", "2"], ["-O", "2"], (2,)),
    "O0-O1-O2": (["-o", "0", "-o", "1", "-o", "2"], ["-O", "0", "-O", "1", "-O", "2"], (0, 1, 2)),
    "checked-hash": (["--invalidation-mode", "checked-hash"], ["--invalidation-mode=checked-hash"], (0,)),
    "unchecked-hash": (["--invalidation-mode", "unchecked-hash"], ["--invalidation-mode=unchecked-hash"],
                       (0,)),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_subset_identical_to_compileall(tmp_path, daemon, stdlib_tree, variant):
    ca_args, cl_args, opts = VARIANTS[variant]
    identity(tmp_path, daemon, lambda dest: stdlib_tree(dest, subset=True), PYTHON, ca_args, cl_args,
             CPYTHON_TAG, opts)


def test_pypy_same_as_compileall(tmp_path, daemon, pypy_tree):
    # PyPy 3.9's own output is not byte-reproducible: whether marshal writes a
    # string as interned depends on the compiling process's state, and two runs
    # of `pypy3 -m compileall` on the same tree differ in a third of the files.
    # So: identical headers and equal code objects (compared in PyPy).
    tree = identity(tmp_path, daemon, pypy_tree, PYPY, [], ["--python=" + PYPY], PYPY_TAG, (0,),
                    by_value=True)
    # only PyPy's files were written, and they load in PyPy
    assert not any(b"cpython" in p for p in pycache_files(tree))
    v = validate(tree, PYPY)
    v.assert_clean()
    assert len(v.valid) == len(expected_pycs(tree, PYPY_TAG))


def test_pypy_and_cpython_in_one_request(tmp_path, daemon, pypy_tree):
    """--python repeated compiles for each interpreter."""
    tree = pypy_tree(str(tmp_path / "tree"))
    p = daemon.pycq("compile", "--python=" + PYPY, "--python=" + PYTHON, tree)
    # PyPy's own library is Python 3.9 code; CPython 3.11 compiles all of it
    assert p.returncode == 0, describe(p)
    for interp, tag in ((PYPY, PYPY_TAG), (PYTHON, CPYTHON_TAG)):
        v = validate(tree, interp)
        v.assert_clean()
        want = {os.path.join(fsb(tree), r) for r in expected_pycs(tree, tag)}
        assert set(v.valid) == want, tag
