# SPDX-License-Identifier: MIT
"""The pure-Python client module (issue 8, section 3): pycqueue.py_compile
and pycqueue.compileall against the standard library's py_compile and
compileall, on the same inputs.

Each comparison copies one source tree twice (mtimes kept), runs the same
snippet in each copy, once importing the pycqueue modules and once the
standard library's, under the same interpreter, and asserts the same exit
status, stdout and stderr (return values, exceptions and their fields are
printed by the snippet), the same files with the same bytes and the same
hard links. Through a real daemon it also asserts that the daemon did the
writing; in the fallback, that the warning is said once and the rest is
identical. Both /usr/bin/python3 and /usr/bin/pypy3 run the module (the
calling interpreter is the compiling one). The daemon-level tests drive
the new protocol fields (explicit targets, display names, error detail)
directly: a symlink, FIFO or directory at an explicit target is refused, a
target in a symlinked directory lands in the real one, non-UTF-8 names
survive, and malformed pairings are EINVAL."""

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

from pycqtest import PYPY, SRCDIR, clean_env

PYTHON = "/usr/bin/python3"
MODULE_PATH = os.path.join(SRCDIR, "python")
sys.path.insert(0, MODULE_PATH)

from pycqueue import _client  # noqa: E402

INTERPRETERS = [PYTHON, PYPY]
WARNING = "; compiling in-process"

# Sources: good, a syntax error, docstrings and asserts (optimization
# levels differ), and a module without either (levels give equal bytes).
GOOD = "x = 1\ndef f():\n    return x\n"
BAD = "def f(:\n    pass\n"
DOCS = '"""Module doc."""\nassert True, "kept at -O0"\ndef g():\n    """g doc."""\n    return 2\n'
MTIME = 1_700_000_000


def make_tree(root):
    files = {
        "pkg/__init__.py": GOOD,
        "pkg/good.py": GOOD,
        "pkg/bad.py": BAD,
        "pkg/docs.py": DOCS,
        "pkg/notes.txt": "not python\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/deep/leaf.py": GOOD,
        "pkg/tests/test_x.py": DOCS,
        "other/mod.py": DOCS,
    }
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.utime(path, (MTIME, MTIME))
    os.makedirs(os.path.join(root, "outside"), exist_ok=True)
    with open(os.path.join(root, "outside", "target.py"), "w") as f:
        f.write(GOOD)
    os.utime(os.path.join(root, "outside", "target.py"), (MTIME, MTIME))
    os.symlink("../outside/target.py", os.path.join(root, "pkg", "linked.py"))


def tree_state(root):
    """{relative path: (kind, bytes or link text, inode group)}: what the run
    left, hard links shown as a shared group number."""
    state, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                state[rel] = ("link", os.readlink(path), None)
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = ("dir", None, None)
            elif stat.S_ISREG(st.st_mode):
                group = None
                if st.st_nlink > 1:
                    group = inodes.setdefault(st.st_ino, len(inodes))
                with open(path, "rb") as f:
                    state[rel] = ("file", f.read(), group)
            else:
                state[rel] = ("special", None, None)
    return state


PRELUDE = '''
import os, sys, re, json
if os.environ.get("USE_PYCQUEUE") == "1":
    from pycqueue import py_compile, compileall
else:
    import py_compile, compileall

def show(label, call):
    try:
        value = call()
        print(label, "->", repr(value))
    except py_compile.PyCompileError as e:
        # exc_value: its type, message, file and line (pycqueue-python(7):
        # not the column and source text).
        v = e.exc_value
        what = (v.msg, v.filename, v.lineno) if isinstance(v, SyntaxError) else str(v)
        print(label, "PyCompileError", repr(e.msg), e.exc_type_name, repr(e.file),
              type(v).__name__, repr(what), e.args[:2], e.args[3])
    except Exception as e:
        print(label, type(e).__name__, str(e))
    sys.stdout.flush()
'''


