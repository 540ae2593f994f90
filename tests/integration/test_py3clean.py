# SPDX-License-Identifier: MIT
"""The py3clean front-end against Debian's own py3clean, and the order of
cleans and compiles of the same sources.

Each comparison builds one tree twice (sources, .pyc files of every level
written by compileall, a foreign interpreter's .pyc, legacy NAME.pyc/.pyo
beside a source, names with dots), runs Debian's /usr/bin/py3clean on one
copy and the front-end on the other with the same arguments, and asserts the
same set of files is left and both agree on success. Package cases use a
private dpkg database per copy ($DPKG_ADMINDIR for Debian's `dpkg -L`,
$PYCQUEUE_DPKG_ADMINDIR for the front-end) that lists that copy's files.
The front-end reaches the test daemon through $PYCQUEUE_SOCKET and never
autostarts one."""

import json
import os
import shutil
import threading
import time

import pytest

from pycqtest import (CLIENT_TIMEOUT, FRONTEND, PYTHON, assert_tree_compiled, clean_env, copy_tree,
                      frontend_for_another_user, frontend_link, write)
from pycqtest import frontend_env as fe_env
from pycqtest import run_tool as run

DEBIAN_PY3CLEAN = "/usr/bin/py3clean"
PACKAGE = "python3-fake-clean"

pytestmark = pytest.mark.skipif(not os.access(FRONTEND, os.X_OK) or not os.access(DEBIAN_PY3CLEAN, os.X_OK),
                                reason="front-end not built or Debian's py3clean missing")


def frontend(tmp_path):
    return frontend_link(tmp_path, "py3clean")


def compileall(root, *args):
    p = run([PYTHON, "-m", "compileall", "-q", *args, root])
    assert p.returncode == 0, p.err


def build_tree(root):
    """Sources with their compiled files of every kind py3clean meets."""
    copy_tree("/usr/lib/python3.11", root, ["json", "email"])
    write(os.path.join(root, "top.py"), b"X = 1\n")
    write(os.path.join(root, "dotted.name.py"), b"D = 1\n")
    write(os.path.join(root, "dotted.py"), b"DD = 1\n")
    write(os.path.join(root, "pkg", "__init__.py"), b"")
    write(os.path.join(root, "pkg", "mod.py"), b"M = 1\n")
    write(os.path.join(root, "pkg", "sub", "deep.py"), b"P = 1\n")
    write(os.path.join(root, "pkg", "notes.txt"), b"not python\n")
    compileall(root)
    compileall(root, "-o", "1")
    compileall(root, "-o", "2")
    # A foreign interpreter's and an unknown kind of cache file.
    for name in ("top.cpython-39.pyc", "top.cpython-311.pyo", "mod.cpython-39.opt-1.pyc"):
        d = os.path.join(root, "pkg" if name.startswith("mod") else "", "__pycache__")
        shutil.copy(os.path.join(d, name.split(".")[0] + ".cpython-311.pyc"), os.path.join(d, name))
    write(os.path.join(root, "__pycache__", "top.stale"), b"x")
    # Legacy files beside their source (Python 3.1 and 2).
    for name in ("top.pyc", "top.pyo", "pkg/mod.pyc"):
        shutil.copy(os.path.join(root, "__pycache__", "top.cpython-311.pyc"), os.path.join(root, name))


def listing(root):
    out = set()
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


