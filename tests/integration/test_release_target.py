# SPDX-License-Identifier: MIT
"""Letting go of the target (issue 8, "Let go of the target").

Once a request is answered, the daemon holds no descriptor, working
directory, root or worker inside the tree the request named, so that an
installer can unmount its target at once. Each test mounts a tmpfs, runs one
verb on a tree in it, and then unmounts it right away: a plain umount, no
lazy unmount and no retry, while the daemon keeps running. When the umount
fails, the message lists what of the daemon and its workers still points
into the mount (/proc/PID/fd, cwd, root).

How the client reaches the tree is a Target:
  host    the tree is a host path, the client names it as it is;
  root    the tmpfs holds a minimal Python root, the client names paths
          inside it with --root=MNT (workers run chrooted into it);
  chroot  the client itself runs in a chroot (`chroot ROOT pycqueue ...`)
          that reaches the daemon through the daemon's socket directory
          bind-mounted into ROOT, and the tmpfs is mounted inside ROOT.
Every flow (FLOWS) runs with every target (TARGETS).
"""

import os
import shutil
import subprocess

import pytest

from pycqtest import (PYCQUEUE, PYCQUEUED, cache_path, clean_env, fsb, install_binary, make_python_root, read,
                      terminate, wait_for_socket, write, write_daemon_config)

INSIDE_PKG = "/usr/lib/python3/dist-packages/pkg"


