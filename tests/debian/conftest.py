# SPDX-License-Identifier: MIT
"""Fixtures of the Debian tests: the binary packages, built once per session
with dpkg-buildpackage from a copy of the source tree (the build never
writes into the tree under test), and their unpacked contents.

The tests run as root on Debian with the build dependencies of
debian/control installed (scripts/install-deps); on a machine without dpkg
they are skipped."""

import os
import shutil
import subprocess
import time

import pytest

SRCDIR = os.environ.get("PYCQUEUE_SRCDIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD_TIMEOUT = 1200  # seconds; only there to turn a hang into a failure
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def pytest_collection_modifyitems(config, items):
    if shutil.which("dpkg-buildpackage", path=CLEAN_PATH) is None:
        skip = pytest.mark.skip(reason="dpkg-buildpackage not found: not a Debian build machine")
        for item in items:
            item.add_marker(skip)


def build_env():
    """The package build's environment: the caller's, without make's
    jobserver (when run under make) or any DEB_* setting, plus a
    two-job nocheck build."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SOURCE_DATE_EPOCH")
           and not k.startswith("DEB_") and not k.startswith("DH_")}
    env["PATH"] = CLEAN_PATH
    env["LC_ALL"] = "C.UTF-8"
    # The package build runs no tests anyway (debian/rules); nocheck also
    # drops the test-only build dependencies from the check.
    env["DEB_BUILD_OPTIONS"] = "nocheck parallel=2"
    return env


def source_files(srcdir):
    """Relative paths of the tree's files: git's tracked and untracked,
    unignored files when it is a git work tree (so a build directory inside
    it is left out), else every file but .git and _build*."""
    try:
        out = subprocess.run(["git", "-C", srcdir, "ls-files", "-z", "-co", "--exclude-standard"],
                             check=True, capture_output=True).stdout
        names = [n.decode() for n in out.split(b"\0") if n]
        return [n for n in names if os.path.lexists(os.path.join(srcdir, n))]
    except (OSError, subprocess.CalledProcessError):
        pass
    names = []
    for top, dirs, files in os.walk(srcdir):
        rel = os.path.relpath(top, srcdir)
        dirs[:] = [d for d in dirs if d != ".git" and not (rel == "." and d.startswith("_build"))]
        names += [os.path.normpath(os.path.join(rel, f)) for f in files]
    return names


def tree_state(srcdir):
    """What a package build inside @srcdir would change: git's view of the
    tracked and untracked files (when it is a git work tree), the names at
    the top (configure, Makefile.in, build-aux from dh_autoreconf), every
    name under debian/ (debhelper's work directories, debian/files) and the
    build products dpkg-buildpackage writes beside the tree."""
    r = subprocess.run(["git", "-C", srcdir, "status", "--porcelain", "--untracked-files=all"],
                       capture_output=True)
    state = {"git": r.stdout if r.returncode == 0 else None, "top": sorted(os.listdir(srcdir))}
    state["debian"] = sorted(os.path.relpath(os.path.join(top, n), srcdir)
                             for top, dirs, files in os.walk(os.path.join(srcdir, "debian"))
                             for n in dirs + files)
    parent = os.path.dirname(os.path.abspath(srcdir))
    state["beside"] = sorted(n for n in os.listdir(parent)
                             if n.startswith("pycqueue") and n.endswith((".deb", ".changes", ".buildinfo")))
    return state


class DebianBuild:
    """The result of one package build in @workdir: the .changes, the
    .debs by package name, the build log and how long it took."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.srcdir = os.path.join(workdir, "pycqueue")
        self.log = os.path.join(workdir, "build.log")
        self.changes = None
        self.debs = {}
        self.seconds = None
        self.source_state_before = self.source_state_after = None

    def deb(self, package="pycqueue"):
        return self.debs[package]


@pytest.fixture(scope="session")
def debian_build(tmp_path_factory):
    """Builds the binary packages (dpkg-buildpackage -us -uc -b, nocheck
    profile) from a copy of SRCDIR; fails the test with the log's tail when
    the build fails."""
    workdir = str(tmp_path_factory.mktemp("debian-build"))
    build = DebianBuild(workdir)
    build.source_state_before = tree_state(SRCDIR)
    for name in source_files(SRCDIR):
        dest = os.path.join(build.srcdir, name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.join(SRCDIR, name), dest, follow_symlinks=False)

    start = time.monotonic()
    with open(build.log, "wb") as log:
        r = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b", "-Pnocheck"],
                           cwd=build.srcdir, env=build_env(), stdin=subprocess.DEVNULL,
                           stdout=log, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
    build.seconds = time.monotonic() - start
    build.source_state_after = tree_state(SRCDIR)
    if r.returncode != 0:
        with open(build.log, errors="replace") as f:
            tail = f.readlines()[-60:]
        pytest.fail("dpkg-buildpackage exited with %d; end of %s:\n%s"
                    % (r.returncode, build.log, "".join(tail)))

    for name in sorted(os.listdir(workdir)):
        path = os.path.join(workdir, name)
        if name.endswith(".changes"):
            build.changes = path
        elif name.endswith(".deb"):
            build.debs[name.split("_", 1)[0]] = path
    assert build.changes, "no .changes in %s" % workdir
    print("debian_build: dpkg-buildpackage took %.1f s" % build.seconds)
    return build


@pytest.fixture(scope="session")
def unpacked(debian_build, tmp_path_factory):
    """The pycqueue .deb unpacked (dpkg-deb -x) into a directory of its own;
    its control files (dpkg-deb -e) are in DEBIAN/ inside it."""
    root = str(tmp_path_factory.mktemp("pycqueue-deb"))
    subprocess.run(["dpkg-deb", "-x", debian_build.deb(), root], check=True)
    subprocess.run(["dpkg-deb", "-e", debian_build.deb(), os.path.join(root, "DEBIAN")], check=True)
    return root


@pytest.fixture(scope="session")
def chroot_base():
    """The cached bookworm base tarball of tests/debian/chroot.py, made on
    first use (mmdebstrap and the archive). Skips when chroot tests are
    turned off (PYCQUEUE_NO_CHROOT=1, scripts/run-tests --no-chroot), when
    not root, or when no chroot can be made here (ChrootUnavailable says
    why)."""
    import chroot

    if os.environ.get("PYCQUEUE_NO_CHROOT") == "1":
        pytest.skip("chroot tests turned off (PYCQUEUE_NO_CHROOT=1, run-tests --no-chroot)")
    if os.geteuid() != 0:
        pytest.skip("chroot tests need root (mounts, chroot)")
    try:
        return chroot.ensure_base()
    except chroot.ChrootUnavailable as e:
        pytest.skip(str(e))
