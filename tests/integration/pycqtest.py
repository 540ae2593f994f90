# SPDX-License-Identifier: MIT
"""Helpers for the pycqueue integration tests.

The tests drive the real binaries: pycqueued on a private socket and state
directory, pycqueue against it. Everything here talks to them (and to the
reference compilers, py_compile and compileall) through subprocesses, each
with a timeout, so that a hung daemon fails a test instead of the suite.

Paths may be str, bytes or pathlib objects; whenever a path may hold bytes
that are not UTF-8 the helpers work on bytes (os.fsencode) internally.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

PYTHON = "/usr/bin/python3"  # Debian's CPython 3.11; never the pyenv shim on PATH
PYPY = "/usr/bin/pypy3"
CPYTHON_TAG = "cpython-311"
PYPY_TAG = "pypy39"

# PATH for every child: /usr/bin first so that "python3" is Debian's.
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

SRCDIR = os.environ.get("PYCQUEUE_SRCDIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PYCQUEUED = os.environ.get("PYCQUEUED") or "/work/main/_build/pycqueued"
PYCQUEUE = os.environ.get("PYCQUEUE") or "/work/main/_build/pycqueue"

CLIENT_TIMEOUT = 180  # seconds; generous, only there to turn a hang into a failure

# Exit codes of the contract.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_PERM, EXIT_OTHER = 0, 1, 2, 3, 4, 5


def clean_env(extra=None, drop=()):
    """The environment for every child: no SOURCE_DATE_EPOCH (it changes the
    default invalidation mode), no inherited systemd variables, a PATH where
    python3 is /usr/bin/python3."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SOURCE_DATE_EPOCH", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                        "LISTEN_FDNAMES", "PYCQUEUE_SOCKET", "PYCQUEUE_DAEMON", "PYCQUEUE_STARTED_BY",
                        "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONHASHSEED",
                        "PYTHONOPTIMIZE", "PYTHONPATH", "PYTHONHOME")
           and k not in drop}
    env["PATH"] = CLEAN_PATH
    env["LC_ALL"] = "C.UTF-8"
    # A test's pycqueued never joins the machine's system bus (test_dbus.py
    # sets a private one).
    env.setdefault("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/pycqueue-tests-have-no-system-bus")
    if extra:
        env.update(extra)
    return env


def fsb(path):
    return os.fsencode(os.fspath(path))


def fss(path):
    return os.fsdecode(os.fspath(path))


# --- cache paths ---------------------------------------------------------------

def cache_path(source, tag=CPYTHON_TAG, opt=0):
    """importlib.util.cache_from_source() for an arbitrary cache tag and
    optimization level; returns bytes for a bytes source, str otherwise."""
    is_bytes = isinstance(source, bytes)
    src = fsb(source)
    head, tail = os.path.split(src)
    base, sep, rest = tail.rpartition(b".")
    name = (base if base else rest) + sep + fsb(tag)
    if opt:
        name += b".opt-%d" % opt
    name += b".pyc"
    out = os.path.join(head, b"__pycache__", name)
    return out if is_bytes else os.fsdecode(out)


PYC_NAME_RE = re.compile(rb"\A(.+)\.(cpython-\d+|pypy\d+)(?:\.opt-([12]))?\.pyc\Z", re.S)