class Runner:
    """Runs one snippet in two copies of the tree, as pycqueue and as the
    standard library, and compares."""

    def __init__(self, tmp_path, socket_path):
        self.tmp_path = tmp_path
        self.socket_path = socket_path

    def env(self, use, interp, extra=None):
        env = clean_env({"PYTHONPATH": MODULE_PATH, "PYTHONDONTWRITEBYTECODE": "1",
                         "PYCQUEUE_SOCKET": self.socket_path, "PYCQUEUE_NO_AUTOSTART": "1",
                         "USE_PYCQUEUE": "1" if use else "0"})
        env.update(extra or {})
        return env

    def run(self, interp, args, cwd, env, stdin=None):
        return subprocess.run([interp] + args, cwd=cwd, env=env, capture_output=True, timeout=300,
                              input=stdin)

    def pair(self, interp, snippet=None, argv=None, module=None, env=None, stdin=None, name="t"):
        results = []
        for use in (True, False):
            root = self.tmp_path / ("%s-%s-%s" % (name, os.path.basename(interp), "pycq" if use else "stdl"))
            if root.exists():
                shutil.rmtree(root)
            root.mkdir()
            make_tree(str(root))
            if snippet is not None:
                args = ["-c", PRELUDE + textwrap.dedent(snippet)]
            else:
                args = ["-m", ("pycqueue." + module) if use else module] + list(argv)
            p = self.run(interp, args, str(root), self.env(use, interp, env), stdin=stdin)
            results.append((p, tree_state(str(root))))
        return results

    def compare(self, interp, fallback=False, **kw):
        (mine, mine_tree), (std, std_tree) = self.pair(interp, **kw)
        mine_err = mine.stderr.decode(errors="replace")
        if fallback:
            warnings = [line for line in mine_err.splitlines() if line.endswith(WARNING)]
            assert len(warnings) == 1, mine_err
            mine_err = "".join(line + "\n" for line in mine_err.splitlines() if not line.endswith(WARNING))
            if mine.stderr.endswith(b"\n") is False and mine_err.endswith("\n"):
                mine_err = mine_err[:-1]
        std_err = std.stderr.decode(errors="replace")
        if std_err.startswith("Traceback"):
            # An uncaught exception: ours passes through more frames; the
            # exception itself must be the same.
            std_err, mine_err = std_err.splitlines()[-1], mine_err.splitlines()[-1]
        mine_out = mine.stdout.decode(errors="replace").replace("-pycq", "-stdl")
        mine_err = mine_err.replace("-pycq", "-stdl")
        assert (mine.returncode, mine_out, mine_err) == \
            (std.returncode, std.stdout.decode(errors="replace"), std_err)
        # The copies' names differ in one word of equal length, which the
        # code objects of absolute paths hold.
        assert {k: (v[0], v[1].replace(b"-pycq", b"-stdl") if isinstance(v[1], bytes) else v[1], v[2])
                for k, v in mine_tree.items()} == std_tree
        return mine, std


def compiled_count(daemon):
    p = daemon.pycq("--json", "status")
    assert p.returncode == 0, p.err
    return json.loads(p.out)["totals"]["compiled"]


@pytest.fixture
def runner(tmp_path, daemon):
    return Runner(tmp_path, daemon.socket)


@pytest.fixture
def nodaemon(tmp_path):
    if os.environ.get("PYCQUEUE_TEST_SANITIZED"):
        # scripts/run-tests' sanitizer run: without a daemon the module runs
        # the standard library in-process, no C code of ours to check.
        pytest.skip("runs no pycqueue C code: nothing for the sanitizers")
    return Runner(tmp_path, str(tmp_path / "no-such.sock"))


# --- py_compile -------------------------------------------------------------------

