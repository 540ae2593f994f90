# SPDX-License-Identifier: MIT
"""The real thing (issue 7, section 5): pycqueue's .debs installed in a
bookworm chroot, then 40 real python3-* packages from the archive with one
apt-get install, side by side with a "stock" chroot where Debian's own
py3compile and py3clean do the same work. No init runs in either: the
daemon is started by the front-end's autostart from inside a maintainer
script.

One module-scoped setup makes both chroots and installs the set in each
(about two minutes on a warm cache); the tests then run in file order on
the same two systems, each one a step of a package's life: install,
reinstall, racing compiles, remove, purge, and last the purge of pycqueue.
A test that changes a chroot says so; the ones after it depend on that
step having been taken (pytest keeps file order).

See chroot.py for the cache (/var/cache/pycqueue-tests) and the sources."""

import json
import os
import shutil
import time

import pytest

import chroot as chrootlib

# Packages whose files `pycqueue why` is asked about.
WHY_PACKAGES = ["python3-yaml", "python3-six", "python3-sqlalchemy", "python3-zmq",
                "python3-requests", "python3-pygments"]
# Compiled by two racing py3compile -p and a compileall loop.
RACE_PACKAGE = "python3-docutils"
RACE_TIMEOUT = 300
# Removed, then purged (with the removed ones).
REMOVE = ["python3-yaml", "python3-jinja2", "python3-sqlalchemy"]
PURGE = ["python3-docutils", "python3-lxml", "python3-click"]
TOOLS = ["/usr/bin/py3compile", "/usr/bin/py3clean"]
TIMINGS = {}


def report_timing(name, seconds):
    TIMINGS[name] = round(seconds, 1)
    print("chroot timing: %s %.1f s" % (name, seconds))


class System:
    """The two chroots and what the set's install left in each."""

    def __init__(self, stock, pycq):
        self.stock, self.pycq = stock, pycq
        self.stock_install = self.pycq_install = None
        self.stock_state = self.pycq_state = None


def apt_text(r):
    return "exit %d\n--- stdout (end)\n%s\n--- stderr\n%s" % (r.returncode, r.stdout[-4000:], r.stderr[-4000:])


@pytest.fixture(scope="module")
def system(chroot_base, debian_build, tmp_path_factory):
    top = str(tmp_path_factory.mktemp("chroots"))
    stock = chrootlib.Chroot(os.path.join(top, "stock"), chroot_base)
    pycq = chrootlib.Chroot(os.path.join(top, "pycqueue"), chroot_base)
    start = time.monotonic()
    try:
        stock.setup()
        pycq.setup()
        report_timing("unpack both chroots", time.monotonic() - start)
        # The daemon's package only: python3-pycqueue (the Python module)
        # is a package of its own that removing pycqueue leaves alone.
        seconds, _ = pycq.install_debs([debian_build.deb("pycqueue")])
        report_timing("apt install of pycqueue's .debs", seconds)
        s = System(stock, pycq)
        seconds, s.stock_install = stock.apt(chrootlib.INSTALL + chrootlib.PACKAGES)
        report_timing("apt install of the set, stock", seconds)
        seconds, s.pycq_install = pycq.apt(chrootlib.INSTALL + chrootlib.PACKAGES, check=False)
        report_timing("apt install of the set, pycqueue", seconds)
        s.stock_state = stock.pyc_state()
        s.pycq_state = pycq.pyc_state()
        yield s
    finally:
        for c in (pycq, stock):
            c.teardown()
        report_timing("whole module", time.monotonic() - start)
        with open(os.path.join(top, "..", "chroot-timings.json"), "w") as f:
            json.dump(TIMINGS, f, indent=1)


def pyc_diff(a, b, limit=20):
    """The paths whose presence or bytes differ between two {path: sha256}."""
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    differ = sorted(p for p in set(a) & set(b) if a[p] != b[p])
    return {"only in pycqueue": only_a[:limit], "only in stock": only_b[:limit],
            "bytes differ": differ[:limit],
            "counts": [len(only_a), len(only_b), len(differ)]}


def tree(c, root="/usr/lib/python3/dist-packages"):
    """Every path (files and directories) under @root in chroot @c."""
    host = c.host_path(root)
    out = set()
    for top, dirs, files in os.walk(host):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(top, n), host))
    return out


def cache_tag(c):
    return c.run(["/usr/bin/python3", "-I", "-c", "import sys; print(sys.implementation.cache_tag)"]).stdout.strip()


