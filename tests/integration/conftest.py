# SPDX-License-Identifier: MIT
"""Fixtures of the integration suite: a real pycqueued per test on a private
socket, state directory and config file, and copies of real source trees.

$PYCQUEUED and $PYCQUEUE name the binaries under test (make check exports
them); the daemon's stderr goes to a log file that is attached to the report
of a failing test."""

import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from pycqtest import (PYCQUEUE, PYCQUEUED, PYPY, PYPY_STDLIB, PYPY_SUBSET, STDLIB_SUBSET,
                      clean_env, copy_tree, fss, make_stdlib_pristine, proc_children, proc_cmdline,
                      restore_modes, run_client, terminate, traversable_for_all, wait_for_socket)
from pycqtest import write_daemon_config

import json


def pytest_report_header(config):
    return ["pycqueued: %s" % PYCQUEUED, "pycqueue: %s" % PYCQUEUE]


def pytest_collection_modifyitems(config, items):
    missing = [p for p in (PYCQUEUED, PYCQUEUE) if not os.access(p, os.X_OK)]
    if missing:
        skip = pytest.mark.skip(reason="binaries not built: %s" % ", ".join(missing))
        for item in items:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item._pycq_failed = True
        for d in getattr(item, "_pycq_daemons", []):
            text = d.log_text(limit=30000)
            if text:
                rep.sections.append(("pycqueued log (%s)" % d.name, text))


@pytest.fixture(autouse=True)
def _remove_tmp_path_after_success(request, tmp_path):
    """Source trees are big (a full stdlib copy and its .pyc files per test):
    keep a test's tmp_path only when it failed, for the post-mortem."""
    yield
    if not getattr(request.node, "_pycq_failed", False):
        shutil.rmtree(tmp_path, ignore_errors=True)


# --- daemons -------------------------------------------------------------------

# What AddressSanitizer, LeakSanitizer and UBSan print when they find an error.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Daemon:
    """One pycqueued on its own socket, state directory and config file."""

    def __init__(self, base, sockdir, name, workers=None, config="", idle_exit=None, args=()):
        self.name = name
        self.socket = os.path.join(sockdir, name + ".sock")
        self.state_dir = os.path.join(base, "state-" + name)
        self.config = os.path.join(base, name + ".conf")
        self.log_path = os.path.join(base, name + ".log")
        self.workers = workers
        self.idle_exit = idle_exit
        self.args = list(args)
        self.proc = None
        self.expected_exit = False  # the test stops or kills it on purpose
        write_daemon_config(self.config, config)

    def command(self):
        cmd = [PYCQUEUED, "--socket=" + self.socket, "--state-dir=" + self.state_dir,
               "--config=" + self.config]
        if self.workers is not None:
            cmd.append("--workers=%d" % self.workers)
        if self.idle_exit is not None:
            cmd.append("--idle-exit=%s" % self.idle_exit)
        return cmd + self.args

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.expected_exit = False
        with open(self.log_path, "ab") as log:
            log.write(b"=== starting %s\n" % " ".join(self.command()).encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=clean_env(), cwd="/")
        if wait:
            try:
                wait_for_socket(self.socket, self.proc, timeout=10)
            except RuntimeError as e:
                terminate(self.proc)
                raise RuntimeError("%s\n--- pycqueued log:\n%s" % (e, self.log_text()))
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pycq(self, *args, **kw):
        return run_client(*args, socket_path=self.socket, **kw)

    def pycq_popen(self, *args, global_args=()):
        """Starts a client without waiting; the caller waits with a timeout."""
        cmd = [PYCQUEUE, "--socket=" + self.socket, "--no-autostart", *global_args]
        cmd += [a if isinstance(a, (str, bytes)) else os.fsencode(a) for a in args]
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=clean_env())

    def status(self):
        p = self.pycq("status", "--json")
        assert p.returncode == 0, "status --json: exit %s: %s" % (p.returncode, p.err)
        return json.loads(p.stdout)

    def stop(self, timeout=30):
        """SIGTERM (SIGKILL after @timeout); returns the exit status."""
        self.expected_exit = True
        return terminate(self.proc, timeout=timeout)

    def kill(self):
        self.expected_exit = True
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def descendants(self):
        out, todo = [], [self.pid]
        while todo:
            for c in proc_children(todo.pop()):
                out.append(c)
                todo.append(c)
        return out

    def worker_pids(self):
        """Descendants that run an interpreter (`INTERP ... -c CODE`)."""
        out = []
        for pid in self.descendants():
            cmd = proc_cmdline(pid)
            if cmd and b"-c" in cmd:
                out.append(pid)
        return out

    def log_text(self, limit=None):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        if limit and len(data) > limit:
            data = b"[...]\n" + data[-limit:]
        return data.decode("utf-8", "replace")