def package_db(base, root, rels):
    """A dpkg database whose PACKAGE owns @rels under @root."""
    admin = os.path.join(base, "admin")
    os.makedirs(os.path.join(admin, "info"))
    lines = [root] + [os.path.join(root, r) for r in rels]
    with open(os.path.join(admin, "info", PACKAGE + ".list"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(admin, "status"), "w") as f:
        f.write("Package: %s\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n"
                "Maintainer: t <t@t>\nDescription: t\n\n" % PACKAGE)
    return admin


def compare(d, tmp_path, args, package_rels=None, cwd_rel=None):
    """Debian's py3clean on one copy, the front-end on the other; @args is a
    function of the copy's root. Returns (ours, stock, remaining)."""
    results = {}
    for who in ("stock", "ours"):
        base = str(tmp_path / who)
        root = os.path.join(base, "tree")
        build_tree(root)
        env = {}
        if package_rels is not None:
            admin = package_db(base, root, package_rels)
            env = {"DPKG_ADMINDIR": admin, "PYCQUEUE_DPKG_ADMINDIR": admin}
        cwd = os.path.join(root, cwd_rel) if cwd_rel else None
        if who == "stock":
            p = run([DEBIAN_PY3CLEAN, *args(root)], env=clean_env(env), cwd=cwd)
        else:
            p = run([frontend(tmp_path), *args(root)], env=fe_env(d, env), cwd=cwd)
        results[who] = (p, listing(root))
    (stock, left_stock), (ours, left_ours) = results["stock"], results["ours"]
    assert ours.returncode == stock.returncode, (stock.err, ours.err)
    assert left_ours == left_stock, (ours.err, sorted(left_ours ^ left_stock))
    return ours, stock, left_ours


def test_directory_same_as_debian(start_daemon, tmp_path):
    d = start_daemon()
    ours, _, left = compare(d, tmp_path, lambda root: [root])
    assert ours.returncode == 0, ours.err
    assert not any(p.endswith((".pyc", ".pyo")) for p in left), sorted(left)
    assert "__pycache__" not in left and "pkg/notes.txt" in left


def test_file_operands_same_as_debian(start_daemon, tmp_path):
    """Absolute and relative file operands, a name with dots, and a file that
    is no source (skipped by both)."""
    d = start_daemon()
    ours, _, left = compare(d, tmp_path, lambda root: [os.path.join(root, "dotted.name.py"), "mod.py",
                                                       os.path.join(root, "pkg", "notes.txt")],
                            cwd_rel="pkg")
    assert ours.returncode == 0, ours.err
    # bpo-22966: dotted.name.py takes dotted's files with it, as in Debian.
    assert "__pycache__/dotted.cpython-311.pyc" not in left
    assert "__pycache__/top.cpython-311.pyc" in left


def test_version_same_as_debian(start_daemon, tmp_path):
    """-V 3.11: that tag's NAME.TAG.py[co] only (not -O files, not 3.9's)."""
    d = start_daemon()
    ours, _, left = compare(d, tmp_path, lambda root: ["-V", "3.11", root])
    assert ours.returncode == 0, ours.err
    assert "__pycache__/top.cpython-311.pyc" not in left
    assert "__pycache__/top.cpython-311.opt-1.pyc" in left and "__pycache__/top.cpython-39.pyc" in left


def test_legacy_version_same_as_debian(start_daemon, tmp_path):
    """-V 3.1: only the legacy NAME.pyc/NAME.pyo beside the source."""
    d = start_daemon()
    ours, _, left = compare(d, tmp_path, lambda root: ["-V", "3.1", root])
    assert ours.returncode == 0, ours.err
    assert "top.pyc" not in left and "pkg/mod.pyc" not in left
    assert "__pycache__/top.cpython-311.pyc" in left


def test_package_same_as_debian(start_daemon, tmp_path):
    """-p PKG: every *.py the package lists, not only public directories."""
    d = start_daemon()
    rels = ["top.py", "dotted.name.py", "pkg", "pkg/mod.py", "pkg/notes.txt", "json/decoder.py"]
    ours, _, left = compare(d, tmp_path, lambda root: ["-p", PACKAGE], package_rels=rels)
    assert ours.returncode == 0, ours.err
    assert "pkg/__pycache__/mod.cpython-311.pyc" not in left
    assert "pkg/sub/__pycache__/deep.cpython-311.pyc" in left  # not the package's


def test_package_and_directory_same_as_debian(start_daemon, tmp_path):
    """-p PKG DIR: the package's files under DIR only."""
    d = start_daemon()
    rels = ["top.py", "pkg", "pkg/mod.py", "pkg/sub/deep.py"]
    ours, _, left = compare(d, tmp_path, lambda root: ["-p", PACKAGE, os.path.join(root, "pkg")],
                            package_rels=rels)
    assert ours.returncode == 0, ours.err
    assert "__pycache__/top.cpython-311.pyc" in left
    assert "pkg/sub/__pycache__/deep.cpython-311.pyc" not in left


def test_usage_same_as_debian(start_daemon, tmp_path):
    d = start_daemon()
    stock = run([DEBIAN_PY3CLEAN], env=clean_env())
    ours = run([frontend(tmp_path)], env=fe_env(d))
    assert ours.returncode == stock.returncode == 1, (stock.err, ours.err)
    assert "Usage:" in ours.out


def test_removal_recorded(start_daemon, tmp_path):
    d = start_daemon()
    root = str(tmp_path / "tree")
    build_tree(root)
    rels = ["pkg/mod.py"]
    admin = package_db(str(tmp_path), root, rels)
    p = run([frontend(tmp_path), "-p", PACKAGE], env=fe_env(d, {"PYCQUEUE_DPKG_ADMINDIR": admin}))
    assert p.returncode == 0, p.err
    pyc = os.path.join(root, "pkg", "__pycache__", "mod.cpython-311.pyc")
    assert not os.path.exists(pyc)
    h = d.pycq("history", "--json", "--package=" + PACKAGE)
    assert h.returncode == 0, h.err
    rows = [r for r in json.loads(h.stdout) if r["target"] == pyc]
    assert rows and rows[0]["outcome"] == "removed", rows
    assert rows[0]["tool"] == "py3clean" and rows[0]["package"] == PACKAGE, rows[0]
    assert rows[0]["source"] == os.path.join(root, "pkg", "mod.py")


def test_symlinked_pycache_not_followed(start_daemon, tmp_path):
    d = start_daemon()
    root = tmp_path / "tree"
    elsewhere = tmp_path / "elsewhere"
    write(root / "mod.py", b"M = 1\n")
    write(elsewhere / "mod.cpython-311.pyc", b"precious")
    (root / "__pycache__").symlink_to(elsewhere)
    write(root / "mod.pyc", b"legacy")
    os.symlink(str(elsewhere / "mod.cpython-311.pyc"), str(root / "mod.pyo"))
    p = run([frontend(tmp_path), str(root)], env=fe_env(d))
    assert p.returncode == 0, p.err
    assert (elsewhere / "mod.cpython-311.pyc").read_bytes() == b"precious"
    assert (root / "__pycache__").is_symlink()
    assert not (root / "mod.pyc").exists()  # a regular file: removed
    assert (root / "mod.pyo").is_symlink()  # not a regular file: left alone


def test_unprivileged_caller_removes_nothing_through_the_daemon(start_daemon, public_tmp, sockdir):
    """A caller the daemon does not let change files gets no removal from it;
    the front-end runs the original, which acts with that caller's rights."""
    if os.geteuid() != 0 or not shutil.which("setpriv", path="/usr/bin:/bin"):
        pytest.skip("needs root and setpriv")
    d = start_daemon()
    root = os.path.join(public_tmp, "tree")
    write(os.path.join(root, "mod.py"), b"M = 1\n")
    compileall(root)
    pyc = os.path.join(root, "__pycache__", "mod.cpython-311.pyc")
    exe, marks, original = frontend_for_another_user(sockdir, public_tmp, "py3clean",
                                                     "touch {marks}/ran\nexec %s \"$@\"" % DEBIAN_PY3CLEAN)
    env = fe_env(d, {"PYCQUEUE_ORIGINAL_PY3CLEAN": original})
    p = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", exe, root],
            env=env, cwd="/")
    assert "permission denied" in p.err and "changes files for root only" in p.err, p.err
    assert os.path.exists(os.path.join(marks, "ran")), p.err
    assert os.path.exists(pyc), "removed a file nobody may remove"
    h = d.pycq("history", "--json")
    assert h.returncode == 0, h.err
    assert not [r for r in json.loads(h.stdout) if r["outcome"] == "removed"]


