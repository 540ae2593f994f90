# SPDX-License-Identifier: MIT
"""The content cache (pycqueued(8), CONTENT CACHE): a reinstall-like cycle
(clean, then compile the same tree) is served from the cache, byte for byte
what py_compile writes; every change of an input of the key misses; a
damaged or untrusted entry is found, deleted and the file compiled; a cache
directory others may write is refused and compiles go on; the size bound
holds."""

import os
import pwd
import shutil
import struct

import pytest

from pycqtest import (CPYTHON_TAG, PYPY, PYPY_TAG, PYTHON, cache_path, describe, json_records,
                      py_compile_ref, read, sha256_of, write)

MODES = ("timestamp", "checked-hash", "unchecked-hash")


def make_tree(root, n=8, salt=""):
    """@n modules under @root (one in a package), each with its own code."""
    paths = []
    for i in range(n):
        sub = "pkg" if i % 3 == 0 else "."
        text = ('"""module %d%s"""\nimport os\nVALUE = %d\n\ndef f(x, y=%d):\n    assert x\n'
                '    return [x * y for _ in range(%d)]\n\nclass C%d:\n    def m(self):\n        return f(1)\n'
                % (i, salt, i, i, i, i))
        paths.append(write(os.path.normpath(os.path.join(str(root), sub, "mod%d.py" % i)), text))
    write(os.path.join(str(root), "pkg", "__init__.py"), "")
    paths.append(os.path.join(str(root), "pkg", "__init__.py"))
    return sorted(paths)


def cache_config(cache_dir, extra=""):
    return "cache_directory = %s\ndurability = none\n%s" % (cache_dir, extra)


def cache_stats(d):
    return d.status()["cache"]


def entries(cache_dir):
    return sorted(n for n in os.listdir(cache_dir) if len(n) == 64)


def compile_ok(d, *args):
    p = d.pycq("compile", *args)
    assert p.returncode == 0, describe(p)
    return p


def clean_ok(d, *paths):
    p = d.pycq("clean", *paths)
    assert p.returncode == 0, describe(p)


def assert_like_py_compile(tmp_path, sources, mode="timestamp", opt=0, interpreter=PYTHON, tag=CPYTHON_TAG):
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir(exist_ok=True)
    for i, src in enumerate(sources):
        ref = py_compile_ref(src, str(ref_dir / ("%d.pyc" % i)), opt=opt, mode=mode, interpreter=interpreter)
        got = read(cache_path(src, tag=tag, opt=opt))
        assert got == ref, "%s differs from py_compile's (mode %s, -O%d)" % (src, mode, opt)


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


@pytest.fixture
def cd(start_daemon, cache_dir):
    """A daemon with its content cache in the test's directory."""
    return start_daemon(config=cache_config(cache_dir))


# --- hits ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_reinstall_is_served_from_cache(cd, cache_dir, tmp_path, mode):
    tree = tmp_path / "tree"
    sources = make_tree(tree)
    compile_ok(cd, "--invalidation-mode=" + mode, tree)
    first = {s: read(cache_path(s)) for s in sources}
    st = cache_stats(cd)
    assert st["enabled"] is True and st["hits"] == 0 and st["stores"] == len(sources), st
    assert len(entries(cache_dir)) == len(sources)
    assert os.stat(cache_dir).st_mode & 0o7777 == 0o700

    clean_ok(cd, tree)
    assert not any(os.path.exists(cache_path(s)) for s in sources)
    compile_ok(cd, "--invalidation-mode=" + mode, tree)

    st = cache_stats(cd)
    assert st["hits"] == len(sources) and st["misses"] == len(sources), st
    assert st["hit_rate"] == 0.5 and st["rejected"] == 0, st
    assert {s: read(cache_path(s)) for s in sources} == first
    assert_like_py_compile(tmp_path, sources, mode=mode)

    # Provenance records the cached write like any compile.
    recs = json_records(cd.pycq("--json", "why", sources[0]))
    assert recs[0]["outcome"] == "compiled", recs[0]
    assert recs[0]["pyc_sha256"] == sha256_of(cache_path(sources[0])), recs[0]
    assert recs[0]["source_sha256"] == sha256_of(sources[0]), recs[0]


