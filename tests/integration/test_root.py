# SPDX-License-Identifier: MIT
"""Installer targets and chroot clients (issue 8, sections 1 and 2).

A minimal root (make_python_root: Debian's python3.11, its libraries and
standard library) stands for an installer's target. `pycqueue compile
--root=ROOT` compiles it from outside, and a client run with `chroot ROOT`
reaches the host daemon through its socket directory bind-mounted at
ROOT/run/pycqueue. Either way the daemon resolves paths inside ROOT (an
absolute symlink leads to ROOT/..., never the host's file), refuses a path
that climbs out, compiles with ROOT's interpreter running chrooted, and the
.pyc equals what compileall writes when run inside ROOT."""

import json
import marshal
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from pycqtest import (CLIENT_TIMEOUT, EXIT_FAILED, EXIT_OK, EXIT_PERM, EXIT_USAGE, PYCQUEUE, cache_path,
                      clean_env, describe, install_binary, json_records, make_python_root, proc_children, write)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mounts need root")


@pytest.fixture(scope="module")
def pyroot():
    # Under /tmp itself, 0755: an unprivileged caller's read-only requests
    # walk a root by its host path with that caller's rights, so every
    # directory above it must be searchable (pytest's own are 0700).
    base = tempfile.mkdtemp(prefix="pycq-root-", dir="/tmp")
    os.chmod(base, 0o755)
    root = make_python_root(os.path.join(base, "root"))
    install_binary(root, PYCQUEUE, "/usr/bin/pycqueue")
    for d in ("run/pycqueue", "proc", "srv"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    yield root
    with open("/proc/self/mountinfo") as f:
        # Never delete through a mount a failed test left behind.
        if not any(line.split()[4].startswith(base + "/") for line in f):
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def app(pyroot):
    """A fresh tree inside the root: returns (inside path, host path)."""
    inside = "/srv/app-" + uuid.uuid4().hex[:8]
    host = pyroot + inside
    yield inside, host
    shutil.rmtree(host, ignore_errors=True)


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


@pytest.fixture
def in_root(pyroot, daemon):
    """in_root(*args, user=None): runs the root's pycqueue chrooted into the
    root against the test's daemon, whose socket directory is bind-mounted
    at ROOT/run/pycqueue."""
    run_dir = os.path.join(pyroot, "run/pycqueue")
    proc_dir = os.path.join(pyroot, "proc")
    subprocess.run(["mount", "--bind", os.path.dirname(daemon.socket), run_dir], check=True, timeout=30)
    # An ASan client reads /proc/self/maps.
    subprocess.run(["mount", "-t", "proc", "proc", proc_dir], check=True, timeout=30)
    sock = "/run/pycqueue/" + os.path.basename(daemon.socket)

    def run(*args, user=None, env=None):
        cmd = ["chroot"]
        if user:
            cmd.append("--userspec=%s:nogroup" % user)
        cmd += [pyroot, "/usr/bin/pycqueue", "--socket=" + sock, "--no-autostart", *args]
        p = subprocess.run(cmd, capture_output=True, env=env or clean_env(), timeout=CLIENT_TIMEOUT,
                           stdin=subprocess.DEVNULL, cwd="/")
        p.out = p.stdout.decode("utf-8", "surrogateescape")
        p.err = p.stderr.decode("utf-8", "surrogateescape")
        return p

    try:
        yield run
    finally:
        for d in (proc_dir, run_dir):
            if mounted(d):
                subprocess.run(["umount", d], timeout=30)


def inside_compileall(root, inside_dir):
    """What `chroot ROOT python3 -m compileall -q DIR` writes, file by file
    (relative path -> bytes), into a tree without compiled files; the files
    it wrote are removed again."""
    host = root + inside_dir
    for d, dirs, files in os.walk(host):
        if "__pycache__" in dirs:
            shutil.rmtree(os.path.join(d, "__pycache__"))
    subprocess.run(["chroot", root, "/usr/bin/python3", "-m", "compileall", "-q", inside_dir], check=True,
                   env=clean_env(), timeout=CLIENT_TIMEOUT, capture_output=True)
    out = {}
    for d, dirs, files in os.walk(host):
        if os.path.basename(d) == "__pycache__":
            for f in files:
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, host)] = fh.read()
                os.unlink(p)
    return out