def test_clean_racing_compile_never_fails_a_compile(start_daemon, tmp_path):
    d = start_daemon(workers=2)
    root = str(tmp_path / "tree")
    copy_tree("/usr/lib/python3.11", root, ["json", "email", "http"])
    for _ in range(12):
        clean = d.pycq_popen("clean", root)
        comp = d.pycq_popen("compile", "-f", root)
        out, err = comp.communicate(timeout=CLIENT_TIMEOUT)
        clean.communicate(timeout=CLIENT_TIMEOUT)
        assert comp.returncode == 0, err.decode("utf-8", "replace")
        assert b"FileNotFoundError" not in err
        assert clean.returncode == 0
    p = d.pycq("compile", root)
    assert p.returncode == 0, p.err
    assert_tree_compiled(root)


def test_vanished_pycache_is_recreated(start_daemon, tmp_path):
    """Another process keeps removing every empty __pycache__ while the
    daemon compiles into them (as a cleaner outside pycqueue does): the
    writer creates it again. The remover pauses between passes; one that
    never stops outruns any bounded retry."""
    d = start_daemon(workers=2)
    root = str(tmp_path / "tree")
    copy_tree("/usr/lib/python3.11", root, ["json", "email"])
    dirs = [dp for dp, _, files in os.walk(root) if any(f.endswith(".py") for f in files)]
    stop = threading.Event()

    def remover():
        while not stop.is_set():
            for dp in dirs:
                try:
                    os.rmdir(os.path.join(dp, "__pycache__"))
                except OSError:
                    pass
            time.sleep(0.01)

    for _ in range(3):
        for dp in dirs:
            shutil.rmtree(os.path.join(dp, "__pycache__"), ignore_errors=True)
        t = threading.Thread(target=remover)
        t.start()
        try:
            p = d.pycq("compile", "-f", root)
        finally:
            stop.set()
            t.join()
        stop.clear()
        assert p.returncode == 0, p.err
        assert_tree_compiled(root)