def is_mounted(path):
    """True when @path is a mount point (in /proc/self/mountinfo)."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = line.split()[4].decode("unicode_escape")  # \040 and friends
            if point == target:
                return True
    return False


def mount_tmpfs(path):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=256m", "pycq-target", path],
                   check=True, timeout=30)


def holders(d, mnt):
    """What the daemon and its descendants hold inside @mnt: one line each."""
    mnt = os.path.realpath(mnt)
    out = []

    def inside(link):
        link = link.removesuffix(" (deleted)")
        return link == mnt or link.startswith(mnt + "/")

    for pid in [d.pid] + d.descendants():
        links = []
        for sub in ("fd", "task"):
            try:
                names = os.listdir("/proc/%d/%s" % (pid, sub))
            except OSError:
                continue
            for n in names:
                if sub == "fd":
                    links.append(("fd %s" % n, "/proc/%d/fd/%s" % (pid, n)))
                else:
                    for what in ("cwd", "root"):
                        links.append(("task %s %s" % (n, what), "/proc/%d/task/%s/%s" % (pid, n, what)))
        for what, path in links:
            try:
                link = os.readlink(path)
            except OSError:
                continue
            if inside(link):
                out.append("pid %d %s -> %s" % (pid, what, link))
    return out


def assert_unmounts(d, mnt):
    """umount @mnt once: it must succeed, the mount must be gone, and the
    daemon must still be running (and answering) afterwards."""
    held = holders(d, mnt)
    p = subprocess.run(["umount", mnt], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and not is_mounted(mnt), \
        "umount %s: exit %d: %s\nthe daemon still holds:\n  %s" % (
            mnt, p.returncode, p.stderr.strip(), "\n  ".join(held) or "(nothing seen in /proc)")
    assert held == [], held
    assert d.running(), "the daemon exited"
    assert d.pycq("status").returncode == 0


@pytest.fixture
def mounts():
    """Mount points to clean up whatever happens: umount, and only if that
    fails (the test has failed already) a lazy one, so that nothing is
    left mounted on the machine."""
    points = []
    yield points
    for m in reversed(points):
        if is_mounted(m) and subprocess.run(["umount", m], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def python_root_pristine(tmp_path_factory):
    """A minimal Python root (make_python_root()), made once; tests copy it."""
    return make_python_root(tmp_path_factory.mktemp("python-root") / "root")


def copy_root(src, dest):
    subprocess.run(["cp", "-a", "--", str(src) + "/.", str(dest)], check=True, timeout=120)


# --- targets ---------------------------------------------------------------------

class Target:
    """A tree in a tmpfs and a way for the client to name it. @tree is the
    package directory as the client names it, host() maps such a path to
    the host, and pycq() runs the client."""

    name = None
    verbs_with_root = ("compile", "clean", "verify", "repair", "why")

    def __init__(self, daemon, base, mounts, pristine):
        self.d = daemon
        self.base = str(base)
        self.mounts = mounts
        self.pristine = pristine
        self.mnt = None  # the tmpfs to unmount
        self.tree = None

    def setup(self):
        raise NotImplementedError

    def host(self, path):
        return path

    def argv(self, verb, *args):
        return [PYCQUEUE, "--socket=" + self.d.socket, "--no-autostart", verb] + [fsb(a) for a in args]

    def pycq(self, verb, *args, cwd="/"):
        p = subprocess.run(self.argv(verb, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=clean_env(), cwd=cwd, timeout=180)
        p.out = p.stdout.decode("utf-8", "surrogateescape")
        p.err = p.stderr.decode("utf-8", "surrogateescape")
        return p

    def history_path(self, path):
        """history has no --root: it takes the path the daemon recorded."""
        return path

    def populate(self):
        host = self.host(self.tree)
        for rel, text in (("__init__.py", ""), ("m1.py", "x = 1\n"), ("m2.py", "def f():\n    return 2\n"),
                          ("sub/__init__.py", ""), ("sub/s1.py", "y = [1, 2, 3]\n"),
                          ("sub/deeper/s2.py", "import os\n")):
            write(os.path.join(host, rel), text.encode())

    def sources(self):
        """The sources, as the client names them."""
        return [os.path.join(self.tree, rel) for rel in
                ("__init__.py", "m1.py", "m2.py", "sub/__init__.py", "sub/s1.py", "sub/deeper/s2.py")]


class HostTarget(Target):
    name = "host"

    def setup(self):
        self.mnt = os.path.join(self.base, "target")
        mount_tmpfs(self.mnt)
        self.mounts.append(self.mnt)
        self.tree = os.path.join(self.mnt, "pkg")
        self.populate()


class RootTarget(Target):
    """`pycqueue VERB --root=MNT PATH...`: MNT is the tmpfs, a Python root."""
    name = "root"

    def setup(self):
        self.mnt = os.path.join(self.base, "target")
        mount_tmpfs(self.mnt)
        self.mounts.append(self.mnt)
        copy_root(self.pristine, self.mnt)
        self.tree = INSIDE_PKG
        self.populate()

    def host(self, path):
        return self.mnt + path

    def argv(self, verb, *args):
        extra = ["--root=" + self.mnt] if verb in self.verbs_with_root else []
        return super().argv(verb, *extra, *args)

    def history_path(self, path):
        return self.host(path)


class ChrootTarget(Target):
    """`chroot ROOT pycqueue VERB PATH...`: ROOT (on disk) is a Python root
    with the client in it and the daemon's socket directory bind-mounted at
    /run/pycqueue; the tmpfs is mounted at ROOT/target."""
    name = "chroot"

    def setup(self):
        self.root = os.path.join(self.base, "root")
        os.makedirs(self.root)
        copy_root(self.pristine, self.root)
        install_binary(self.root, PYCQUEUE, "/usr/bin/pycqueue")
        run = os.path.join(self.root, "run/pycqueue")
        os.makedirs(run, exist_ok=True)
        subprocess.run(["mount", "--bind", os.path.dirname(self.d.socket), run], check=True, timeout=30)
        self.mounts.append(run)
        # A sanitizer build of the client reads /proc/self/maps.
        proc = os.path.join(self.root, "proc")
        os.makedirs(proc, exist_ok=True)
        subprocess.run(["mount", "-t", "proc", "proc", proc], check=True, timeout=30)
        self.mounts.append(proc)
        self.mnt = os.path.join(self.root, "target")
        mount_tmpfs(self.mnt)
        self.mounts.append(self.mnt)
        self.tree = "/target/pkg"
        self.populate()

    def host(self, path):
        return self.root + path

    def argv(self, verb, *args):
        sock = "/run/pycqueue/" + os.path.basename(self.d.socket)
        return (["chroot", self.root, "/usr/bin/pycqueue", "--socket=" + sock, "--no-autostart", verb]
                + [fsb(a) for a in args])


# More ways to reach a target go here; every flow runs with each.
TARGETS = [HostTarget, RootTarget, ChrootTarget]


# --- flows -------------------------------------------------------------------------

def ok(p, what, code=0):
    assert p.returncode == code, "%s: exit %d (wanted %d)\n%s%s" % (what, p.returncode, code, p.out, p.err)
    return p


def compile_ok(t, *args):
    return ok(t.pycq("compile", *args, t.tree), "compile")


def assert_compiled(t):
    for s in t.sources():
        assert read(cache_path(t.host(s)))[:4] == read_magic(), s


def read_magic():
    import importlib.util
    return importlib.util.MAGIC_NUMBER


def flow_compile(t):
    compile_ok(t)
    assert_compiled(t)


def flow_compile_up_to_date(t):
    compile_ok(t)
    p = compile_ok(t)
    assert "0 compiled, %d up to date" % len(t.sources()) in p.err + p.out


def flow_compile_files(t):
    # Single files: the walk opens their directories one by one.
    ok(t.pycq("compile", *t.sources()), "compile FILE...")
    assert_compiled(t)


def flow_verify(t):
    compile_ok(t)
    p = ok(t.pycq("verify", t.tree), "verify")
    assert "%d checked, 0 problems" % len(t.sources()) in p.out + p.err


def flow_repair(t):
    compile_ok(t)
    bad = cache_path(t.host(t.sources()[1]))
    write(bad, b"junk")
    p = ok(t.pycq("repair", t.tree), "repair")
    assert "1 repaired" in p.out + p.err
    assert read(bad)[:4] == read_magic()


def flow_clean(t):
    compile_ok(t)
    ok(t.pycq("clean", t.tree), "clean")
    assert not any(os.path.exists(cache_path(t.host(s))) for s in t.sources())


def flow_why(t):
    compile_ok(t)
    p = ok(t.pycq("why", t.sources()[1]), "why")
    assert "identical to the last write by pycqueued" in p.out


def flow_history(t):
    compile_ok(t)
    p = ok(t.pycq("history", t.history_path(t.sources()[1])), "history")
    assert "m1.cpython-" in p.out


def flow_syntax_error(t):
    write(os.path.join(t.host(t.tree), "bad.py"), b"def (\n")
    p = ok(t.pycq("compile", t.tree), "compile with a syntax error", code=1)
    assert "bad.py:1: SyntaxError" in p.err
    assert_compiled(t)


def flow_no_wait_then_wait(t):
    ok(t.pycq("compile", "--no-wait", t.tree), "compile --no-wait")
    ok(t.pycq("wait"), "wait")
    assert_compiled(t)


def flow_content_cache(t):
    # Compile, clean, compile again: the second compile is served from the
    # content cache (the daemon's own, outside the target).
    compile_ok(t)
    ok(t.pycq("clean", t.tree), "clean")
    compile_ok(t)
    assert_compiled(t)
    cache = t.d.status()["cache"]
    assert cache["enabled"] and cache["hits"] == len(t.sources()), cache


FLOWS = [flow_compile, flow_compile_up_to_date, flow_compile_files, flow_verify, flow_repair, flow_clean,
         flow_why, flow_history, flow_syntax_error, flow_no_wait_then_wait, flow_content_cache]


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.__name__.removeprefix("flow_"))
@pytest.mark.parametrize("target_class", TARGETS, ids=lambda c: c.name)
def test_target_unmounts_right_after(daemon, tmp_path, mounts, python_root_pristine, target_class, flow):
    t = target_class(daemon, tmp_path, mounts, python_root_pristine)
    t.setup()
    flow(t)
    assert_unmounts(daemon, t.mnt)


def test_daemon_started_inside_a_tree_leaves_it(tmp_path):
    """A daemon started by hand from a directory (an installer's target, say)
    does not keep it as its working directory: relative --socket and
    --state-dir are taken against it, and then the daemon moves to /."""
    write_daemon_config(str(tmp_path / "d.conf"))
    proc = subprocess.Popen([PYCQUEUED, "--socket=d.sock", "--state-dir=state", "--config=d.conf"],
                            cwd=str(tmp_path), env=clean_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(str(tmp_path / "d.sock"), proc, timeout=10)
        assert os.readlink("/proc/%d/cwd" % proc.pid) == "/"
        assert os.path.isdir(tmp_path / "state")
    finally:
        terminate(proc)