PY_COMPILE_CASES = {
    "default": 'show("c", lambda: py_compile.compile("pkg/good.py"))',
    "cfile-dfile": 'show("c", lambda: py_compile.compile("pkg/good.py", cfile="out/deep/good.pyc", dfile="/shown/good.py"))',
    "cfile-relative-in-cwd": 'show("c", lambda: py_compile.compile("pkg/docs.py", cfile="docs.pyc"))',
    "optimize": '\n'.join('show("o%d", lambda: py_compile.compile("pkg/docs.py", optimize=%d))' % (o, o)
                          for o in (-1, 0, 1, 2)),
    "modes": '\n'.join('show("%s", lambda: py_compile.compile("pkg/docs.py", cfile="m-%s.pyc", '
                       'invalidation_mode=py_compile.PycInvalidationMode.%s))' % (m, m, m)
                       for m in ("TIMESTAMP", "CHECKED_HASH", "UNCHECKED_HASH")),
    "error-doraise": '\n'.join('show("q%d", lambda: py_compile.compile("pkg/bad.py", doraise=True, quiet=%d))'
                               % (q, q) for q in (0, 1, 2)),
    "error-stderr": '\n'.join('show("q%d", lambda: py_compile.compile("pkg/bad.py", dfile="shown.py", quiet=%d))'
                              % (q, q) for q in (0, 1, 2)),
    "missing-source": 'show("m", lambda: py_compile.compile("pkg/missing.py"))',
    "directory-source": 'show("d", lambda: py_compile.compile("pkg/sub", cfile="x.pyc"))',
    "symlink-target": 'os.symlink("elsewhere.pyc", "link.pyc")\nshow("l", lambda: py_compile.compile("pkg/good.py", cfile="link.pyc"))',
    "fifo-target": 'os.mkfifo("fifo.pyc")\nshow("f", lambda: py_compile.compile("pkg/good.py", cfile="fifo.pyc"))',
    "directory-target": 'os.mkdir("dir.pyc")\nshow("d", lambda: py_compile.compile("pkg/good.py", cfile="dir.pyc"))',
    "symlinked-source": 'show("s", lambda: py_compile.compile("pkg/linked.py"))',
    "non-py-name": 'show("n", lambda: py_compile.compile("pkg/notes.txt", cfile="notes.pyc"))',
    "absolute": 'show("a", lambda: py_compile.compile(os.path.abspath("pkg/good.py")) == os.path.abspath("pkg/__pycache__") + "/" + os.listdir("pkg/__pycache__")[0])',
    "pathlike": 'import pathlib\nshow("p", lambda: py_compile.compile(pathlib.Path("pkg/good.py"), cfile=pathlib.Path("pl.pyc")))',
    "non-utf8-name": 'n = os.fsdecode(b"pkg/\\xff\\xfe.py")\nopen(n, "w").write("y = 2\\n")\nos.utime(n, (1700000000, 1700000000))\n'
                     'show("u", lambda: py_compile.compile(n) is not None)\nshow("v", lambda: py_compile.compile(n, cfile=os.fsdecode(b"o\\xfd.pyc"), dfile=os.fsdecode(b"\\xfc.py")))',
}


@pytest.mark.parametrize("interp", INTERPRETERS)
@pytest.mark.parametrize("case", sorted(PY_COMPILE_CASES))
def test_py_compile_matches_stdlib(runner, daemon, interp, case):
    before = compiled_count(daemon)
    mine, _ = runner.compare(interp, snippet=PY_COMPILE_CASES[case], name=case)
    if b"-> '" in mine.stdout or b"-> True" in mine.stdout:
        assert compiled_count(daemon) > before, "the daemon wrote nothing"


@pytest.mark.parametrize("interp", INTERPRETERS)
def test_py_compile_source_date_epoch(runner, daemon, interp):
    """SOURCE_DATE_EPOCH makes checked-hash the default, for both."""
    mine, _ = runner.compare(interp, snippet='show("c", lambda: py_compile.compile("pkg/docs.py"))',
                             env={"SOURCE_DATE_EPOCH": "1"}, name="sde")
    assert b"-> 'pkg/__pycache__/docs." in mine.stdout


PY_COMPILE_CLI = {
    "ok": (["pkg/good.py", "pkg/docs.py"], None),
    "error": (["pkg/good.py", "pkg/bad.py", "pkg/docs.py"], None),
    "error-quiet": (["-q", "pkg/bad.py"], None),
    "missing": (["pkg/nope.py"], None),
    "stdin": (["-"], b"pkg/good.py\npkg/docs.py\n"),
}


