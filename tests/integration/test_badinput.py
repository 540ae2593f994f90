# SPDX-License-Identifier: MIT
"""Guarantee 5: bad input gets a clear per-file error, never a crash; odd
but valid input compiles exactly as py_compile compiles it. Every test ends
by checking that the daemon still serves another compile."""

import os
import re
import subprocess
import time

import pytest

from pycqtest import (CLIENT_TIMEOUT, PYTHON, assert_tree_compiled, cache_path, clean_env, count_pycs,
                      describe, fsb, fss, is_regular, py_compile_ref, read, sources_in, validate,
                      wait_until, write)


def assert_serves(d, tmp_path):
    """The daemon still compiles a fresh, ordinary file."""
    src = write(tmp_path / "still-serving" / ("ok%d.py" % time.monotonic_ns()), "def f():\n    return 42\n")
    p = d.pycq("compile", src)
    assert p.returncode == 0, "daemon no longer serves: " + describe(p)
    assert is_regular(cache_path(src))
    validate(os.path.dirname(src)).assert_clean()


def assert_like_py_compile(d, tmp_path, src, *args, opt=0, mode="timestamp"):
    p = d.pycq("compile", *args, src)
    assert p.returncode == 0, describe(p)
    target = cache_path(src, opt=opt)
    assert is_regular(target), "no .pyc at %r" % target
    os.makedirs(tmp_path / "ref", exist_ok=True)
    want = py_compile_ref(src, tmp_path / "ref" / ("%d.pyc" % time.monotonic_ns()), opt, mode)
    assert read(target) == want, "differs from py_compile"
    return p


def assert_failed(p, src):
    assert p.returncode == 1, describe(p)
    assert fss(src) in p.err, "error does not name the file: " + describe(p)
    assert not os.path.exists(cache_path(fsb(src))), "a .pyc was written for a failed file"


def test_syntax_error(daemon, tmp_path):
    src = write(tmp_path / "src" / "bad.py", "x = 1\n\ndef f(:\n    pass\n")
    p = daemon.pycq("compile", src)
    assert_failed(p, src)
    assert "%s:3:" % fss(src) in p.err, describe(p)
    assert "SyntaxError" in p.err, describe(p)
    assert re.search(r"\b0 compiled, 0 up to date, 0 coalesced, 1 failed", p.out), describe(p)
    assert_serves(daemon, tmp_path)


def test_syntax_error_among_good_files(daemon, tmp_path):
    """One bad file fails alone; the others compile."""
    d = tmp_path / "src"
    for i in range(10):
        write(d / ("good%d.py" % i), "X = %d\n" % i)
    bad = write(d / "bad.py", "if True\n    pass\n")
    p = daemon.pycq("compile", str(d))
    assert p.returncode == 1, describe(p)
    assert "%s:1:" % fss(bad) in p.err and "SyntaxError" in p.err, describe(p)
    for i in range(10):
        assert is_regular(cache_path(str(d / ("good%d.py" % i))))
    assert "10 compiled" in p.out and "1 failed" in p.out, describe(p)
    assert_serves(daemon, tmp_path)


def test_nul_byte(daemon, tmp_path):
    src = write(tmp_path / "src" / "nul.py", b"x = 1\n\x00\ny = 2\n")
    p = daemon.pycq("compile", src)
    assert_failed(p, src)
    assert re.search(r"null|NUL", p.err), "no clear reason: " + describe(p)
    assert re.search(r"(ValueError|SyntaxError)", p.err), describe(p)
    assert_serves(daemon, tmp_path)


def test_invalid_utf8(daemon, tmp_path):
    src = write(tmp_path / "src" / "badutf8.py", b"x = '\xff\xfe'\n")
    p = daemon.pycq("compile", src)
    assert_failed(p, src)
    assert "SyntaxError" in p.err and "utf-8" in p.err, describe(p)
    assert_serves(daemon, tmp_path)


def test_latin1_cookie(daemon, tmp_path):
    src = write(tmp_path / "src" / "latin.py",
                b"# -*- coding: latin-1 -*-\nx = '\xe9t\xe9 \xe0 \xdf'\ndef f():\n    return x\n")
    assert_like_py_compile(daemon, tmp_path, src)
    assert_serves(daemon, tmp_path)


def test_bom_crlf(daemon, tmp_path):
    src = write(tmp_path / "src" / "bomcrlf.py",
                b"\xef\xbb\xbf# comment\r\nx = 'caf\xc3\xa9'\r\ndef f():\r\n    return x\r\n")
    assert_like_py_compile(daemon, tmp_path, src)
    assert_serves(daemon, tmp_path)


def test_empty_file(daemon, tmp_path):
    src = write(tmp_path / "src" / "empty.py", b"")
    assert_like_py_compile(daemon, tmp_path, src)
    assert_serves(daemon, tmp_path)