def written(host_dir):
    out = {}
    for d, dirs, files in os.walk(host_dir):
        if os.path.basename(d) == "__pycache__":
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(d, f), host_dir)] = fh.read()
    return out


def co_filename(pyc):
    with open(pyc, "rb") as f:
        return marshal.loads(f.read()[16:]).co_filename


def host_decoy():
    """A directory on the host, and the same path for the root: an absolute
    symlink in the root names it, and must reach the root's copy."""
    d = "/tmp/pycq-decoy-" + uuid.uuid4().hex[:8]
    os.mkdir(d)
    write(os.path.join(d, "real.py"), "HOST = 'the host file, never compiled'\n")
    return d


def make_app(pyroot, inside, host):
    decoy = host_decoy()
    write(host + "/pkg/__init__.py", "")
    write(host + "/pkg/mod.py", "def f(x):\n    return x + 1\n")
    write(host + "/pkg/sub/deep.py", "import os\nVALUE = os.sep\n")
    write(pyroot + decoy + "/real.py", "ROOT = 'the root file'\n")
    os.symlink(decoy + "/real.py", host + "/pkg/linked.py")  # absolute: inside the root
    return decoy


def test_root_compile_equals_compileall_inside(daemon, pyroot, app):
    inside, host = app
    decoy = make_app(pyroot, inside, host)
    try:
        p = daemon.pycq("compile", "--root=" + pyroot, inside)
        assert p.returncode == EXIT_OK, describe(p)
        assert "4 compiled" in p.out, describe(p)
        # co_filename is the path inside; the symlinked module keeps its name
        # and its code is the root's file, not the host's.
        assert co_filename(cache_path(host + "/pkg/mod.py")) == inside + "/pkg/mod.py"
        linked = cache_path(host + "/pkg/linked.py")
        assert co_filename(linked) == inside + "/pkg/linked.py"
        with open(linked, "rb") as f:
            consts = marshal.loads(f.read()[16:]).co_consts
        assert "the root file" in consts and "the host file, never compiled" not in consts
        assert not os.path.exists(decoy + "/__pycache__"), "a file outside the root was written"
        ours = written(host)
        ref = inside_compileall(pyroot, inside)
        assert set(ours) == set(ref) and len(ours) == 4, (sorted(ours), sorted(ref))
        for rel in ref:
            assert ours[rel] == ref[rel], "%s differs from compileall run inside the root" % rel
    finally:
        shutil.rmtree(decoy, ignore_errors=True)
        shutil.rmtree(pyroot + decoy, ignore_errors=True)


def test_root_interpreter_runs_chrooted_and_is_let_go(daemon, pyroot, app):
    inside, host = app
    write(host + "/m.py", "X = 1\n")
    p = daemon.pycq("compile", "--root=" + pyroot, inside + "/m.py")
    assert p.returncode == EXIT_OK, describe(p)
    p = daemon.pycq("--json", "why", "--root=" + pyroot, inside + "/m.py")
    assert p.returncode == EXIT_OK, describe(p)
    rec = json_records(p)[0]
    assert rec["interpreter"] == "/usr/bin/python3.11", rec  # as seen inside
    assert rec["root"] == pyroot and rec["source"] == inside + "/m.py", rec
    p = daemon.pycq("--json", "history", "--limit=1")  # the host's view
    rec = json_records(p)[0]
    assert rec["interpreter"] == pyroot + "/usr/bin/python3.11" and rec["root"] == pyroot, rec
    # The root's workers went with the request: nothing of the daemon's
    # runs inside the root any more.
    for pid in proc_children(daemon.pid):
        try:
            assert os.readlink("/proc/%d/root" % pid) != pyroot, "a worker still runs in the root"
        except FileNotFoundError:
            pass