@pytest.mark.parametrize("interp", INTERPRETERS)
@pytest.mark.parametrize("case", sorted(PY_COMPILE_CLI))
def test_py_compile_command_line(runner, interp, case):
    argv, stdin = PY_COMPILE_CLI[case]
    mine, _ = runner.compare(interp, module="py_compile", argv=argv, stdin=stdin, name="cli-" + case)
    assert mine.returncode == (0 if case in ("ok", "stdin") else 1)


# --- compileall -------------------------------------------------------------------

COMPILEALL_CASES = {
    "default": 'show("d", lambda: compileall.compile_dir("pkg"))',
    "quiet1": 'show("d", lambda: compileall.compile_dir("pkg", quiet=1))',
    "quiet2": 'show("d", lambda: compileall.compile_dir("pkg", quiet=2))',
    "again-up-to-date": 'show("1", lambda: compileall.compile_dir("pkg", quiet=1))\nshow("2", lambda: compileall.compile_dir("pkg"))',
    "force": 'show("1", lambda: compileall.compile_dir("pkg", quiet=1))\nshow("2", lambda: compileall.compile_dir("pkg", force=True))',
    "rx": 'show("d", lambda: compileall.compile_dir("pkg", rx=re.compile(r"tests|bad")))',
    "maxlevels": '\n'.join('show("m%d", lambda: compileall.compile_dir("pkg", maxlevels=%d, force=True))' % (m, m)
                           for m in (0, 1)),
    "ddir": 'show("d", lambda: compileall.compile_dir("pkg", ddir="/installed/pkg"))',
    "stripdir-prependdir": 'show("d", lambda: compileall.compile_dir(os.path.abspath("pkg"), stripdir=os.path.abspath("."), prependdir="/usr/lib/x"))',
    "ddir-and-stripdir": 'show("d", lambda: compileall.compile_dir("pkg", ddir="/a", stripdir="/b"))',
    "limit-sl-dest": 'show("d", lambda: compileall.compile_dir("pkg", limit_sl_dest="pkg"))\nshow("e", lambda: compileall.compile_dir("pkg", limit_sl_dest="outside", force=True))',
    "legacy": 'show("d", lambda: compileall.compile_dir("pkg", legacy=True))',
    "legacy-levels": 'show("d", lambda: compileall.compile_dir("other", legacy=True, optimize=[2, 0]))',
    "optimize-list": 'show("d", lambda: compileall.compile_dir("pkg", optimize=[0, 1, 2]))',
    "optimize-int": 'show("d", lambda: compileall.compile_dir("pkg", optimize=2))',
    "hardlink-dupes": 'show("d", lambda: compileall.compile_dir("pkg", optimize=[0, 1, 2], hardlink_dupes=True))',
    "hardlink-one-level": 'show("d", lambda: compileall.compile_dir("pkg", hardlink_dupes=True))',
    "modes": '\n'.join('show("%s", lambda: compileall.compile_dir("pkg", force=True, quiet=1, '
                       'invalidation_mode=py_compile.PycInvalidationMode.%s))' % (m, m)
                       for m in ("CHECKED_HASH", "UNCHECKED_HASH", "TIMESTAMP")),
    # quiet=1: with workers the standard library's processes print in
    # whatever order they finish.
    "workers": 'show("w0", lambda: compileall.compile_dir("pkg", workers=0, quiet=1))\nshow("w2", lambda: compileall.compile_dir("other", workers=2, quiet=1))',
    "workers-negative": 'show("w", lambda: compileall.compile_dir("pkg", workers=-1))',
    "missing-dir": 'show("d", lambda: compileall.compile_dir("nope"))',
    "compile-file": 'show("g", lambda: compileall.compile_file("pkg/good.py"))\nshow("b", lambda: compileall.compile_file("pkg/bad.py", quiet=1))\n'
                    'show("t", lambda: compileall.compile_file("pkg/notes.txt"))\nshow("o", lambda: compileall.compile_file("other/mod.py", ddir="/d", optimize=[0, 2], legacy=False))',
    "compile-file-symlink-target": 'os.makedirs("pkg/__pycache__")\nos.symlink("/nonexistent", "pkg/__pycache__/good.%s.opt-1.pyc" % sys.implementation.cache_tag)\n'
                                   'show("f", lambda: compileall.compile_file("pkg/good.py", optimize=[0, 1, 2]))',
    "compile-path": 'sys.path[:] = ["", "other", "pkg/sub"]\nshow("p", lambda: compileall.compile_path(maxlevels=1))\nshow("q", lambda: compileall.compile_path(skip_curdir=0, quiet=2, force=True))',
    "compile-path-stops": 'sys.path[:] = ["pkg", "other"]\nshow("p", lambda: compileall.compile_path(quiet=1))',
    "pathlike": 'import pathlib\nshow("d", lambda: compileall.compile_dir(pathlib.Path("pkg"), quiet=1))',
}


