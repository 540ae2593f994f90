# SPDX-License-Identifier: MIT
"""The sandbox of the daemon's interpreters (workers and verify's marshal
checker), as another local user would attack it:

- they run as a uid of their own, never nobody's, allocated per daemon when
  the system user does not exist, different for daemons running at once;
- a process of another user can neither signal nor ptrace them, and they
  are not dumpable (finding 5);
- they die with the daemon, even when it is SIGKILLed (finding 6);
- verify's marshal check of hostile .pyc files is cut off at
  checker_timeout, and root's compiles go on meanwhile (finding 4)."""

import grp
import json
import os
import pwd
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

from pycqtest import (PYTHON, assert_tree_compiled, cache_path, clean_env, describe, proc_cmdline,
                      run_client, wait_for_socket, wait_until, write, _is_zombie)

WORKER_MARK = b"pycqueue worker:"
CHECKER_MARK = b"pycqueue marshal checker:"


def _needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: the worker user only applies to a root daemon")
    if not shutil.which("setpriv", path="/usr/bin:/bin"):
        pytest.skip("setpriv missing")


def _config(extra=""):
    # With the package's system user present, ask for a transient uid anyway:
    # these tests want a uid that no other daemon's workers share.
    try:
        pwd.getpwnam("_pycqueue")
        return "worker_user = dynamic\n" + extra
    except KeyError:
        return extra


def _ids(pid):
    """(uids, gids) of @pid: the real, effective, saved and fs ids."""
    uids = gids = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uids = tuple(int(x) for x in line.split()[1:])
            elif line.startswith("Gid:"):
                gids = tuple(int(x) for x in line.split()[1:])
    return uids, gids


def _state(pid):
    with open("/proc/%d/stat" % pid, "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].split()[0].decode()


def _alive(pid):
    return os.path.exists("/proc/%d" % pid) and not _is_zombie(pid)


def _marked(d, mark):
    """@d's descendants whose command line holds @mark (their -c CODE)."""
    return [p for p in d.descendants() if mark in b"\0".join(proc_cmdline(p) or [])]


def _start_workers(d, tmp_path, name="warm"):
    src = write(tmp_path / name / "m.py", "X = 1\n")
    p = d.pycq("compile", "-f", src)
    assert p.returncode == 0, describe(p)
    workers = _marked(d, WORKER_MARK)
    assert workers, "no worker process after a compile"
    return workers


def _worker_uid(d, workers):
    (uids, gids) = _ids(workers[0])
    uid = uids[0]
    for w in workers:
        assert _ids(w) == ((uid,) * 4, (gids[0],) * 4), "worker %d: ids %r" % (w, _ids(w))
    return uid, gids[0]


def _processes_with_ids(uid, gid):
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            uids, gids = _ids(int(e))
        except (OSError, TypeError):
            continue
        if uids and gids and (uid in uids or gid in gids):
            out.append(int(e))
    return out


# --- the worker user ------------------------------------------------------------

def test_workers_run_as_a_uid_of_their_own(start_daemon, tmp_path):
    _needs_root()
    d = start_daemon(config=_config(), workers=2)
    workers = _start_workers(d, tmp_path)
    uid, gid = _worker_uid(d, workers)

    nobody = pwd.getpwnam("nobody").pw_uid
    assert uid not in (0, nobody, 65534) and gid != 0
    # Not a user or group of this system: nothing else is meant to run as it.
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    with pytest.raises(KeyError):
        grp.getgrgid(gid)
    assert "transient uid %d" % uid in d.log_text()
    # Every process that runs with that uid or gid is one of this daemon's workers.
    assert sorted(_processes_with_ids(uid, gid)) == sorted(_marked(d, WORKER_MARK))


def test_daemons_started_together_get_different_uids(start_daemon, tmp_path):
    _needs_root()
    daemons = [start_daemon(name="d%d" % i, config=_config(), workers=1, wait=False) for i in range(4)]
    for d in daemons:
        wait_for_socket(d.socket, d.proc, timeout=20)
    uids = [_worker_uid(d, _start_workers(d, tmp_path, "t-" + d.name))[0] for d in daemons]
    assert len(set(uids)) == len(uids), uids


@pytest.mark.parametrize("user", ["nobody", "root"])
def test_worker_user_nobody_or_root_refused(start_daemon, user):
    _needs_root()
    d = start_daemon(config="worker_user = %s\n" % user, wait=False)
    d.expected_exit = True
    assert d.proc.wait(timeout=30) != 0
    assert re.search(r'Worker user "%s" is refused' % user, d.log_text()), d.log_text()


# --- finding 5: another user's process cannot take a worker over ---------------

_ATTACK = r'''
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = int(sys.argv[1])
out = {}
for name, sig in (("stop", signal.SIGSTOP), ("kill", signal.SIGKILL)):
    try:
        os.kill(pid, sig)
        out[name] = 0
    except OSError as e:
        out[name] = e.errno
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
    out["ptrace"] = 0
    os.waitpid(pid, 0)
    libc.ptrace(PTRACE_DETACH, pid, None, None)
else:
    out["ptrace"] = ctypes.get_errno()
print(repr(out))
'''


def _attack_as_nobody(pid):
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                        PYTHON, "-I", "-c", _ATTACK, str(pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd="/",
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return eval(p.stdout)


def _ptrace_scope():
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return int(f.read())
    except OSError:
        return 0


def test_worker_cannot_be_signalled_or_traced_by_nobody(start_daemon, tmp_path):
    _needs_root()
    import errno
    d = start_daemon(config=_config(), workers=1)
    (worker,) = _start_workers(d, tmp_path)
    uid, _ = _worker_uid(d, [worker])

    # The control: a process running as nobody, as the workers used to, is
    # fair game for any other process running as nobody.
    victim = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                               "sleep", "60"], cwd="/")
    try:
        assert wait_until(lambda: _ids(victim.pid)[0][0] == pwd.getpwnam("nobody").pw_uid, 10)
        control = _attack_as_nobody(victim.pid)
        assert control["stop"] == 0
        if _ptrace_scope() == 0:
            assert control["ptrace"] == 0, control
    finally:
        victim.kill()
        victim.wait()

    got = _attack_as_nobody(worker)
    assert got == {"stop": errno.EPERM, "kill": errno.EPERM, "ptrace": errno.EPERM}, got

    # Non-dumpable: the kernel hands the files in /proc/PID of such a
    # process to root, though the process runs as the worker uid.
    assert os.stat("/proc/%d/environ" % worker).st_uid == 0
    assert os.stat("/proc/%d/mem" % worker).st_uid == 0

    # It still serves, the same process, not stopped.
    assert _alive(worker) and _state(worker) != "T"
    src = write(tmp_path / "after" / "a.py", "def f():\n    return 42\n")
    p = d.pycq("compile", src)
    assert p.returncode == 0, describe(p)
    assert_tree_compiled(str(tmp_path / "after"))
    assert _marked(d, WORKER_MARK) == [worker]