def sources_in(root):
    """Every *.py under @root (bytes paths), __pycache__ skipped, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(fsb(root)):
        dirnames[:] = sorted(d for d in dirnames if d != b"__pycache__")
        for f in sorted(filenames):
            if f.endswith(b".py"):
                out.append(os.path.join(dirpath, f))
    return out


def pycache_files(root):
    """Every entry inside a __pycache__ directory under @root, as a set of
    paths relative to @root (bytes)."""
    root = fsb(root)
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) == b"__pycache__":
            for f in filenames + dirnames:
                out.add(os.path.relpath(os.path.join(dirpath, f), root))
    return out


def expected_pycs(root, tag=CPYTHON_TAG, opts=(0,)):
    """The relative paths of the .pyc files a compile of @root must produce."""
    root = fsb(root)
    return {os.path.relpath(cache_path(s, tag, o), root) for s in sources_in(root) for o in opts}


def non_cache_files(root):
    """Every file or directory outside __pycache__ (relative, bytes): a compile
    must not add anything there."""
    root = fsb(root)
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if b"__pycache__" in dirnames:
            dirnames.remove(b"__pycache__")
        for f in filenames + dirnames:
            out.add(os.path.relpath(os.path.join(dirpath, f), root))
    return out


# --- .pyc validation (runs in the interpreter that owns the format) -----------

_VALIDATOR = r'''
import sys, os, json, marshal, re
import importlib.util
root = os.fsencode(sys.argv[1])
tag = sys.implementation.cache_tag.encode()
magic = importlib.util.MAGIC_NUMBER
name_re = re.compile(rb"\A(.+)\.(cpython-\d+|pypy\d+)(?:\.opt-([12]))?\.pyc\Z", re.S)
res = {"valid": {}, "bad": {}, "leftover": [], "orphan": [], "foreign": []}
def walk(top):
    if os.path.basename(top) == b"__pycache__" and os.path.isdir(top):
        yield top
    for dirpath, dirnames, filenames in os.walk(top):
        for d in dirnames:
            if d == b"__pycache__":
                yield os.path.join(dirpath, d)
        dirnames[:] = [d for d in dirnames if d != b"__pycache__"]
def check(pyc, src):
    try:
        st = os.lstat(pyc)
    except OSError as e:
        return "lstat: %r" % e
    if not (st.st_mode & 0o170000 == 0o100000):
        return "not a regular file (mode %o)" % st.st_mode
    with open(pyc, "rb") as f:
        data = f.read()
    if len(data) < 16:
        return "short file (%d bytes)" % len(data)
    if data[:4] != magic:
        return "bad magic %r (want %r)" % (data[:4], magic)
    flags = int.from_bytes(data[4:8], "little")
    if flags == 0:
        sst = os.stat(src)
        mtime = int.from_bytes(data[8:12], "little")
        size = int.from_bytes(data[12:16], "little")
        if mtime != (int(sst.st_mtime) & 0xFFFFFFFF):
            return "mtime %d != source mtime %d" % (mtime, int(sst.st_mtime) & 0xFFFFFFFF)
        if size != (sst.st_size & 0xFFFFFFFF):
            return "size %d != source size %d" % (size, sst.st_size)
    elif flags in (1, 3):
        with open(src, "rb") as f:
            h = importlib.util.source_hash(f.read())
        if data[8:16] != h:
            return "source hash mismatch"
    else:
        return "bad flags %d" % flags
    try:
        co = marshal.loads(data[16:])
    except Exception as e:
        return "marshal.loads: %s: %s" % (type(e).__name__, e)
    if type(co).__name__ != "code":
        return "marshal body is a %s, not code" % type(co).__name__
    return co
for cache in walk(root):
    parent = os.path.dirname(cache)
    for name in sorted(os.listdir(cache)):
        path = os.path.join(cache, name)
        m = name_re.match(name)
        if not m:
            res["leftover"].append(os.fsdecode(path))
            continue
        src = os.path.join(parent, m.group(1) + b".py")
        if not os.path.exists(src):
            res["orphan"].append(os.fsdecode(path))
            continue
        if m.group(2) != tag:
            res["foreign"].append(os.fsdecode(path))
            continue
        r = check(path, src)
        if isinstance(r, str):
            res["bad"][os.fsdecode(path)] = r
        else:
            res["valid"][os.fsdecode(path)] = {"co_filename": r.co_filename,
                                               "flags": int.from_bytes(open(path, "rb").read()[4:8], "little")}
print(json.dumps(res))
'''


class Validation:
    """The result of validate(); paths are bytes."""

    def __init__(self, raw):
        self.valid = {fsb(k): v for k, v in raw["valid"].items()}
        self.bad = {fsb(k): v for k, v in raw["bad"].items()}
        self.leftover = [fsb(p) for p in raw["leftover"]]
        self.orphan = [fsb(p) for p in raw["orphan"]]
        self.foreign = [fsb(p) for p in raw["foreign"]]

    def assert_clean(self, allow_orphans=()):
        """No invalid .pyc and no leftover (temporary) file in any __pycache__."""
        assert not self.bad, "invalid .pyc files: %r" % (self.bad,)
        assert not self.leftover, "leftover files in __pycache__: %r" % (self.leftover,)
        orphans = [p for p in self.orphan if p not in set(map(fsb, allow_orphans))]
        assert not orphans, ".pyc files without a source: %r" % (orphans,)


def validate(root, interpreter=PYTHON):
    """Checks every .pyc of @interpreter's cache tag under @root (a tree, or a
    single __pycache__ directory): header against the source (flags,
    mtime/size or hash, per importlib's rules) and marshal.loads of the body,
    run in @interpreter itself."""
    p = subprocess.run([interpreter, "-I", "-S", "-c", _VALIDATOR, fsb(root)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, "validator failed: %s" % p.stderr.decode(errors="replace")
    return Validation(json.loads(p.stdout))


def assert_tree_compiled(root, tag=CPYTHON_TAG, opts=(0,), interpreter=PYTHON, allow_orphans=()):
    """Every source under @root has a valid .pyc for each level in @opts, and
    no leftover is in any __pycache__. Returns the Validation."""
    v = validate(root, interpreter)
    v.assert_clean(allow_orphans=allow_orphans)
    want = {cache_path(s, tag, o) for s in sources_in(root) for o in opts}
    missing = sorted(want - set(v.valid))
    assert not missing, "%d of %d .pyc files missing, e.g. %r" % (len(missing), len(want), missing[:10])
    return v


# --- reference compilers ------------------------------------------------------

_PY_COMPILE = r'''
import sys, py_compile
mode = {"timestamp": py_compile.PycInvalidationMode.TIMESTAMP,
        "checked-hash": py_compile.PycInvalidationMode.CHECKED_HASH,
        "unchecked-hash": py_compile.PycInvalidationMode.UNCHECKED_HASH}[sys.argv[4]]
py_compile.compile(sys.argv[1], cfile=sys.argv[2], optimize=int(sys.argv[3]), doraise=True,
                   invalidation_mode=mode)
'''


def py_compile_ref(source, cfile, opt=0, mode="timestamp", interpreter=PYTHON):
    """Writes what `py_compile` makes of @source (co_filename = @source as
    given) to @cfile, in a fresh interpreter; returns the bytes."""
    p = subprocess.run([interpreter, "-I", "-c", _PY_COMPILE, fsb(source), fsb(cfile), str(opt), mode],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, "py_compile failed: %s" % p.stderr.decode(errors="replace")
    with open(fsb(cfile), "rb") as f:
        return f.read()


_SAME_CODE = r'''
import sys, os, json, marshal
def same(a, b):
    if type(a) is not type(b):
        return False
    if type(a).__name__ == "code":
        for attr in ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
                     "co_stacksize", "co_flags", "co_code", "co_names", "co_varnames", "co_freevars",
                     "co_cellvars", "co_filename", "co_name", "co_firstlineno", "co_lnotab",
                     "co_consts"):
            if hasattr(a, attr) and not same(getattr(a, attr), getattr(b, attr)):
                return False
        return True
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, complex)):
        return repr(a) == repr(b)
    return a == b
ref, tree = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
differ = []
for rel in json.load(sys.stdin):
    rel = os.fsencode(rel)
    with open(os.path.join(ref, rel), "rb") as f:
        a = f.read()
    with open(os.path.join(tree, rel), "rb") as f:
        b = f.read()
    if a[:16] != b[:16] or not same(marshal.loads(a[16:]), marshal.loads(b[16:])):
        differ.append(os.fsdecode(rel))
print(json.dumps(differ))
'''


def differing_code(ref, tree, rels, interpreter):
    """Of the .pyc files @rels (relative to both trees), those whose headers
    differ or whose code objects, loaded in @interpreter, are not equal."""
    p = subprocess.run([interpreter, "-I", "-S", "-c", _SAME_CODE, fsb(ref), fsb(tree)],
                       input=json.dumps([os.fsdecode(r) for r in rels]).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, "comparison failed: %s" % p.stderr.decode(errors="replace")
    return [fsb(r) for r in json.loads(p.stdout)]


def compileall_ref(root, interpreter=PYTHON, args=()):
    p = subprocess.run([interpreter, "-I", "-m", "compileall", "-q", *args, fsb(root)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                       timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, "compileall failed: %s%s" % (
        p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


# --- source trees -------------------------------------------------------------

STDLIB = "/usr/lib/python3.11"
_STDLIB_SKIP_TOP = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "__pycache__"}


def _stdlib_ignore(src_root):
    def ignore(d, names):
        rel = os.path.relpath(d, src_root)
        out = {n for n in names if n == "__pycache__"}
        if rel == ".":
            out |= {n for n in names if n in _STDLIB_SKIP_TOP or n.startswith("config-")}
        if rel == "lib2to3":
            out |= {n for n in names if n == "tests"}
        return out
    return ignore


def copy_tree(src, dest, entries=None):
    """Copies @src (or only its top-level @entries) to @dest with mtimes
    preserved (copy2; symlinks dereferenced) and no __pycache__."""
    ignore = shutil.ignore_patterns("__pycache__")
    if entries is None:
        shutil.copytree(src, dest, ignore=ignore, copy_function=shutil.copy2)
    else:
        os.makedirs(dest)
        for e in entries:
            s = os.path.join(src, e)
            if os.path.isdir(s):
                shutil.copytree(s, os.path.join(dest, e), ignore=ignore, copy_function=shutil.copy2)
            else:
                shutil.copy2(s, os.path.join(dest, e))
        shutil.copystat(src, dest)
    for dirpath, dirnames, _ in os.walk(dest):
        for d in list(dirnames):
            if d == "__pycache__":
                shutil.rmtree(os.path.join(dirpath, d))
                dirnames.remove(d)
    return dest


def make_stdlib_pristine(dest):
    """The filtered copy of /usr/lib/python3.11 every tree test starts from."""
    shutil.copytree(STDLIB, dest, ignore=_stdlib_ignore(STDLIB), copy_function=shutil.copy2)
    return dest


# A moderate subset (about 150 files) for the variants that need not cover
# the whole library, chosen to hold every kind of construct.
STDLIB_SUBSET = ["json", "email", "http", "urllib", "logging", "importlib", "concurrent", "xml",
                 "argparse.py", "typing.py", "dataclasses.py", "enum.py", "inspect.py",
                 "functools.py", "re", "collections", "_pydecimal.py", "tarfile.py"]

# PyPy 3.9 cannot parse all of the 3.11 library (match statements), so its
# test compiles a part of its own library.
PYPY_STDLIB = "/usr/lib/pypy3.9"
PYPY_SUBSET = ["json", "email", "http", "urllib", "logging", "importlib", "concurrent", "asyncio",
               "unittest", "xml", "multiprocessing", "argparse.py", "typing.py", "dataclasses.py", "enum.py", "inspect.py",
               "functools.py", "collections", "_pydecimal.py", "tarfile.py"]


def write(path, data, mode=None, mtime=None):
    """Writes @data (bytes or str) to @path, making its directories; returns
    the path, bytes when @path was bytes and str otherwise."""
    as_bytes = isinstance(path, bytes)
    path = fsb(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    if mode is not None:
        os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path if as_bytes else os.fsdecode(path)


def read(path):
    with open(fsb(path), "rb") as f:
        return f.read()


# --- processes ----------------------------------------------------------------

def run_client(*args, socket_path=None, autostart=False, global_args=(), user=None, env=None,
               cwd=None, timeout=CLIENT_TIMEOUT, pycqueue=None):
    """Runs `pycqueue [--socket=S] [--no-autostart] GLOBAL... ARGS...` and
    returns the CompletedProcess (bytes), with .out/.err decoded for asserts.
    @user="nobody" runs it through setpriv as nobody:nogroup."""
    cmd = [pycqueue or PYCQUEUE]
    if socket_path is not None:
        cmd.append(b"--socket=" + fsb(socket_path))
    if not autostart:
        cmd.append("--no-autostart")
    cmd += list(global_args)
    cmd += [a if isinstance(a, (str, bytes)) else fsb(a) for a in args]
    if user is not None:
        cmd = ["setpriv", "--reuid=%s" % user, "--regid=nogroup", "--clear-groups", "--"] + cmd
        if cwd is None:
            cwd = "/"
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or clean_env(),
                       cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)
    p.out = p.stdout.decode("utf-8", "surrogateescape")
    p.err = p.stderr.decode("utf-8", "surrogateescape")
    return p


def describe(p):
    """A failure message for a client run."""
    return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (p.returncode, p.out, p.err)


def wait_for_socket(path, proc=None, timeout=10.0):
    """Polls until a connect() to @path succeeds; raises when @proc exits first
    or after @timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("pycqueued exited with %s before listening" % proc.returncode)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(fss(path))
            return
        except OSError as e:
            last = e
        finally:
            s.close()
        time.sleep(0.05)
    raise RuntimeError("nothing accepted on %s within %ss (last error: %s)" % (path, timeout, last))


def proc_children(pid):
    """PIDs whose parent is @pid (via /proc/*/stat)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                data = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: split after the last ')'
        fields = data[data.rindex(b")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return None


def proc_exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def daemons_for_socket(socket_path, daemon_path=None):
    """Top-level pycqueued processes (exe is @daemon_path, a --socket=@socket_path
    argument, parent not itself such a process)."""
    want_exe = os.path.realpath(daemon_path or PYCQUEUED)
    arg = b"--socket=" + fsb(socket_path)
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        exe = proc_exe(pid)
        cmd = proc_cmdline(pid)
        if exe is None or not cmd:
            continue
        # the binary itself, or a script run by an interpreter (argv[1])
        if exe.replace(" (deleted)", "") != want_exe and not (
                len(cmd) > 1 and os.path.realpath(cmd[1]) == os.fsencode(want_exe)):
            continue
        if arg in cmd:
            found[pid] = True
    top = []
    for pid in found:
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2:].split()[1])
        if ppid not in found:
            top.append(pid)
    return sorted(top)


def terminate(proc, timeout=10):
    """SIGTERM, then SIGKILL after @timeout seconds; returns the exit status."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    return proc.returncode


def kill_pid(pid, timeout=10):
    """SIGTERM then SIGKILL for a process we did not spawn ourselves."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists("/proc/%d" % pid) or _is_zombie(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:].split()[0] == b"Z"
    except OSError:
        return True


def wait_until(pred, timeout, interval=0.02):
    """Polls @pred until it returns a true value (returned) or @timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = pred()
        if r:
            return r
        time.sleep(interval)
    return None


def count_pycs(root):
    n = 0
    for dirpath, dirnames, filenames in os.walk(fsb(root)):
        if os.path.basename(dirpath) == b"__pycache__":
            n += sum(1 for f in filenames if f.endswith(b".pyc"))
    return n


def is_regular(path):
    try:
        return stat.S_ISREG(os.lstat(fsb(path)).st_mode)
    except FileNotFoundError:
        return False


# --- provenance and the administration verbs ----------------------------------

def sha256_of(path):
    """The hex sha256 of the file at @path."""
    import hashlib
    return hashlib.sha256(read(path)).hexdigest()


def json_records(p):
    """The JSON array an administration verb printed with --json (asserts
    that it is one)."""
    try:
        data = json.loads(p.stdout)
    except ValueError as e:
        raise AssertionError("not JSON (%s): %s" % (e, describe(p)))
    assert isinstance(data, list), "not a JSON array: %s" % describe(p)
    return data


def verify_problems(d, *paths):
    """Runs `verify --json PATHS` on daemon @d; returns (exit code, {path: problem})
    with paths as str. Asserts that every record has path, problem and detail."""
    p = d.pycq("--json", "verify", *paths)
    assert p.returncode in (0, 1), describe(p)
    recs = json_records(p)
    for r in recs:
        assert set(r) >= {"path", "problem", "detail"}, "incomplete verify record %r" % (r,)
    out = {r["path"]: r["problem"] for r in recs}
    assert len(out) == len(recs), "a path reported twice: %r" % (recs,)
    return p.returncode, out


def sqlite_integrity(db_path):
    """`PRAGMA integrity_check` of @db_path, in a separate process (the
    python sqlite3 module) so that a hang fails instead of blocking."""
    code = ("import sqlite3, sys\n"
            "c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n"
            "print('\\n'.join(r[0] for r in c.execute('PRAGMA integrity_check')))\n")
    p = subprocess.run([PYTHON, "-I", "-c", code, fsb(db_path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, "integrity check failed to run: %s" % p.stderr.decode(errors="replace")
    return p.stdout.decode(errors="replace").strip()


def traversable_for_all(path):
    """Lets every user look names up along @path (adds o+x, and g+x, to each
    directory from / down to it): read-only verbs of unprivileged callers act
    with the caller's own rights, so a test tree must be reachable for them.
    Returns the (directory, old mode) pairs changed, for restore_modes(): the
    fixture `traversable` does both."""
    changed = []
    d = os.path.abspath(fss(path))
    while d != "/":
        mode = stat.S_IMODE(os.stat(d).st_mode)
        if mode & 0o011 != 0o011:
            changed.append((d, mode))
            os.chmod(d, mode | 0o011)
        d = os.path.dirname(d)
    return changed


def restore_modes(changed):
    for d, mode in changed:
        os.chmod(d, mode)

# --- raw client frames and unprivileged sessions (issue 6's attack tests) -----
#
# The client binary only sends what its options allow; an attacker sends any
# frame. These helpers speak the client protocol of doc/protocol.md directly,
# from a helper process that runs as another user (setpriv), so that the
# daemon sees that user's SO_PEERCRED.

import struct

PROTOCOL_VERSION = 1
(MSG_COMPILE, MSG_STATUS, MSG_WAIT, MSG_WHY, MSG_HISTORY, MSG_VERIFY, MSG_REPAIR, MSG_CLEAN,
 MSG_AUDIT) = range(1, 10)
MSG_ACCEPTED, MSG_PROGRESS, MSG_RESULT, MSG_DONE, MSG_ERROR, MSG_STATUS_REPLY, MSG_RECORD = range(16, 23)
TAG_CTX_TOOL, TAG_CTX_DPKG_PACKAGE, TAG_CTX_ARGV = 1, 2, 3
(TAG_PATH, TAG_EXCLUDE, TAG_PYTHON, TAG_OPT_LEVEL, TAG_INVALIDATION, TAG_FORCE, TAG_PACKAGE, TAG_ROOT,
 TAG_NO_WAIT, TAG_REPORT_ALL, TAG_LIMIT, TAG_SINCE, TAG_FAILED_ONLY) = range(10, 23)
TAG_ERROR_MESSAGE, TAG_ERRNO, TAG_STAT = 45, 46, 50
ENDS_REQUEST = (MSG_DONE, MSG_ERROR, MSG_STATUS_REPLY)


def field(tag, data):
    """One field: u16 tag, u32 size, data (bytes, str or a path)."""
    if not isinstance(data, bytes):
        data = fsb(data) if not isinstance(data, str) else data.encode("utf-8", "surrogateescape")
    return struct.pack("<HI", tag, len(data)) + data


def field_u64(tag, value):
    return field(tag, struct.pack("<Q", value))


def frame(msg_type, *fields, version=PROTOCOL_VERSION):
    """A whole frame: u32 length, u16 version, u16 type, the fields."""
    body = struct.pack("<HH", version, msg_type) + b"".join(fields)
    return struct.pack("<I", len(body)) + body


class Reply:
    """One frame a daemon sent: .type, .fields [(tag, bytes)], and helpers."""

    def __init__(self, msg_type, fields):
        self.type = msg_type
        self.fields = fields

    def get(self, tag):
        return next((d for t, d in self.fields if t == tag), None)

    @property
    def errno(self):
        d = self.get(TAG_ERRNO)
        return struct.unpack("<Q", d)[0] if d is not None and len(d) == 8 else None

    @property
    def message(self):
        d = self.get(TAG_ERROR_MESSAGE)
        return d.decode("utf-8", "replace") if d is not None else ""

    def stats(self):
        """The TAG_STAT fields as {key: value-text}."""
        out = {}
        for t, d in self.fields:
            if t == TAG_STAT and b"\0" in d:
                k, _, v = d.partition(b"\0")
                out[k.decode("utf-8", "replace")] = v[1:].decode("utf-8", "replace")
        return out

    def __repr__(self):
        if self.type == MSG_ERROR:
            return "MSG_ERROR(errno=%s, %r)" % (self.errno, self.message)
        return "Reply(type=%d, %d fields)" % (self.type, len(self.fields))


# The helper process: reads one JSON command per line on stdin, answers one
# JSON line on stdout. Connections are numbered; data travels as hex.
_AGENT = r'''
import json, os, select, socket, struct, sys, time
path = sys.argv[1]
conns = {}
next_id = [0]
def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()
def frames_of(buf):
    res = []
    while len(buf) >= 8:
        n = struct.unpack("<I", buf[:4])[0]
        if len(buf) < 4 + n:
            break
        body, buf = buf[4:4 + n], buf[4 + n:]
        _, mtype = struct.unpack("<HH", body[:4])
        fields, i = [], 4
        while i + 6 <= len(body):
            tag, size = struct.unpack("<HI", body[i:i + 6])
            fields.append([tag, body[i + 6:i + 6 + size].hex()])
            i += 6 + size
        res.append([mtype, fields])
    return res, buf
def receive(c, timeout, until_end=True, max_bytes=1 << 40):
    """Reads until a frame that ends a request (until_end), EOF, the
    timeout, or max_bytes read in all; returns the frames read now."""
    s = c["sock"]
    deadline = time.monotonic() + timeout
    got = []
    while True:
        fr, c["buf"] = frames_of(c["buf"])
        got += fr
        if until_end and any(f[0] in (19, 20, 21) for f in fr):
            return got, False
        if c["eof"]:
            return got, False
        left = deadline - time.monotonic()
        if left <= 0 or c["read"] >= max_bytes:
            return got, True
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            data = s.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            c["eof"] = True
        c["read"] += len(data)
        c["buf"] += data
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.setblocking(True)
    s.settimeout(None)
    next_id[0] += 1
    conns[next_id[0]] = {"sock": s, "buf": b"", "eof": False, "read": 0}
    return next_id[0]
def send(c, data, timeout):
    s = c["sock"]
    s.settimeout(timeout)
    try:
        s.sendall(data)
        return None
    except OSError as e:
        return type(e).__name__
    finally:
        s.settimeout(None)
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    try:
        if op == "open":
            out({"ids": [connect() for _ in range(cmd.get("n", 1))]})
        elif op == "send":
            c = conns[cmd["id"]]
            out({"send_error": send(c, bytes.fromhex(cmd["data"]), cmd.get("timeout", 30))})
        elif op == "request":
            c = conns[cmd["id"]]
            err = send(c, bytes.fromhex(cmd["data"]), cmd.get("timeout", 30))
            got, timed_out = receive(c, cmd.get("timeout", 30))
            if cmd.get("until_eof") and not c["eof"]:
                more, timed_out = receive(c, cmd.get("timeout", 30), until_end=False)
                got += more
            out({"send_error": err, "frames": got, "eof": c["eof"], "timed_out": timed_out})
        elif op == "receive":
            c = conns[cmd["id"]]
            got, timed_out = receive(c, cmd.get("timeout", 30), until_end=cmd.get("until_end", True),
                                     max_bytes=c["read"] + cmd.get("max_bytes", 1 << 40))
            out({"frames": got, "eof": c["eof"], "timed_out": timed_out, "read": c["read"]})
        elif op == "wait_hup":
            # poll without reading: POLLHUP says the daemon closed its end
            p = select.poll()
            p.register(conns[cmd["id"]]["sock"], select.POLLRDHUP | select.POLLHUP)
            t0 = time.monotonic()
            ev = p.poll(cmd.get("timeout", 10) * 1000)
            out({"hup": bool(ev and ev[0][1] & (select.POLLHUP | select.POLLRDHUP)),
                 "after": time.monotonic() - t0})
        elif op == "close":
            for i in cmd["ids"]:
                conns.pop(i)["sock"].close()
            out({})
        else:
            out({"error": "unknown op " + op})
    except Exception as e:
        out({"error": "%s: %s" % (type(e).__name__, e)})
'''


class RawSession:
    """A helper process, running as @user (None: as the test, root), that
    holds any number of raw connections to the daemon at @socket_path. Use it
    as a context manager; close() kills the process and so every connection."""

    def __init__(self, socket_path, user="nobody"):
        cmd = [PYTHON, "-I", "-S", "-c", _AGENT, fsb(socket_path)]
        if user is not None:
            cmd = ["setpriv", "--reuid=%s" % user, "--regid=nogroup", "--clear-groups", "--"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=clean_env(), cwd="/")
        self._buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()

    def call(self, op, **args):
        """Runs one command; returns its answer (a dict). The helper gets a
        minute more than the command's own "timeout" (seconds)."""
        args["op"] = op
        self.proc.stdin.write(json.dumps(args).encode() + b"\n")
        self.proc.stdin.flush()
        fd = self.proc.stdout.fileno()
        wait = 60 + 2 * args.get("timeout", 0)
        deadline = time.monotonic() + wait
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the raw-client helper did not answer %r within %ss" % (op, wait))
            import select
            r, _, _ = select.select([fd], [], [], left)
            if r:
                data = os.read(fd, 1 << 20)
                if not data:
                    raise AssertionError("the raw-client helper died: %s" % self.proc.stderr.read().decode(
                        errors="replace"))
                self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        ans = json.loads(line)
        assert "error" not in ans, "raw-client helper: %s" % ans["error"]
        if "frames" in ans:
            ans["frames"] = [Reply(t, [(tag, bytes.fromhex(d)) for tag, d in fs]) for t, fs in ans["frames"]]
        return ans

    def open(self, n=1):
        """Opens @n connections; returns their ids (connect() succeeding says
        nothing about the daemon keeping them)."""
        return self.call("open", n=n)["ids"]

    def send(self, cid, data, timeout=30):
        """Sends bytes on @cid; returns None or the name of the send error."""
        return self.call("send", id=cid, data=data.hex(), timeout=timeout)["send_error"]

    def request(self, cid, data, timeout=30, until_eof=False):
        """Sends @data and reads replies until one ends the request (and, with
        @until_eof, until the daemon closes). Returns a dict: frames (Reply
        list), eof, timed_out, send_error."""
        return self.call("request", id=cid, data=data.hex(), timeout=timeout, until_eof=until_eof)

    def receive(self, cid, timeout=30, until_end=True, max_bytes=None):
        """Reads replies on @cid until one ends a request (@until_end), EOF,
        the timeout, or (with @max_bytes) once that many more bytes came."""
        args = {"max_bytes": max_bytes} if max_bytes is not None else {}
        return self.call("receive", id=cid, timeout=timeout, until_end=until_end, **args)

    def wait_hup(self, cid, timeout=10):
        """Waits (without reading) until the daemon closes @cid; returns
        (closed, seconds waited)."""
        a = self.call("wait_hup", id=cid, timeout=timeout)
        return a["hup"], a["after"]

    def close_conns(self, ids):
        self.call("close", ids=list(ids))


def raw_request(socket_path, data, user="nobody", timeout=30, until_eof=False):
    """One connection, one request frame @data, as @user; returns what
    RawSession.request does."""
    with RawSession(socket_path, user=user) as s:
        (cid,) = s.open()
        return s.request(cid, data, timeout=timeout, until_eof=until_eof)


_DB_COUNTS = r'''
import sqlite3, sys, json
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=30)
out = {}
for t in sys.argv[2:]:
    try:
        out[t] = c.execute("SELECT COUNT(*) FROM " + t).fetchone()[0]
    except sqlite3.Error as e:
        out[t] = "error: %s" % e
print(json.dumps(out))
'''


def db_counts(state_dir, tables=("requests", "jobs", "queue")):
    """Rows per table in @state_dir/provenance.db (read as root, the way the
    daemon's own files are read); {} when there is no database yet."""
    db = os.path.join(fsb(state_dir), b"provenance.db")
    if not os.path.exists(db):
        return {}
    p = subprocess.run([PYTHON, "-I", "-c", _DB_COUNTS, db, *tables], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), timeout=CLIENT_TIMEOUT)
    assert p.returncode == 0, "counting rows failed: %s" % p.stderr.decode(errors="replace")
    return json.loads(p.stdout)


def pool_interpreters(status):
    """The interpreter paths that have a pool in a `status --json` object."""
    return {w.get("interpreter") for w in status.get("workers", [])}


def fake_interpreter(path, marker, real="/usr/bin/python3.11", owner=None, mode=0o755):
    """A shell script at @path that appends a line to @marker whenever it is
    run, then runs @real with its arguments: an "interpreter" that works like
    the real one and shows whether anyone started it. @marker's directory
    must be writable by the user the daemon runs workers as."""
    # ": >>" creates the file without writing a byte: workers run with
    # RLIMIT_FSIZE 0, and a write would kill the script with SIGXFSZ.
    write(path, "#!/bin/sh\n: >>'%s' 2>/dev/null\nexec %s \"$@\"\n" % (fss(marker), real), mode=mode)
    if owner is not None:
        os.chown(fsb(path), owner, -1)
    return fss(path)


def marker_dir(base):
    """A directory anyone may write (for the markers of fake interpreters,
    which run as the worker user)."""
    d = os.path.join(fss(base), "markers")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o1777)
    return d


def public_dir(base, *names):
    """@base/@names... created with mode 0755 (@base itself must be
    reachable for nobody: the public_tmp fixture)."""
    d = os.path.join(fss(base), *names)
    os.makedirs(d, exist_ok=True)
    cur = d
    while cur != fss(base):
        os.chmod(cur, 0o755)
        cur = os.path.dirname(cur)
    return d


def daemon_rss_kib(pid):
    """VmRSS of process @pid in KiB (0 when it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def write_daemon_config(path, text=""):
    """Writes a test daemon's configuration file @path: @text, with a
    content cache of its own (PATH.cache) unless @text names one, so that
    no test writes into the machine's /var/cache/pycqueue."""
    if "cache_directory" not in text:
        text = "cache_directory = %s.cache\n%s" % (path, text)
    with open(path, "w") as f:
        f.write(text)


# --- the front-ends (py3compile, py3clean, pycompile: one program) -------------

FRONTEND = os.path.join(os.path.dirname(PYCQUEUE), "py3compile")


def frontend_link(tmp_path, name="py3compile"):
    """The front-end under @name in @tmp_path/bin (a symlink: it dispatches
    on argv[0])."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    link = bindir / name
    if not link.exists():
        link.symlink_to(FRONTEND)
    return str(link)


def run_tool(cmd, env=None, cwd=None):
    """Runs @cmd with no input; the result has .out and .err decoded."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                       timeout=CLIENT_TIMEOUT, stdin=subprocess.DEVNULL)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def frontend_env(d, extra=None):
    """A front-end's environment: daemon @d's socket, no autostart."""
    env = clean_env({"PYCQUEUE_SOCKET": d.socket, "PYCQUEUE_NO_AUTOSTART": "1"})
    if extra:
        env.update(extra)
    return env


def frontend_for_another_user(sockdir, public_tmp, name, original_body):
    """For a front-end run by another user: a copy of it named @name in
    @sockdir (that user may not traverse the build directory), a directory
    "marks" under @public_tmp anyone may write, and an original tool, a
    shell script running @original_body with "{marks}" replaced. Returns
    (exe, marks, original)."""
    exe = os.path.join(sockdir, name)
    shutil.copy(FRONTEND, exe)
    os.chmod(exe, 0o755)
    marks = os.path.join(public_tmp, "marks")
    os.mkdir(marks)
    os.chmod(marks, 0o777)
    original = os.path.join(sockdir, "original")
    with open(original, "w") as f:
        f.write("#!/bin/sh\n" + original_body.replace("{marks}", marks) + "\n")
    os.chmod(original, 0o755)
    return exe, marks, original


PYTHON_ROOT_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
                    "distutils", "__pycache__", "site-packages", "dist-packages"}


def make_python_root(dest, interpreter="/usr/bin/python3.11"):
    """A minimal root directory that runs @interpreter chrooted: the binary,
    the shared libraries ldd names, and its standard library without tests
    and tools. For --root targets and chroot clients. Returns @dest.

    The layout is Debian 12's merged /usr (/lib and /lib64 are links into
    usr/), so that paths in the binary and in ld.so's cache hold."""
    dest = os.fspath(dest)
    real = os.path.realpath(interpreter)
    version = os.path.basename(real)  # python3.11
    for d in ("usr/bin", "usr/lib", "usr/lib64", "tmp", "run"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    for name, target in (("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin")):
        if not os.path.lexists(os.path.join(dest, name)):
            os.symlink(target, os.path.join(dest, name))
    shutil.copy2(real, os.path.join(dest, "usr/bin", version))
    os.symlink(version, os.path.join(dest, "usr/bin/python3"))
    ldd = subprocess.run(["ldd", real], capture_output=True, text=True, check=True, timeout=30).stdout
    for lib in re.findall(r"(/\S+)\s+\(0x", ldd):
        where = os.path.realpath(lib)
        inside = os.path.join(dest, where.lstrip("/"))
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        shutil.copy2(where, inside)
        named = os.path.join(dest, lib.lstrip("/"))
        if not os.path.lexists(named):
            os.makedirs(os.path.dirname(named), exist_ok=True)
            os.symlink(where, named)
    stdlib = os.path.join("/usr/lib", version)
    shutil.copytree(stdlib, os.path.join(dest, stdlib.lstrip("/")), symlinks=True,
                    ignore=lambda d, names: [n for n in names
                                             if n in PYTHON_ROOT_SKIP or n.startswith("config-")])
    return dest


def install_binary(root, path, dest):
    """Copies the executable @path into @root at @dest, with the shared
    libraries ldd names that the root does not have yet (an ASan build
    needs its runtime)."""
    shutil.copy2(path, os.path.join(root, dest.lstrip("/")))
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30).stdout
    for line in ldd.splitlines():
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 3 else parts[0]
        if not lib.startswith("/"):
            continue
        inside = os.path.join(root, os.path.realpath(lib).lstrip("/"))
        if not os.path.exists(inside):
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            shutil.copy2(os.path.realpath(lib), inside)
        named = os.path.join(root, lib.lstrip("/"))
        if not os.path.lexists(named):
            os.symlink(os.path.realpath(lib), named)