@pytest.mark.parametrize("interp", INTERPRETERS)
@pytest.mark.parametrize("case", sorted(COMPILEALL_CASES))
def test_compileall_matches_stdlib(runner, daemon, interp, case):
    before = compiled_count(daemon)
    mine, _ = runner.compare(interp, snippet=COMPILEALL_CASES[case], name=case)
    if b"Compiling 'pkg/good.py'" in mine.stdout or b"Compiling 'other/mod.py'" in mine.stdout:
        assert compiled_count(daemon) > before, "the daemon wrote nothing"


def test_compileall_walk_is_one_request(runner, daemon, tmp_path):
    """A compile_dir of many files is one request to the daemon."""
    before = json.loads(daemon.pycq("--json", "status").out)["totals"]["requests"]
    mine, _ = runner.compare(PYTHON, snippet='show("d", lambda: compileall.compile_dir("pkg", quiet=1, optimize=[0, 1]))',
                             name="one")
    after = json.loads(daemon.pycq("--json", "status").out)["totals"]["requests"]
    assert after - before == 1
    assert mine.stdout.count(b"Compiling") == 0  # quiet=1 prints errors only
    assert b"*** Error compiling 'pkg/bad.py'" in mine.stdout


COMPILEALL_CLI = {
    "dir": ["pkg"],
    "quiet": ["-q", "pkg", "other"],
    "qq": ["-qq", "pkg"],
    "force-levels": ["-f", "-o", "0", "-o", "2", "other"],
    "rx": ["-x", "bad", "pkg"],
    "ddir": ["-d", "/inst", "pkg"],
    "strip-prepend": ["-s", "pkg", "-p", "/pre", "pkg"],
    "legacy": ["-b", "other"],
    "maxlevels": ["-r", "1", "pkg"],
    "no-recurse": ["-l", "pkg"],
    "hardlink": ["--hardlink-dupes", "-o", "0", "-o", "1", "pkg"],
    "invalidation": ["--invalidation-mode", "unchecked-hash", "pkg"],
    "workers": ["-j", "0", "other"],
    "file": ["pkg/good.py", "pkg/bad.py"],
    "list-stdin": ["-i", "-", "pkg/docs.py"],
    "limit-sl": ["-e", "pkg", "pkg"],
    "usage": ["-d", "a", "-s", "b", "pkg"],
    "bad-option": ["--no-such-option"],
}


@pytest.mark.parametrize("interp", INTERPRETERS)
@pytest.mark.parametrize("case", sorted(COMPILEALL_CLI))
def test_compileall_command_line(runner, interp, case):
    stdin = b"pkg/good.py\nother/mod.py\n" if case == "list-stdin" else None
    mine, _ = runner.compare(interp, module="compileall", argv=COMPILEALL_CLI[case], stdin=stdin,
                             name="acli-" + case)
    if case in ("dir", "qq", "ddir", "file", "hardlink", "invalidation", "no-recurse", "rx"):
        assert mine.returncode == (0 if case == "rx" else 1)


# --- the compiling interpreter ------------------------------------------------------

def test_pypy_compiles_through_the_daemon(runner, daemon):
    """Run by pypy3, the module asks the daemon for pypy3's .pyc files."""
    mine, _ = runner.compare(PYPY, snippet='show("d", lambda: compileall.compile_dir("other", optimize=[0, 1]))',
                             name="pypy")
    p = daemon.pycq("--json", "status")
    interpreters = [w["interpreter"] for w in json.loads(p.out)["workers"]]
    assert any("pypy" in i for i in interpreters), interpreters
    assert b"Compiling 'other/mod.py'" in mine.stdout