@pytest.fixture
def sockdir():
    """A private directory under /tmp, mode 0755, so that a socket in it is
    reachable by a client running as nobody and its path stays short."""
    d = tempfile.mkdtemp(prefix="pycq-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start_daemon(request, tmp_path, sockdir):
    """Factory: start_daemon(name="d", workers=None, config="", idle_exit=None,
    args=(), wait=True) starts a pycqueued and returns its Daemon. Teardown
    SIGTERMs and then SIGKILLs every daemon, and fails the test when one died
    without the test asking for it."""
    daemons = []
    request.node._pycq_daemons = daemons

    def start(name="d", workers=None, config="", idle_exit=None, args=(), wait=True):
        d = Daemon(str(tmp_path), sockdir, name, workers, config, idle_exit, args)
        daemons.append(d)
        return d.start(wait=wait)

    yield start
    died = []
    for d in daemons:
        if d.proc is None:
            continue
        if d.proc.poll() is not None and not d.expected_exit:
            died.append("%s exited with status %s during the test" % (d.name, d.proc.returncode))
        terminate(d.proc)
        # An ASan/UBSan build (scripts/run-tests) reports into the log.
        report = next((m for m in SANITIZER_MARKERS if m in d.log_text()), None)
        if report:
            died.append("%s: sanitizer report (%r) in its log" % (d.name, report))
    if died:
        pytest.fail("; ".join(died) + "\n--- log:\n" + "\n".join(d.log_text(30000) for d in daemons),
                    pytrace=False)


@pytest.fixture
def daemon(start_daemon):
    return start_daemon()


@pytest.fixture
def pycq(daemon):
    """pycq(*args, **kw): runs pycqueue --socket=S --no-autostart ARGS against
    the test's daemon; returns the CompletedProcess (with .out and .err)."""
    return daemon.pycq


# --- source trees ---------------------------------------------------------------

@pytest.fixture(scope="session")
def stdlib_pristine(tmp_path_factory):
    """One filtered copy of /usr/lib/python3.11 per session (mtimes kept)."""
    return make_stdlib_pristine(str(tmp_path_factory.mktemp("pristine") / "stdlib"))


@pytest.fixture(scope="session")
def pypy_pristine(tmp_path_factory):
    if not (os.access(PYPY, os.X_OK) and os.path.isdir(PYPY_STDLIB)):
        pytest.skip("pypy3 not installed")
    entries = [e for e in PYPY_SUBSET if os.path.exists(os.path.join(PYPY_STDLIB, e))]
    return copy_tree(PYPY_STDLIB, str(tmp_path_factory.mktemp("pristine-pypy") / "pypy"), entries)


@pytest.fixture
def stdlib_tree(stdlib_pristine, tmp_path):
    """stdlib_tree(dest=None, subset=False): a fresh copy of the pristine
    stdlib (the whole filtered tree, or STDLIB_SUBSET) at @dest; returns its
    path (str)."""
    def make(dest=None, subset=False):
        dest = fss(dest) if dest is not None else str(tmp_path / "tree")
        return copy_tree(stdlib_pristine, dest, STDLIB_SUBSET if subset else None)
    return make


@pytest.fixture
def pypy_tree(pypy_pristine, tmp_path):
    def make(dest=None):
        dest = fss(dest) if dest is not None else str(tmp_path / "tree")
        return copy_tree(pypy_pristine, dest)
    return make


@pytest.fixture
def nobody_client(sockdir):
    """A copy of pycqueue that nobody can execute (the build tree may not be
    reachable for nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges")
    if not shutil.which("setpriv", path="/usr/bin:/bin"):
        pytest.skip("setpriv missing")
    path = os.path.join(sockdir, "pycqueue")
    shutil.copy(PYCQUEUE, path)
    os.chmod(path, 0o755)
    return path


# --- issue 6's attack tests ------------------------------------------------------

@pytest.fixture
def public_tmp():
    """A directory under /tmp, mode 0755 and owned by root, for trees that a
    client running as nobody must be able to reach (tmp_path is not: its
    ancestors are 0700)."""
    d = tempfile.mkdtemp(prefix="pycq-pub-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def trusted_bindir():
    """A root-owned 0755 directory for interpreters a privileged caller may
    name: under /run, so that no ancestor is writable by anyone but root
    (every directory under /tmp has the world-writable /tmp above it)."""
    base = "/run" if os.access("/run", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="pycq-bin-", dir=base)
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def traversable(tmp_path):
    """tmp_path, with every directory above it made traversable for all
    users (pytest makes them 0700) until the test ends."""
    changed = traversable_for_all(tmp_path)
    yield tmp_path
    restore_modes(changed)


@pytest.fixture
def make_traversable():
    """A function that makes a path traversable for all users (see
    traversable_for_all()); every change is undone when the test ends."""
    changed = []
    yield lambda path: changed.extend(traversable_for_all(path))
    restore_modes(reversed(changed))