def test_clean_is_ordered_after_queued_compiles(start_daemon, tmp_path):
    """compile --no-wait, then at once py3clean of the same tree: the clean
    runs after those compiles, so no .pyc is left."""
    d = start_daemon(workers=1)
    root = str(tmp_path / "tree")
    copy_tree("/usr/lib/python3.11", root, ["json", "email", "http", "urllib", "logging"])
    for _ in range(3):
        p = d.pycq("compile", "--no-wait", "-f", "-O", "0", "-O", "1", root)
        assert p.returncode == 0, p.err
        c = run([frontend(tmp_path), root], env=fe_env(d))
        assert c.returncode == 0, c.err
        w = d.pycq("wait")
        assert w.returncode == 0, w.err
        left = [os.path.join(dp, f) for dp, _, files in os.walk(root) for f in files if f.endswith(".pyc")]
        assert not left, left[:5]


def test_unreachable_daemon_runs_the_original(tmp_path):
    marker = tmp_path / "marker"
    fake = tmp_path / "original"
    fake.write_text("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\nexit 0\n" % marker)
    fake.chmod(0o755)
    root = tmp_path / "tree"
    write(root / "a.py", b"A = 1\n")
    env = clean_env({"PYCQUEUE_SOCKET": str(tmp_path / "nothing.sock"), "PYCQUEUE_NO_AUTOSTART": "1",
                     "PYCQUEUE_ORIGINAL_PY3CLEAN": str(fake)})
    p = run([frontend(tmp_path), "-V", "3.11", str(root)], env=env)
    assert p.returncode == 0, p.err
    assert marker.read_text().split("\n")[:3] == ["-V", "3.11", str(root)]
    assert "running %s instead" % fake in p.err, p.err