def test_touched_source_gets_its_new_mtime(cd, tmp_path):
    src = write(tmp_path / "t" / "touched.py", "def g():\n    return 42\n", mtime=1_600_000_000)
    compile_ok(cd, src)
    assert struct.unpack("<I", read(cache_path(src))[8:12])[0] == 1_600_000_000
    clean_ok(cd, src)
    os.utime(src, (1_700_000_123, 1_700_000_123))
    compile_ok(cd, src)

    st = cache_stats(cd)
    assert st["hits"] == 1, st
    pyc = read(cache_path(src))
    assert struct.unpack("<I", pyc[8:12])[0] == 1_700_000_123
    assert_like_py_compile(tmp_path, [src])


def test_status_text_shows_the_cache(cd, cache_dir):
    p = cd.pycq("status")
    assert p.returncode == 0, describe(p)
    line = [l.strip() for l in p.out.splitlines() if l.strip().startswith("Cache: ")]
    assert line, p.out
    assert line[0].startswith("Cache: no lookups yet; 0 entries, 0B of 256.0M in " + cache_dir), p.out


# --- misses ---------------------------------------------------------------------------

def test_changed_byte_misses(cd, tmp_path):
    src = write(tmp_path / "c" / "m.py", "X = 1\n")
    compile_ok(cd, src)
    clean_ok(cd, src)
    write(src, "X = 2\n")  # same size
    compile_ok(cd, src)
    st = cache_stats(cd)
    assert st["hits"] == 0 and st["misses"] == 2, st
    assert_like_py_compile(tmp_path, [src])


def test_moved_file_misses(cd, tmp_path):
    a = write(tmp_path / "a" / "m.py", "def where():\n    return __file__\n")
    compile_ok(cd, a)
    b = str(tmp_path / "b" / "m.py")
    os.makedirs(os.path.dirname(b))
    shutil.copy2(a, b)
    shutil.rmtree(tmp_path / "a")
    compile_ok(cd, b)
    st = cache_stats(cd)
    assert st["hits"] == 0 and st["misses"] == 2, st
    # co_filename is the new path, as py_compile writes it
    assert b.encode() in read(cache_path(b))
    assert_like_py_compile(tmp_path, [b])


def test_other_interpreter_misses(cd, tmp_path):
    if not os.path.exists(PYPY):
        pytest.skip("pypy3 not installed")
    src = write(tmp_path / "i" / "m.py", "def h(a, b):\n    return a @ b if a else b\n")
    compile_ok(cd, src)
    compile_ok(cd, "--python=" + PYPY, src)
    st = cache_stats(cd)
    assert st["hits"] == 0 and st["misses"] == 2, st
    assert_like_py_compile(tmp_path, [src], interpreter=PYPY, tag=PYPY_TAG)

    # Each interpreter then hits its own entry.
    clean_ok(cd, src)
    compile_ok(cd, "--python=" + PYPY, src)
    compile_ok(cd, src)
    st = cache_stats(cd)
    assert st["hits"] == 2, st
    assert_like_py_compile(tmp_path, [src], interpreter=PYPY, tag=PYPY_TAG)
    assert_like_py_compile(tmp_path, [src])


def test_optimization_levels_miss(cd, tmp_path):
    src = write(tmp_path / "o" / "m.py", '"""doc"""\ndef k(x):\n    """more"""\n    assert x\n    return x\n')
    compile_ok(cd, src)
    compile_ok(cd, "-O", "1", "-O", "2", src)
    st = cache_stats(cd)
    assert st["hits"] == 0 and st["misses"] == 3, st
    for opt in (0, 1, 2):
        assert_like_py_compile(tmp_path, [src], opt=opt)

    clean_ok(cd, src)
    compile_ok(cd, "-O", "0", "-O", "1", "-O", "2", src)
    st = cache_stats(cd)
    assert st["hits"] == 3, st
    for opt in (0, 1, 2):
        assert_like_py_compile(tmp_path, [src], opt=opt)


def test_hash_modes_miss(cd, tmp_path):
    src = write(tmp_path / "h" / "m.py", "Y = [1, 2, 3]\n")
    for i, mode in enumerate(MODES):
        # The .pyc of the previous mode is not current for this one.
        compile_ok(cd, "--invalidation-mode=" + mode, src)
        st = cache_stats(cd)
        assert st["hits"] == 0 and st["misses"] == i + 1, st
        assert_like_py_compile(tmp_path, [src], mode=mode)
    # Each mode has its own entry, and each hits.
    for i, mode in enumerate(MODES):
        clean_ok(cd, src)
        compile_ok(cd, "--invalidation-mode=" + mode, src)
        st = cache_stats(cd)
        assert st["hits"] == i + 1, st
        assert_like_py_compile(tmp_path, [src], mode=mode)