# --- without a daemon ----------------------------------------------------------------

@pytest.mark.parametrize("interp", INTERPRETERS)
@pytest.mark.parametrize("case", ["default", "error-stderr", "symlink-target", "cfile-dfile"])
def test_py_compile_fallback_matches_stdlib(nodaemon, interp, case):
    nodaemon.compare(interp, fallback=True, snippet=PY_COMPILE_CASES[case] + "\n" + PY_COMPILE_CASES["optimize"],
                     name="fb-" + case)


@pytest.mark.parametrize("interp", INTERPRETERS)
@pytest.mark.parametrize("case", ["default", "hardlink-dupes", "legacy", "compile-file", "again-up-to-date"])
def test_compileall_fallback_matches_stdlib(nodaemon, interp, case):
    nodaemon.compare(interp, fallback=True, snippet=COMPILEALL_CASES[case], name="fb-" + case)


@pytest.mark.parametrize("case", ["dir", "file", "quiet"])
def test_compileall_command_line_fallback(nodaemon, case):
    mine, _ = nodaemon.compare(PYTHON, fallback=True, module="compileall", argv=COMPILEALL_CLI[case],
                               name="fbcli-" + case)
    assert mine.returncode == 1


def test_strict_makes_no_daemon_an_error(nodaemon, tmp_path):
    root = tmp_path / "strict"
    root.mkdir()
    make_tree(str(root))
    env = nodaemon.env(True, PYTHON, {"PYCQUEUE_STRICT": "1"})
    p = nodaemon.run(PYTHON, ["-m", "pycqueue.py_compile", "pkg/good.py"], str(root), env)
    assert p.returncode == 1
    assert b"cannot reach pycqueued" in p.stderr and b"PYCQUEUE_STRICT" in p.stderr
    assert not os.path.exists(root / "pkg" / "__pycache__")
    p = nodaemon.run(PYTHON, ["-m", "pycqueue.compileall", "-q", "pkg"], str(root), env)
    assert p.returncode == 1
    assert b"DaemonError" in p.stderr
    assert not os.path.exists(root / "pkg" / "__pycache__")


def test_non_root_caller_compiles_in_process_silently(daemon, tmp_path):
    """A root daemon refuses other users' compiles: the module compiles as
    the user, with no warning, and the daemon writes nothing."""
    root = tmp_path / "user"
    root.mkdir()
    make_tree(str(root))
    os.chmod(tmp_path, 0o755)
    subprocess.run(["chown", "-R", "nobody:nogroup", str(root)], check=True)
    before = compiled_count(daemon)
    env = clean_env({"PYTHONPATH": MODULE_PATH, "PYCQUEUE_SOCKET": daemon.socket, "PYTHONDONTWRITEBYTECODE": "1"})
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", PYTHON,
                        "-m", "pycqueue.compileall", "-q", "other"], cwd=str(root), env=env,
                       capture_output=True, timeout=120)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
    pyc = root / "other" / "__pycache__" / "mod.cpython-311.pyc"
    assert pyc.exists() and os.stat(pyc).st_uid == int(subprocess.check_output(["id", "-u", "nobody"]))
    assert compiled_count(daemon) == before


# --- the protocol fields, at the daemon ------------------------------------------------