def test_root_escape_is_refused(daemon, pyroot, app):
    inside, host = app
    decoy = host_decoy()
    try:
        write(host + "/ok.py", "X = 1\n")
        os.symlink("../../../../../../../../.." + decoy, host + "/out")
        os.symlink("../../../../../../../../.." + decoy + "/real.py", host + "/evil.py")
        p = daemon.pycq("compile", "--root=" + pyroot, inside + "/../../../.." + decoy, inside + "/out",
                        inside + "/evil.py", inside + "/ok.py")
        assert p.returncode == EXIT_FAILED, describe(p)
        assert p.err.count("it leads out of the root") == 3, describe(p)
        assert "1 compiled" in p.out and "3 failed" in p.out, describe(p)
        # A walk skips such a link rather than follow it out.
        p = daemon.pycq("compile", "-f", "--root=" + pyroot, inside)
        assert p.returncode == EXIT_OK and "1 compiled" in p.out, describe(p)
        assert not os.path.exists(decoy + "/__pycache__")
        assert not os.path.exists(cache_path(host + "/evil.py"))
        # --root itself is resolved like any path, and must be a directory.
        p = daemon.pycq("compile", "--python=/usr/bin/python3", "--root=" + host + "/ok.py", "/ok.py")
        assert p.returncode != EXIT_OK and "Not a directory" in p.err, describe(p)
    finally:
        shutil.rmtree(decoy, ignore_errors=True)


def test_root_paths_must_be_absolute(daemon, pyroot):
    for verb in (["compile"], ["verify"], ["clean"], ["repair"], ["why"]):
        p = daemon.pycq(*verb, "--root=" + pyroot, "srv/x.py")
        assert p.returncode == EXIT_USAGE, describe(p)
        assert "must be absolute" in p.err, describe(p)


def test_root_admin_verbs_speak_inside_paths(daemon, pyroot, app):
    inside, host = app
    decoy = make_app(pyroot, inside, host)
    try:
        p = daemon.pycq("compile", "--root=" + pyroot, inside)
        assert p.returncode == EXIT_OK, describe(p)
        p = daemon.pycq("verify", "--root=" + pyroot, inside)
        # the symlinked module's source is found inside the root: no orphan
        assert p.returncode == EXIT_OK and "4 checked, 0 problems" in p.out, describe(p)
        write(host + "/pkg/mod.py", "def f(x):\n    return x + 2\n", mtime=1_000_000_000)
        p = daemon.pycq("verify", "--root=" + pyroot, inside)
        assert p.returncode == EXIT_FAILED, describe(p)
        assert p.out.startswith(inside + "/pkg/__pycache__/mod.cpython-311.pyc: stale"), describe(p)
        p = daemon.pycq("repair", "--root=" + pyroot, inside)
        assert p.returncode == EXIT_OK and "1 repaired" in p.out, describe(p)
        assert co_filename(cache_path(host + "/pkg/mod.py")) == inside + "/pkg/mod.py"
        p = daemon.pycq("-v", "clean", "--root=" + pyroot, inside + "/pkg/sub")
        assert p.returncode == EXIT_OK, describe(p)
        assert "removed " + inside + "/pkg/sub/__pycache__/deep.cpython-311.pyc" in p.out, describe(p)
        assert not os.path.exists(cache_path(host + "/pkg/sub/deep.py"))
    finally:
        shutil.rmtree(decoy, ignore_errors=True)
        shutil.rmtree(pyroot + decoy, ignore_errors=True)


def test_chroot_client_compiles_in_its_root(daemon, pyroot, app, in_root):
    inside, host = app
    write(host + "/m.py", "import sys\nX = sys.version\n")
    p = in_root("compile", inside)
    assert p.returncode == EXIT_OK and "1 compiled" in p.out, describe(p)
    pyc = cache_path(host + "/m.py")
    assert co_filename(pyc) == inside + "/m.py"
    with open(pyc, "rb") as f:
        ours = f.read()
    assert inside_compileall(pyroot, inside) == {"__pycache__/m.cpython-311.pyc": ours}
    assert not os.path.exists(cache_path(inside + "/m.py")), "the host path was written"
    # Asked inside, why answers inside; from the host, with --root.
    p = in_root("--json", "why", inside + "/m.py")
    assert p.returncode == EXIT_OK, describe(p)
    rec = json_records(p)[0]
    assert rec["root"] == pyroot and rec["target"] == inside + "/__pycache__/m.cpython-311.pyc", rec
    assert rec["exe"] == pyroot + "/usr/bin/pycqueue", rec
    p = daemon.pycq("why", "--root=" + pyroot, inside + "/m.py")
    assert p.returncode == EXIT_OK and "root:" in p.out and pyroot in p.out, describe(p)