def test_forced_compile_does_not_look(cd, tmp_path):
    src = write(tmp_path / "f" / "m.py", "Z = 3\n")
    compile_ok(cd, src)
    compile_ok(cd, "-f", src)
    st = cache_stats(cd)
    assert st["hits"] == 0 and st["misses"] == 1 and st["stores"] == 2, st


# --- trust ----------------------------------------------------------------------------

def tamper_flip(path):
    data = bytearray(read(path))
    data[-1] ^= 0x01
    with open(path, "wb") as f:
        f.write(data)


def tamper_truncate(path):
    os.truncate(path, os.path.getsize(path) - 5)


def tamper_symlink(path):
    # a perfectly valid entry, reached through a symlink
    saved = path + ".saved"
    os.rename(path, saved)
    os.symlink(saved, path)


def tamper_chown(path):
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, nobody.pw_gid)


def tamper_mode(path):
    os.chmod(path, 0o644)


@pytest.mark.parametrize("tamper", [tamper_flip, tamper_truncate, tamper_symlink, tamper_chown, tamper_mode],
                         ids=["flip", "truncate", "symlink", "chown-nobody", "mode"])
def test_tampered_entry_is_detected_and_recompiled(cd, cache_dir, tmp_path, tamper):
    src = write(tmp_path / "x" / "m.py", "def z():\n    return 'genuine'\n")
    compile_ok(cd, src)
    good = read(cache_path(src))
    (name,) = entries(cache_dir)
    entry = os.path.join(cache_dir, name)
    tamper(entry)
    clean_ok(cd, src)
    compile_ok(cd, src)

    st = cache_stats(cd)
    assert st["hits"] == 0 and st["rejected"] == 1, st
    assert read(cache_path(src)) == good
    assert_like_py_compile(tmp_path, [src])
    # The bad entry is gone; the fresh compile stored a good one in its place.
    s = os.lstat(entry)
    assert s.st_uid == os.geteuid() and s.st_mode & 0o7777 == 0o600 and os.path.isfile(entry)
    clean_ok(cd, src)
    compile_ok(cd, src)
    assert cache_stats(cd)["hits"] == 1
    assert read(cache_path(src)) == good


@pytest.mark.parametrize("where", ["cache", "parent"])
def test_directory_writable_by_others_is_refused(start_daemon, tmp_path, where):
    parent = tmp_path / "shared"
    cache_dir = parent / "cache"
    cache_dir.mkdir(parents=True)
    os.chmod(cache_dir if where == "cache" else parent, 0o777)
    d = start_daemon(config=cache_config(str(cache_dir)))

    src = write(tmp_path / "w" / "m.py", "W = 'still compiled'\n")
    for _ in range(2):
        compile_ok(d, src)
        assert_like_py_compile(tmp_path, [src])
        clean_ok(d, src)
    st = cache_stats(d)
    assert st["enabled"] is False and "writ" in st["reason"], st
    assert os.listdir(cache_dir) == []
    assert d.log_text().count("Content cache off") == 1, d.log_text()


def test_cache_off_with_zero_bound(start_daemon, tmp_path):
    cache_dir = tmp_path / "cache"
    d = start_daemon(config=cache_config(str(cache_dir), "cache_max_size = 0\n"))
    src = write(tmp_path / "z" / "m.py", "Q = 0\n")
    compile_ok(d, src)
    assert cache_stats(d)["enabled"] is False
    assert not cache_dir.exists()


# --- bound ------------------------------------------------------------------------------

def test_size_bound_holds(start_daemon, tmp_path):
    bound = 65536
    cache_dir = tmp_path / "cache"
    d = start_daemon(config=cache_config(str(cache_dir), "cache_max_size = %d\n" % bound))
    tree = tmp_path / "many"
    for i in range(150):
        body = "".join("def f%d_%d(x):\n    return x + %d\n" % (i, k, k) for k in range(12))
        write(tree / ("m%03d.py" % i), body)
    compile_ok(d, tree)

    on_disk = sum(os.path.getsize(os.path.join(cache_dir, n)) for n in entries(cache_dir))
    st = cache_stats(d)
    assert on_disk <= bound, on_disk
    assert st["size_bytes"] <= bound and st["max_size_bytes"] == bound, st
    assert st["stores"] == 150 and st["evicted"] > 0, st
    # The daemon's count errs high, never low (stores go on while it evicts).
    assert st["entries"] >= len(entries(cache_dir)) and st["size_bytes"] >= on_disk, st