def request(daemon, items, levels=(0,), pythons=(PYTHON,), mode=0):
    """Sends one forced MSG_COMPILE with per-path targets and displays."""
    sock = _client._connect(daemon.socket)
    try:
        fields = [_client._string(_client.TAG_CTX_TOOL, "test")]
        for p in pythons:
            fields.append(_client._field(_client.TAG_PYTHON, os.fsencode(p)))
        for level in levels:
            fields.append(_client._u64(_client.TAG_OPT_LEVEL, level))
        fields += [_client._u64(_client.TAG_INVALIDATION, mode), _client._u64(_client.TAG_FORCE, 1),
                   _client._u64(_client.TAG_REPORT_ALL, 1)]
        for item in items:
            source, target, display = (list(item) + [None, None])[:3]
            fields.append(_client._field(_client.TAG_PATH, source))
            if target is not None:
                fields.append(_client._field(_client.TAG_PATH_TARGET, target))
            if display is not None:
                fields.append(_client._field(_client.TAG_PATH_DISPLAY, display))
        sock.sendall(_client.frame(_client.MSG_COMPILE, fields))
        results = []
        while True:
            msg_type, reply = _client._recv_frame(sock)
            if msg_type == _client.MSG_ERROR:
                code = [f for t, f in reply if t == _client.TAG_ERRNO][0]
                raise _client.DaemonError(int.from_bytes(code, "little"), "refused")
            if msg_type == _client.MSG_DONE:
                return results
            if msg_type == _client.MSG_RESULT:
                results.append({t: v for t, v in reply})
    finally:
        sock.close()


def stdlib_pyc(source, dfile, level=0):
    """The bytes py_compile writes for @source (bytes path) as @dfile."""
    code = ("import py_compile, sys, os\n"
            "c = py_compile.compile(os.fsdecode(sys.argv[1]), cfile=sys.argv[2], dfile=os.fsdecode(sys.argv[3]),"
            " doraise=True, optimize=%d)\nsys.stdout.buffer.write(open(c, 'rb').read())\n" % level)
    out = os.fsencode(os.path.join(os.path.dirname(os.fsdecode(source)), "stdlib-ref.pyc"))
    p = subprocess.run([PYTHON, "-c", code, source, out, dfile], capture_output=True, check=True,
                       env=clean_env())
    os.unlink(out)
    return p.stdout


def outcome(result):
    return int.from_bytes(result[_client.TAG_RESULT_OUTCOME], "little")


@pytest.fixture
def srcdir(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "m.py").write_text(GOOD)
    (d / "bad.py").write_text(BAD)
    return d


def test_explicit_target_and_display(daemon, srcdir, tmp_path):
    target = tmp_path / "out" / "m.pyc"
    target.parent.mkdir()
    r = request(daemon, [(os.fsencode(srcdir / "m.py"), os.fsencode(target), b"/shown/m.py")])
    assert [outcome(x) for x in r] == [_client.OUTCOME_COMPILED]
    assert r[0][_client.TAG_RESULT_TARGET] == os.fsencode(target)
    assert target.read_bytes() == stdlib_pyc(os.fsencode(srcdir / "m.py"), b"/shown/m.py")
    assert not (srcdir / "__pycache__").exists()
    assert stat.S_IMODE(os.stat(target).st_mode) & 0o022 == 0
    # Provenance records the explicit target.
    why = daemon.pycq("--json", "why", str(target))
    assert why.returncode == 0 and str(target) in why.out