def package_pycs(c, package, state):
    """The .pyc paths in @state whose sources belong to @package."""
    tag = cache_tag(c)
    out = []
    for f in c.package_files(package):
        if f.endswith(".py"):
            d, base = os.path.split(f)
            pyc = os.path.join(d, "__pycache__", "%s.%s.pyc" % (base[:-3], tag))
            if pyc in state["pycs"]:
                out.append(pyc)
    return out


# --- the install ---------------------------------------------------------------

def test_front_ends_are_diverted_into_place(system):
    """Without this the rest would compare Debian's tools with themselves."""
    listing = system.pycq.run(["dpkg-divert", "--list"]).stdout
    for tool in TOOLS:
        owner = system.pycq.run(["dpkg-divert", "--listpackage", tool]).stdout.strip()
        assert owner == "pycqueue", "%s not diverted by pycqueue:\n%s" % (tool, listing)
        assert system.pycq.read_bytes(tool) != system.stock.read_bytes(tool)


def test_the_set_installs(system):
    r = system.pycq_install
    assert r.returncode == 0, apt_text(r)
    status = system.pycq.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"]
                             + chrootlib.PACKAGES).stdout
    assert all(line.split()[1] == "ii" for line in status.splitlines()), status


def test_every_pyc_is_valid(system):
    st = system.pycq_state
    assert len(st["pycs"]) > 2000
    assert st["invalid"] == {}
    assert st["orphans"] == []


def test_pycs_are_identical_to_stock(system):
    """The whole set of .pyc paths under /usr/lib/python3* and /usr/share,
    and their bytes, equal the stock chroot's."""
    assert system.stock_state["invalid"] == {}, "the stock chroot itself has invalid .pyc files"
    assert len(system.stock_state["pycs"]) > 2000
    diff = pyc_diff(system.pycq_state["pycs"], system.stock_state["pycs"])
    assert diff["counts"] == [0, 0, 0], json.dumps(diff, indent=1)