def test_800k_file(daemon, tmp_path):
    lines = []
    size = 0
    i = 0
    while size < 800_000:
        line = 'VALUE_%06d = ("%s", %d, %d.5)\n' % (i, "x" * 40, i, i)
        lines.append(line)
        size += len(line)
        i += 1
    src = write(tmp_path / "src" / "big.py", "".join(lines))
    assert os.path.getsize(src) >= 800_000
    assert_like_py_compile(daemon, tmp_path, src)
    assert_serves(daemon, tmp_path)


NAMES = {
    "non-utf8": b"caf\xe9-\xff.py",
    "space": b"with space.py",
    "newline": b"new\nline.py",
    "leading-dash": b"-dash.py",
    "dots": b"a.b.c.py",
}


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_odd_file_name(daemon, tmp_path, kind):
    d = fsb(tmp_path / "names")
    src = write(os.path.join(d, NAMES[kind]), b"def f():\n    return __file__\n")
    assert_like_py_compile(daemon, tmp_path, src)
    # exactly the importlib cache name, nothing else
    assert os.listdir(os.path.join(d, b"__pycache__")) == [os.path.basename(cache_path(src))]
    validate(d).assert_clean()
    assert_serves(daemon, tmp_path)


def test_leading_dash_relative_after_double_dash(daemon, tmp_path):
    d = fsb(tmp_path / "names")
    src = write(os.path.join(d, b"-rel.py"), b"X = 1\n")
    p = daemon.pycq("compile", "--", "-rel.py", cwd=d)
    assert p.returncode == 0, describe(p)
    assert read(cache_path(src)) == py_compile_ref(src, tmp_path / "ref.pyc")
    assert_serves(daemon, tmp_path)


def test_directory_with_odd_names(daemon, tmp_path):
    """The same names found by the daemon's own directory walk."""
    d = fsb(tmp_path / "names")
    for n in NAMES.values():
        write(os.path.join(d, n), b"X = %r\n" % n)
    p = daemon.pycq("compile", d)
    assert p.returncode == 0, describe(p)
    v = assert_tree_compiled(d)
    assert len(v.valid) == len(NAMES)
    for n in NAMES.values():
        src = os.path.join(d, n)
        assert read(cache_path(src)) == py_compile_ref(src, tmp_path / "ref.pyc"), n


def test_source_vanishes_mid_batch(daemon, stdlib_tree, tmp_path):
    tree = stdlib_tree()
    sources = sources_in(tree)
    client = daemon.pycq_popen("compile", "-O", "0", "-O", "1", "-O", "2", tree)
    wait_until(lambda: client.poll() is not None or count_pycs(tree) >= 30, 120)
    assert client.poll() is None, "test premise: the compile finished before a source vanished"
    victim = next(s for s in reversed(sources)
                  if not any(os.path.exists(cache_path(s, opt=o)) for o in (0, 1, 2)))
    os.unlink(victim)

    out, err = client.communicate(timeout=CLIENT_TIMEOUT)
    err = err.decode("utf-8", "surrogateescape")
    assert client.returncode in (0, 1), "exit %s\n%s" % (client.returncode, err)
    if client.returncode == 1:
        assert fss(victim) in err, err
    # the others compiled; a .pyc of the vanished file is tolerated (it may
    # have been read before the unlink) but must be valid if present
    assert_tree_compiled(tree, opts=(0, 1, 2),
                         allow_orphans=[cache_path(victim, opt=o) for o in (0, 1, 2)])
    assert_serves(daemon, tmp_path)


# --- a source whose compile takes seconds -------------------------------------

def slow_source(n):
    # The compiler's handling of a closure over n locals is quadratic in n
    # while memory stays small (n = 40000: ~7 s, ~120 MB on CPython 3.11).
    return ("def f():\n" + "".join("    v%d = %d\n" % (i, i) for i in range(n))
            + "    return lambda: (" + ",".join("v%d" % i for i in range(n)) + ")\n")


_TIME_COMPILE = r'''
import sys, time
data = open(sys.argv[1], "rb").read()
t = time.monotonic()
compile(data, sys.argv[1], "exec")
print(time.monotonic() - t)
'''


@pytest.fixture(scope="session")
def slow_source_text(tmp_path_factory):
    """A source on which plain compile() in /usr/bin/python3 takes > 3 s,
    verified here."""
    path = str(tmp_path_factory.mktemp("slow") / "slow.py")
    n = 40000
    for _ in range(4):
        text = slow_source(n)
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([PYTHON, "-I", "-c", _TIME_COMPILE, path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=clean_env(), timeout=600)
        assert p.returncode == 0, p.stderr
        if float(p.stdout) > 3.0:
            return text
        n = int(n * 1.5)
    pytest.fail("could not make a source that takes > 3 s to compile")


def test_job_timeout(start_daemon, tmp_path, slow_source_text):
    d = start_daemon(config="job_timeout = 1\n")
    src = write(tmp_path / "src" / "slow.py", slow_source_text)
    p = d.pycq("compile", src)
    assert_failed(p, src)
    assert "%s: TimeoutError: " % fss(src) in p.err, describe(p)
    assert_serves(d, tmp_path)