# --- hostile .pyc files: marshal data that takes minutes to load ----------------

M61 = (1 << 61) - 1  # CPython hashes an int n as n mod (2**61 - 1)


def _long(v):
    digits = []
    while v:
        digits.append(v & 0x7fff)
        v >>= 15
    return b"l" + struct.pack("<i", len(digits)) + b"".join(struct.pack("<H", x) for x in digits)


def slow_marshal(n):
    """marshal data of a frozenset of @n ints that all hash alike: loading it
    inserts each into a set whose probe chain holds all the others, so it
    takes time quadratic in @n (n = 150000: over a minute on CPython 3.11),
    in about 15 bytes per int."""
    return b">" + struct.pack("<I", n) + b"".join(_long(k * M61 + 12345) for k in range(1, n + 1))


_TIME_LOADS = r'''
import marshal, sys, time
data = open(sys.argv[1], "rb").read()
t = time.monotonic()
marshal.loads(data)
print(time.monotonic() - t)
'''


@pytest.fixture(scope="module")
def slow_pyc_body(tmp_path_factory):
    """The marshal part of a hostile .pyc, checked to be slow: a tenth of it
    must take > 0.1 s, so the whole (quadratic) takes > 10 s."""
    path = str(tmp_path_factory.mktemp("marshal") / "small")
    with open(path, "wb") as f:
        f.write(slow_marshal(15000))
    p = subprocess.run([PYTHON, "-I", "-c", _TIME_LOADS, path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=clean_env(), timeout=600)
    assert p.returncode == 0, p.stderr
    assert float(p.stdout) > 0.1, "marshal data not slow enough to load: %s s" % p.stdout
    return slow_marshal(150000)


def _magic():
    p = subprocess.run([PYTHON, "-I", "-c", "import importlib.util, sys; "
                        "sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"],
                       stdout=subprocess.PIPE, timeout=60, env=clean_env())
    return p.stdout


def plant_hostile(root, names, body):
    """A source per name under @root and, beside it, a .pyc whose header is
    current for it and whose marshal data is @body. World-readable."""
    magic = _magic()
    pycs = []
    for name in names:
        src = write(os.path.join(root, name + ".py"), "X = 1\n")
        st = os.stat(src)
        pyc = cache_path(src)
        write(pyc, magic + struct.pack("<III", 0, int(st.st_mtime) & 0xffffffff, st.st_size) + body)
        pycs.append(pyc)
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return pycs


def test_verify_of_slow_marshal_is_cut_off(start_daemon, tmp_path, sockdir, nobody_client, slow_pyc_body):
    """Finding 4: six parallel `verify` by nobody over .pyc files that take
    minutes to load answer within the checker's bound, with the files
    reported; root's compile meanwhile completes; no checker outlives it."""
    _needs_root()
    d = start_daemon(config=_config("checker_timeout = 2\n"), workers=2)
    _start_workers(d, tmp_path)  # the database now knows this interpreter's magic

    hostile = os.path.join(sockdir, "hostile")
    pycs = plant_hostile(hostile, ["h%d" % i for i in range(3)], slow_pyc_body)

    verifies = [subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                                  nobody_client, "--socket=" + d.socket, "--no-autostart", "--json",
                                  "verify", hostile],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), cwd="/")
                for _ in range(6)]
    started = time.monotonic()

    # The checkers, watched from their first sighting: none may live much
    # past its deadline (2 s; the slack is for a loaded machine).
    seen = {}
    too_old = []

    def watch():
        now = time.monotonic()
        for pid in _marked(d, CHECKER_MARK):
            seen.setdefault(pid, now)
        for pid, first in seen.items():
            if _alive(pid) and now - first > 2 + 20:
                too_old.append(pid)

    assert wait_until(lambda: (watch(), seen)[1], 30), "no checker started"

    # Root's compile of a small tree, while nobody's checks run.
    tree = tmp_path / "tree"
    for i in range(20):
        write(tree / "pkg" / ("m%d.py" % i), "def f%d(x):\n    return x * %d\n" % (i, i))
    compile_ = d.pycq_popen("compile", str(tree))

    results = []
    for v in verifies:
        while v.poll() is None:
            watch()
            assert time.monotonic() - started < 60, "verify did not answer within 60 s"
            time.sleep(0.1)
        out, err = v.communicate()
        results.append((v.returncode, out, err))
    elapsed = time.monotonic() - started
    out, err = compile_.communicate(timeout=120)
    assert compile_.returncode == 0, (out, err)
    assert_tree_compiled(str(tree))

    # Unbounded, each verify would load every file for over a minute.
    assert elapsed < 60
    reported = 0
    for rc, out, err in results:
        if rc in (0, 1):
            recs = {r["path"]: r for r in json.loads(out)}
            for pyc in pycs:
                assert recs[pyc]["problem"] == "corrupt", recs
                assert "marshal check timed out" in recs[pyc]["detail"], recs[pyc]
            reported += 1
        else:
            # Refused by a per-user limit: a clear error, not a hang.
            assert err.strip(), (rc, out, err)
    assert reported >= 1

    assert wait_until(lambda: not any(_alive(p) for p in _marked(d, CHECKER_MARK)), 10), \
        "a checker outlived its verify"
    watch()
    assert not too_old, "checkers alive past their deadline: %r" % too_old
    assert seen, "no checker was ever seen"