def test_why_names_package_and_postinst(system):
    """`pycqueue why` inside the chroot, for one .pyc of each of a few
    packages: the package is named, and so is the maintainer script that
    asked (postinst, from DPKG_MAINTSCRIPT_NAME or the parent chain)."""
    problems = []
    for package in WHY_PACKAGES:
        pycs = package_pycs(system.pycq, package, system.pycq_state)
        assert pycs, "no .pyc of %s" % package
        pyc = pycs[len(pycs) // 2]
        r = system.pycq.run(["pycqueue", "why", pyc], check=False)
        named = {line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
                 if line.strip().startswith("package:")}
        # dh_python3 calls `py3compile -p PKG:ARCH` for Architecture: any
        # packages; provenance names the package as dpkg does, PKG.
        if r.returncode != 0 or named != {package} or "(postinst of %s)" % package not in r.stdout:
            problems.append("%s (%s): exit %d\n%s%s" % (pyc, package, r.returncode, r.stdout, r.stderr))
    assert problems == [], "\n".join(problems)


# --- reinstall (changes the pycqueue chroot) ------------------------------------------

def test_reinstall_leaves_the_same_pycs(system):
    seconds, r = system.pycq.apt(["install", "--reinstall"] + chrootlib.PACKAGES, check=False)
    report_timing("apt reinstall of the set, pycqueue", seconds)
    assert r.returncode == 0, apt_text(r)
    st = system.pycq.pyc_state()
    assert st["orphans"] == []
    assert st["invalid"] == {}
    diff = pyc_diff(st["pycs"], system.stock_state["pycs"])
    assert diff["counts"] == [0, 0, 0], json.dumps(diff, indent=1)


# --- racing compiles (changes the pycqueue chroot) -------------------------------------

def test_racing_compiles_leave_every_file_compiled(system):
    """The package's .pyc files (and its own __pycache__ directories)
    deleted, then two `py3compile -p PKG` at once
    while a `python3 -m compileall -f` loop rewrites the same tree: both
    exit 0 without an error, and afterwards every .pyc the stock tools made
    for the package is there, valid and identical to stock's."""
    c = system.pycq
    expected = set(package_pycs(system.stock, RACE_PACKAGE, system.stock_state))
    assert len(expected) > 50
    # Whole __pycache__ directories go where only this package's files are
    # in them: creating them is where Debian's py3compile races with itself.
    for cache_dir in sorted({os.path.dirname(p) for p in expected}):
        host = c.host_path(cache_dir)
        if all(os.path.join(cache_dir, n) in expected for n in os.listdir(host)):
            shutil.rmtree(host)
    for pyc in expected:
        if os.path.exists(c.host_path(pyc)):
            os.unlink(c.host_path(pyc))
    tops = sorted({p.split("/")[5] for p in expected if p.startswith("/usr/lib/python3/dist-packages/")})
    dirs = ["/usr/lib/python3/dist-packages/" + t for t in tops]
    stop = c.host_path("/tmp/stop-compileall")
    loop = c.popen(["/bin/sh", "-c", 'n=0; while [ ! -e /tmp/stop-compileall ]; do '
                    'python3 -m compileall -q -f "$@" >/dev/null 2>&1; n=$((n+1)); done; echo $n', "sh"]
                   + dirs)
    try:
        racers = [c.popen(["py3compile", "-p", RACE_PACKAGE]) for _ in range(2)]
        results = [p.communicate(timeout=RACE_TIMEOUT) + (p.returncode,) for p in racers]
    finally:
        open(stop, "w").close()
        loops = loop.communicate(timeout=RACE_TIMEOUT)[0].strip()
    for out, err, rc in results:
        assert rc == 0, "py3compile -p %s: exit %d\n%s%s" % (RACE_PACKAGE, rc, out, err)
        assert "Error" not in err, err
    assert int(loops) >= 1
    assert c.check_pycs(sorted(expected)) == {}
    st = c.pyc_state(["/usr/lib/python3/dist-packages"])
    mine = {p: st["pycs"].get(p) for p in expected}
    stock = {p: system.stock_state["pycs"][p] for p in expected}
    assert mine == stock


# --- remove and purge (change both chroots) ----------------------------------------------

def remove_in_both(system, verb, packages):
    for c, side in ((system.stock, "stock"), (system.pycq, "pycqueue")):
        seconds, r = c.apt([verb] + packages, check=False)
        report_timing("apt %s, %s" % (verb, side), seconds)
        assert r.returncode == 0, "%s: %s" % (side, apt_text(r))


def assert_same_as_stock(system):
    st = system.pycq.pyc_state()
    stock = system.stock.pyc_state()
    assert st["orphans"] == []
    assert st["invalid"] == {}
    diff = pyc_diff(st["pycs"], stock["pycs"])
    assert diff["counts"] == [0, 0, 0], json.dumps(diff, indent=1)
    # No directory the stock tools would have removed (a __pycache__ that
    # dpkg could not remove because a .pyc was still in it) is left.
    only_here = sorted(tree(system.pycq) - tree(system.stock))
    assert only_here == []


def test_remove_leaves_no_orphan(system):
    gone = [p for pkg in REMOVE for p in package_pycs(system.pycq, pkg, system.pycq_state)]
    assert gone
    remove_in_both(system, "remove", REMOVE)
    assert [p for p in gone if os.path.lexists(system.pycq.host_path(p))] == []
    assert_same_as_stock(system)


def test_purge_leaves_no_orphan(system):
    gone = [p for pkg in PURGE for p in package_pycs(system.pycq, pkg, system.pycq_state)]
    assert gone
    remove_in_both(system, "purge", PURGE + REMOVE)
    assert [p for p in gone if os.path.lexists(system.pycq.host_path(p))] == []
    assert_same_as_stock(system)


# --- purging pycqueue (last: the pycqueue chroot is then a stock one) -------------------

def test_purge_of_pycqueue_restores_debians_tools(system):
    c = system.pycq
    seconds, r = c.apt(["purge", "pycqueue"], check=False)
    report_timing("apt purge pycqueue", seconds)
    assert r.returncode == 0, apt_text(r)
    for tool in TOOLS:
        assert c.read_bytes(tool) == system.stock.read_bytes(tool), tool
        assert os.lstat(c.host_path(tool)).st_mode == os.lstat(system.stock.host_path(tool)).st_mode, tool
    assert os.path.lexists(c.host_path("/usr/bin/pycompile")) == \
        os.path.lexists(system.stock.host_path("/usr/bin/pycompile"))
    listing = c.run(["dpkg-divert", "--list"]).stdout
    assert "pycqueue" not in listing, listing
    # Debian's py3compile works again, and what pycqueue compiled stays valid.
    r = c.run(["py3compile", "-p", "python3-six"], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    st = c.pyc_state()
    assert st["invalid"] == {} and st["orphans"] == []