def test_symlink_at_explicit_target_is_refused(daemon, srcdir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "link.pyc"
    link.symlink_to(victim)
    r = request(daemon, [(os.fsencode(srcdir / "m.py"), os.fsencode(link), b"")])
    assert outcome(r[0]) == _client.OUTCOME_FAILED
    assert r[0][_client.TAG_ERROR_TYPE] == b"FileExistsError"
    assert os.path.islink(link) and victim.read_bytes() == b"precious"


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_special_file_at_explicit_target_is_refused(daemon, srcdir, tmp_path, kind):
    target = tmp_path / "t.pyc"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    r = request(daemon, [(os.fsencode(srcdir / "m.py"), os.fsencode(target), b"")])
    assert outcome(r[0]) == _client.OUTCOME_FAILED
    assert r[0][_client.TAG_ERROR_TYPE] == b"FileExistsError"
    assert (stat.S_ISFIFO if kind == "fifo" else stat.S_ISDIR)(os.lstat(target).st_mode)


def test_explicit_target_in_a_symlinked_directory(daemon, srcdir, tmp_path):
    """The target's directory is canonicalized once, as a source's is: the
    .pyc lands in the real directory, and that is what is reported."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real)
    r = request(daemon, [(os.fsencode(srcdir / "m.py"), os.fsencode(tmp_path / "alias" / "m.pyc"), b"")])
    assert outcome(r[0]) == _client.OUTCOME_COMPILED
    assert r[0][_client.TAG_RESULT_TARGET] == os.fsencode(real / "m.pyc")
    assert (real / "m.pyc").is_file() and not (real / "m.pyc").is_symlink()


def test_explicit_target_directory_must_exist(daemon, srcdir, tmp_path):
    r = request(daemon, [(os.fsencode(srcdir / "m.py"), os.fsencode(tmp_path / "nodir" / "m.pyc"), b"")])
    assert outcome(r[0]) == _client.OUTCOME_FAILED
    assert r[0][_client.TAG_ERROR_TYPE] == b"FileNotFoundError"
    assert not (tmp_path / "nodir").exists()


def test_non_utf8_names(daemon, tmp_path):
    d = os.fsencode(tmp_path) + b"/dir\xff"
    os.mkdir(d)
    source = d + b"/mod\xfe.py"
    with open(source, "w") as f:
        f.write(GOOD)
    target = d + b"/out\xfd.pyc"
    r = request(daemon, [(source, target, b"shown\xfc.py")])
    assert [outcome(x) for x in r] == [_client.OUTCOME_COMPILED]
    assert r[0][_client.TAG_RESULT_SOURCE] == source and r[0][_client.TAG_RESULT_TARGET] == target
    with open(target, "rb") as f:
        assert f.read() == stdlib_pyc(source, b"shown\xfc.py")


def test_display_with_default_target(daemon, srcdir):
    r = request(daemon, [(os.fsencode(srcdir / "m.py"), b"", b"relative/m.py")], levels=(1,))
    assert outcome(r[0]) == _client.OUTCOME_COMPILED
    pyc = srcdir / "__pycache__" / "m.cpython-311.opt-1.pyc"
    assert pyc.read_bytes() == stdlib_pyc(os.fsencode(srcdir / "m.py"), b"relative/m.py", level=1)


def test_error_detail_is_py_compiles_text(daemon, srcdir):
    r = request(daemon, [(os.fsencode(srcdir / "bad.py"), b"", b"shown/bad.py")])
    assert outcome(r[0]) == _client.OUTCOME_FAILED
    code = ("import py_compile\ntry:\n    py_compile.compile(%r, dfile='shown/bad.py', doraise=True)\n"
            "except py_compile.PyCompileError as e:\n    print(e.msg, end='')\n" % str(srcdir / "bad.py"))
    want = subprocess.run([PYTHON, "-c", code], capture_output=True, check=True, env=clean_env()).stdout
    assert r[0][_client.TAG_ERROR_DETAIL] == want
    assert r[0][_client.TAG_ERROR_TYPE] == b"SyntaxError"


def test_directory_with_explicit_target_fails_that_path(daemon, srcdir, tmp_path):
    r = request(daemon, [(os.fsencode(srcdir), os.fsencode(tmp_path / "x.pyc"), b"")])
    assert outcome(r[0]) == _client.OUTCOME_FAILED
    assert r[0][_client.TAG_ERROR_TYPE] == b"IsADirectoryError"


@pytest.mark.parametrize("shape", ["two-levels", "two-pythons", "too-few-targets", "too-many-displays", "relative"])
def test_bad_pairings_are_einval(daemon, srcdir, tmp_path, shape):
    m = os.fsencode(srcdir / "m.py")
    t = os.fsencode(tmp_path / "x.pyc")
    kwargs = {}
    if shape == "two-levels":
        items, kwargs = [(m, t)], {"levels": (0, 1)}
    elif shape == "two-pythons":
        items, kwargs = [(m, t)], {"pythons": (PYTHON, PYPY)}
    elif shape == "too-few-targets":
        items = [(m, t), (m,)]
    elif shape == "too-many-displays":
        items = [(m, None, b"a"), (m,)]
    else:
        items = [(m, b"x.pyc")]
    with pytest.raises(_client.DaemonError) as e:
        request(daemon, items, **kwargs)
    assert e.value.errno == errno.EINVAL
    assert not os.path.exists(tmp_path / "x.pyc")