# --- finding 6: nothing outlives the daemon -------------------------------------

def _slow_source(n):
    # A closure over n locals: the compiler takes seconds (quadratic in n).
    return ("def f():\n" + "".join("    v%d = %d\n" % (i, i) for i in range(n))
            + "    return lambda: (" + ",".join("v%d" % i for i in range(n)) + ")\n")


def test_workers_and_checker_die_with_the_daemon(start_daemon, tmp_path, sockdir, slow_pyc_body):
    _needs_root()
    d = start_daemon(config=_config("checker_timeout = 120\n"), workers=2)
    idle = _start_workers(d, tmp_path)

    # A busy worker: a source that takes seconds to compile.
    slow = write(tmp_path / "slow" / "slow.py", _slow_source(40000))
    compile_ = d.pycq_popen("compile", slow)
    # A running checker: a hostile .pyc under a long deadline.
    hostile = os.path.join(sockdir, "hostile")
    plant_hostile(hostile, ["h"], slow_pyc_body)
    verify = d.pycq_popen("verify", hostile)

    checkers = wait_until(lambda: _marked(d, CHECKER_MARK), 30)
    assert checkers, "no checker started"
    # The checker runs as the worker uid and is not dumpable either.
    uid, _ = _worker_uid(d, idle)
    assert _ids(checkers[0])[0] == (uid,) * 4
    # (It makes itself so first thing; it may have only just started.)
    assert wait_until(lambda: os.stat("/proc/%d/environ" % checkers[0]).st_uid == 0, 10)

    def busy_worker():
        # The worker compiling slow.py has used a second of CPU time.
        for w in _marked(d, WORKER_MARK):
            with open("/proc/%d/stat" % w, "rb") as f:
                data = f.read()
            fields = data[data.rindex(b")") + 2:].split()
            if int(fields[11]) + int(fields[12]) > os.sysconf("SC_CLK_TCK"):
                return w
        return None
    assert wait_until(busy_worker, 30), "no worker got busy"

    children = _marked(d, WORKER_MARK) + _marked(d, CHECKER_MARK)
    assert len(children) >= 3, children
    d.kill()

    gone = wait_until(lambda: not any(_alive(p) for p in children), 5)
    left = [p for p in children if _alive(p)]
    for p in left:  # leave no stray process behind for the next test
        os.kill(p, signal.SIGKILL)
    assert gone, "still running after the daemon's SIGKILL: %r" % left
    for c in (compile_, verify):
        c.kill()
        c.communicate()
