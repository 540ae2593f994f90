# SPDX-License-Identifier: MIT
"""Guarantee 6, no confused deputy: nothing is written through a symlink,
into a FIFO or over a directory; .pyc files never get group/other write
bits; only root may ask a root daemon to write; request paths are
canonicalized."""

import os
import stat

import pytest

from pycqtest import (cache_path, describe, fss, is_regular, pycache_files, py_compile_ref,
                      read, run_client, validate, write)


def assert_serves(d, tmp_path):
    src = write(tmp_path / "still-serving" / "ok.py", "X = 1\n")
    p = d.pycq("compile", "-f", src)
    assert p.returncode == 0, "daemon no longer serves: " + describe(p)
    assert is_regular(cache_path(src))


def test_symlinked_pycache_refused(daemon, tmp_path):
    src = write(tmp_path / "src" / "mod.py", "X = 1\n")
    elsewhere = tmp_path / "elsewhere"
    os.mkdir(elsewhere)
    os.symlink(elsewhere, tmp_path / "src" / "__pycache__")

    p = daemon.pycq("compile", src)
    assert p.returncode == 1, describe(p)
    assert fss(src) in p.err, describe(p)
    assert os.listdir(elsewhere) == [], "written through the symlinked __pycache__"
    assert os.readlink(tmp_path / "src" / "__pycache__") == str(elsewhere)
    assert_serves(daemon, tmp_path)


def _make_symlink(path, tmp_path):
    victim = write(tmp_path / "victim.txt", b"precious\n")
    os.symlink(victim, path)
    return lambda: (os.path.islink(path) and os.readlink(path) == os.fsdecode(victim)
                    and read(victim) == b"precious\n")


def _make_dangling_symlink(path, tmp_path):
    dest = tmp_path / "nonexistent-target.pyc"
    os.symlink(dest, path)
    return lambda: os.path.islink(path) and not os.path.lexists(dest)


def _make_fifo(path, tmp_path):
    os.mkfifo(path, 0o644)
    return lambda: stat.S_ISFIFO(os.lstat(path).st_mode)


def _make_directory(path, tmp_path):
    os.mkdir(path)
    write(os.path.join(path, "inside"), b"keep\n")
    return lambda: (stat.S_ISDIR(os.lstat(path).st_mode) and os.listdir(path) == ["inside"]
                    and read(os.path.join(path, "inside")) == b"keep\n")


OBSTACLES = {"symlink": _make_symlink, "dangling-symlink": _make_dangling_symlink,
             "fifo": _make_fifo, "directory": _make_directory}


@pytest.mark.parametrize("kind", sorted(OBSTACLES))
def test_non_regular_target_refused(daemon, tmp_path, kind):
    src = write(tmp_path / "src" / "mod.py", "X = 1\n")
    target = cache_path(src)
    os.makedirs(os.path.dirname(target))
    unchanged = OBSTACLES[kind](target, tmp_path)
    assert unchanged()

    # short timeouts: a daemon that opens the FIFO would block on it
    p = daemon.pycq("compile", src, timeout=60)
    assert p.returncode == 1, describe(p)
    assert fss(src) in p.err, describe(p)
    assert unchanged(), "the %s at the target name was changed" % kind
    # nothing else appeared in __pycache__ (no temporary file left behind)
    assert os.listdir(os.path.dirname(target)) == [os.path.basename(target)]
    # -f does not change that
    p = daemon.pycq("compile", "-f", src, timeout=60)
    assert p.returncode == 1, describe(p)
    assert unchanged()
    assert_serves(daemon, tmp_path)


def test_world_writable_source_gives_safe_pyc(daemon, tmp_path):
    src = write(tmp_path / "src" / "mod.py", "X = 1\n", mode=0o666)
    assert os.stat(src).st_mode & 0o777 == 0o666
    p = daemon.pycq("compile", src)
    assert p.returncode == 0, describe(p)
    st = os.lstat(cache_path(src))
    assert stat.S_ISREG(st.st_mode)
    assert st.st_mode & 0o022 == 0, "pyc mode %o has group/other write bits" % (st.st_mode & 0o7777)
    # and a recompile over an existing file keeps it that way
    p = daemon.pycq("compile", "-f", src)
    assert p.returncode == 0, describe(p)
    assert os.lstat(cache_path(src)).st_mode & 0o022 == 0


def test_nonroot_compile_refused_status_allowed(daemon, tmp_path, nobody_client):
    tree = tmp_path / "tree"
    for i in range(3):
        write(tree / ("m%d.py" % i), "X = %d\n" % i)
    src_dir_before = sorted(os.listdir(tree))

    p = run_client("compile", str(tree), socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    assert p.returncode == 4, describe(p)
    assert p.err.strip(), "no message for the refusal"
    assert pycache_files(tree) == set(), "a refused request wrote files"
    assert sorted(os.listdir(tree)) == src_dir_before

    p = run_client("compile", "-f", str(tree / "m0.py"), socket_path=daemon.socket, user="nobody",
                   pycqueue=nobody_client)
    assert p.returncode == 4, describe(p)
    assert pycache_files(tree) == set()

    p = run_client("status", socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
    assert p.returncode == 0, describe(p)
    assert "%d" % daemon.pid in p.out, describe(p)

    # root still may
    p = daemon.pycq("compile", str(tree))
    assert p.returncode == 0, describe(p)
    validate(tree).assert_clean()


def test_dotdot_and_symlinked_dirs_canonicalized(daemon, tmp_path):
    real = tmp_path / "real"
    src = write(real / "pkg" / "mod.py", "def f():\n    return 1\n")
    top = write(real / "top.py", "X = 1\n")
    os.symlink(real, tmp_path / "link")
    os.mkdir(tmp_path / "a")
    os.symlink(real / "pkg", tmp_path / "a" / "pkglink")

    # a symlinked directory: the .pyc names the real path
    p = daemon.pycq("compile", str(tmp_path / "link" / "pkg" / "mod.py"))
    assert p.returncode == 0, describe(p)
    v = validate(real)
    v.assert_clean()
    assert list(v.valid) == [os.fsencode(cache_path(str(src)))]
    assert v.valid[os.fsencode(cache_path(str(src)))]["co_filename"] == str(src)
    assert read(cache_path(str(src))) == py_compile_ref(src, tmp_path / "ref.pyc")

    # ".." after a symlink resolves physically: a/pkglink/.. is real, not a
    p = daemon.pycq("compile", str(tmp_path / "a" / "pkglink") + "/../top.py")
    assert p.returncode == 0, describe(p)
    assert os.listdir(tmp_path / "a") == ["pkglink"], "something was written beside the link"
    v = validate(real)
    v.assert_clean()
    assert v.valid[os.fsencode(cache_path(str(top)))]["co_filename"] == str(top)
    assert read(cache_path(str(top))) == py_compile_ref(top, tmp_path / "ref2.pyc")

    # plain ".." components
    p = daemon.pycq("compile", "-f", str(real / "pkg" / ".." / "pkg" / "." / "mod.py"))
    assert p.returncode == 0, describe(p)
    assert validate(real).valid[os.fsencode(cache_path(str(src)))]["co_filename"] == str(src)
    assert sorted(os.listdir(real / "pkg")) == ["__pycache__", "mod.py"]