def test_chroot_client_errors_name_inside_paths(daemon, pyroot, app, in_root):
    inside, host = app
    write(host + "/bad.py", "def f(:\n")
    p = in_root("compile", inside + "/bad.py", "/usr/../..//../nope.py")
    assert p.returncode == EXIT_FAILED, describe(p)
    assert inside + "/bad.py:1: SyntaxError" in p.err, describe(p)
    assert "it leads out of the root" in p.err, describe(p)
    assert pyroot not in p.err, "a host path leaked into the chroot client's output: " + p.err


def test_chroot_client_unprivileged(daemon, pyroot, app, in_root):
    inside, host = app
    write(host + "/m.py", "X = 1\n")
    p = in_root("compile", inside)
    assert p.returncode == EXIT_OK, describe(p)
    os.chmod(host, 0o755)
    p = in_root("compile", "-f", inside, user="nobody")
    assert p.returncode == EXIT_PERM, describe(p)
    p = in_root("verify", inside, user="nobody")
    assert p.returncode == EXIT_OK and "1 checked, 0 problems" in p.out, describe(p)


def test_chroot_client_no_wait_survives_sigkill(daemon, pyroot, app, in_root):
    """A --no-wait request of a chroot client is stored with the client's
    root, and a restarted daemon replays it there."""
    inside, host = app
    for i in range(200):
        write(host + "/m%03d.py" % i, "X = %d\n" % i)
    daemon.stop()
    daemon.workers = 1
    daemon.start()
    p = in_root("compile", "--no-wait", "-O", "0", "-O", "1", inside)
    daemon.kill()
    assert p.returncode == EXIT_OK, describe(p)
    before = len(written(host))
    assert before < 400, "test premise: everything was compiled before the SIGKILL"
    daemon.start()
    p = daemon.pycq("wait")
    assert p.returncode == EXIT_OK, describe(p)
    assert "Resuming queued request" in daemon.log_text()
    assert len(written(host)) == 400
    assert co_filename(cache_path(host + "/m150.py", opt=1)) == inside + "/m150.py"
    p = daemon.pycq("--json", "history", "--limit=1")
    rec = json_records(p)[0]
    assert rec.get("root") == pyroot, rec


def test_failures_are_collected_in_their_root(daemon, pyroot, app, in_root):
    """A target's dpkg collects the failures of its own queued requests
    (`wait --failures` in the chroot), not the host's, and the host's
    trigger does not take the target's."""
    inside, host = app
    write(host + "/bad.py", "def f(:\n")
    p = in_root("compile", "--no-wait", inside)
    assert p.returncode == EXIT_OK, describe(p)
    p = daemon.pycq("wait", "--failures")
    assert (p.returncode, p.out, p.err) == (EXIT_OK, "", ""), describe(p)
    p = in_root("wait", "--failures")
    assert p.returncode == EXIT_FAILED, describe(p)
    assert p.err.startswith(inside + "/bad.py:1: SyntaxError"), describe(p)
    p = in_root("wait", "--failures")
    assert (p.returncode, p.out, p.err) == (EXIT_OK, "", ""), describe(p)


def test_content_cache_is_not_shared_with_a_root(daemon, pyroot):
    """What a root's interpreter compiled is never served to the host (or to
    another root) from the content cache, even for the same bytes under the
    same name: the host has no reason to trust a target's interpreter."""
    name = "/tmp/pycq-same-" + uuid.uuid4().hex[:8] + "/m.py"
    try:
        write(pyroot + name, "X = 1\n", mtime=1_000_000_000)
        write(name, "X = 1\n", mtime=1_000_000_000)
        p = daemon.pycq("compile", "--root=" + pyroot, name)
        assert p.returncode == EXIT_OK and "1 compiled" in p.out, describe(p)
        p = daemon.pycq("compile", name)
        assert p.returncode == EXIT_OK and "1 compiled" in p.out, describe(p)
        cache = daemon.status()["cache"]
        assert cache["hits"] == 0 and cache["misses"] == 2, cache
        # The root's own entry still serves the root.
        os.unlink(cache_path(pyroot + name))
        p = daemon.pycq("compile", "--root=" + pyroot, name)
        assert p.returncode == EXIT_OK, describe(p)
        assert daemon.status()["cache"]["hits"] == 1
    finally:
        shutil.rmtree(os.path.dirname(name), ignore_errors=True)
        shutil.rmtree(pyroot + os.path.dirname(name), ignore_errors=True)
