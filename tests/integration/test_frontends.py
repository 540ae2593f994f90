# SPDX-License-Identifier: MIT
"""The py3compile / pycompile front-ends against Debian's own py3compile.

Each comparison runs Debian's /usr/bin/py3compile on a tree, keeps the
.pyc files it wrote (path and bytes), removes them, runs the front-end with
the same arguments on the same paths, and asserts the same set of files
with the same bytes. Package cases use a private dpkg database
($DPKG_ADMINDIR for Debian's `dpkg -L`, $PYCQUEUE_DPKG_ADMINDIR for the
front-end) whose file list is a real installed package's, relocated into
the test's tree. The front-end reaches the test daemon through
$PYCQUEUE_SOCKET and never autostarts one ($PYCQUEUE_NO_AUTOSTART=1)."""

import os
import pwd
import shutil

import pytest

from pycqtest import FRONTEND, clean_env, copy_tree, frontend_for_another_user, frontend_link, run_client, write
from pycqtest import frontend_env as fe_env
from pycqtest import run_tool as run

DEBIAN_PY3COMPILE = "/usr/bin/py3compile"
REAL_PACKAGE = "python3-packaging"  # pure Python, installed on the build machines

pytestmark = pytest.mark.skipif(not os.access(FRONTEND, os.X_OK) or not os.access(DEBIAN_PY3COMPILE, os.X_OK),
                                reason="front-end not built or Debian's py3compile missing")


frontend = frontend_link


def pycs(root):
    """{path: bytes} of every .pyc under @root."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith(".pyc"):
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[p] = fh.read()
    return out


def remove_pycs(root):
    for dirpath, dirs, _files in os.walk(root):
        if "__pycache__" in dirs:
            shutil.rmtree(os.path.join(dirpath, "__pycache__"))


def compare(d, tmp_path, root, args, env_extra=None, name="py3compile"):
    """Debian's py3compile, then the front-end, on the same tree; both must
    write the same .pyc files with the same bytes and agree on success."""
    remove_pycs(root)
    env = clean_env(env_extra)
    ref = run([DEBIAN_PY3COMPILE, *args], env=env)
    expected = pycs(root)
    remove_pycs(root)
    ours = run([frontend(tmp_path, name), *args], env=fe_env(d, env_extra))
    got = pycs(root)
    assert (ours.returncode == 0) == (ref.returncode == 0), (ref.err, ours.err)
    assert sorted(got) == sorted(expected), (ours.err, set(got) ^ set(expected))
    differing = [p for p in expected if got[p] != expected[p]]
    assert not differing, differing[:5]
    return ours, expected


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    copy_tree("/usr/lib/python3.11", str(root), ["json", "email", "http"])
    write(root / "top.py", b"X = 1\n")
    write(root / "pkg" / "skipme" / "a.py", b"A = 1\n")
    write(root / "pkg" / "keep.py", b"K = 2\n")
    return str(root)


def fake_package(tmp_path, package=REAL_PACKAGE):
    """A dpkg database naming @package, whose files are a copy of the real
    package's under tmp_path/root. Returns (admindir, root)."""
    root = tmp_path / "root"
    admin = tmp_path / "admin"
    (admin / "info").mkdir(parents=True)
    lines = []
    with open("/var/lib/dpkg/info/%s.list" % package) as f:
        for line in f:
            path = line.rstrip("\n")
            target = str(root) + path
            if os.path.isdir(path) and not os.path.islink(path):
                os.makedirs(target, exist_ok=True)
            elif os.path.isfile(path):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(path, target)
            else:
                continue
            lines.append(target)
    (admin / "info" / (package + ".list")).write_text("\n".join(lines) + "\n")
    (admin / "status").write_text("Package: %s\nStatus: install ok installed\nVersion: 1\n"
                                  "Architecture: all\nMaintainer: t <t@t>\nDescription: t\n\n" % package)
    return str(admin), str(root)


def test_tree_same_as_debian(start_daemon, tmp_path, tree):
    d = start_daemon()
    _, expected = compare(d, tmp_path, tree, [tree])
    assert any(p.endswith("top.cpython-311.pyc") for p in expected)


def test_optimize_same_as_debian(start_daemon, tmp_path, tree):
    d = start_daemon()
    _, expected = compare(d, tmp_path, tree, ["-O", tree])
    assert expected and all(p.endswith(".opt-1.pyc") for p in expected)


def test_exclude_version_force_same_as_debian(start_daemon, tmp_path, tree):
    d = start_daemon()
    _, expected = compare(d, tmp_path, tree, ["-f", "-V", "3.11", tree, "-X", ".*skipme.*"])
    assert not any("skipme" in p for p in expected) and any("keep" in p for p in expected)
    _, expected = compare(d, tmp_path, tree, ["-V", "3.0-", "-X", "pkg/", tree])
    assert not any("/pkg/" in p for p in expected)


def test_source_date_epoch_same_as_debian(start_daemon, tmp_path, tree):
    d = start_daemon()
    _, expected = compare(d, tmp_path, tree, [tree], env_extra={"SOURCE_DATE_EPOCH": "1700000000"})
    assert all(int.from_bytes(b[4:8], "little") == 3 for b in expected.values())  # checked-hash


def test_package_public_same_as_debian(start_daemon, tmp_path):
    d = start_daemon()
    admin, root = fake_package(tmp_path)
    env = {"DPKG_ADMINDIR": admin, "PYCQUEUE_DPKG_ADMINDIR": admin}
    _, expected = compare(d, tmp_path, root, ["-p", REAL_PACKAGE], env_extra=env)
    assert len(expected) > 5


def test_package_private_dir_same_as_debian(start_daemon, tmp_path):
    d = start_daemon()
    admin, root = fake_package(tmp_path)
    env = {"DPKG_ADMINDIR": admin, "PYCQUEUE_DPKG_ADMINDIR": admin}
    sub = os.path.join(root, "usr/lib/python3/dist-packages/packaging")
    _, expected = compare(d, tmp_path, root, ["-p", REAL_PACKAGE, sub, "-X", ".*markers.*"], env_extra=env)
    assert expected and not any("markers" in p for p in expected)


def test_package_recorded_without_its_architecture(start_daemon, tmp_path):
    """dh_python3 calls `py3compile -p PKG:ARCH` for Architecture: any
    packages; provenance names the package as dpkg's scripts do, PKG."""
    d = start_daemon()
    admin, root = fake_package(tmp_path)
    sub = os.path.join(root, "usr/lib/python3/dist-packages/packaging")
    env = fe_env(d, {"PYCQUEUE_DPKG_ADMINDIR": admin})
    p = run([frontend(tmp_path), "-p", REAL_PACKAGE + ":all", sub], env=env)
    assert p.returncode == 0, p.err
    h = run_client("--json", "why", os.path.join(sub, "version.py"), socket_path=d.socket)
    assert h.returncode == 0, h.err
    assert '"package":"%s"' % REAL_PACKAGE in h.out, h.out
    h = run_client("history", "--package=" + REAL_PACKAGE, socket_path=d.socket)
    assert h.returncode == 0 and "version.cpython" in h.out, h.out + h.err


def test_context_recorded(start_daemon, tmp_path, tree):
    d = start_daemon()
    # Waiting for the files, not deferred to the trigger (test_maintscript.py
    # covers that, with a fake dpkg-trigger: the real one would touch the
    # machine's dpkg database).
    env = fe_env(d, {"DPKG_MAINTSCRIPT_PACKAGE": "python3-foo", "DPKG_MAINTSCRIPT_NAME": "postinst",
                     "PYCQUEUE_NO_DEFER": "1"})
    p = run([frontend(tmp_path), os.path.join(tree, "top.py")], env=env)
    assert p.returncode == 0, p.err
    h = run_client("--json", "why", os.path.join(tree, "top.py"), socket_path=d.socket)
    assert h.returncode == 0, h.err
    text = h.out
    assert '"py3compile"' in text and '"python3-foo"' in text, text
    assert '"dpkg_script":"postinst"' in text, text


def test_syntax_error_fails_with_path_line(start_daemon, tmp_path):
    d = start_daemon()
    root = tmp_path / "bad"
    write(root / "ok.py", b"A = 1\n")
    write(root / "broken.py", b"x = 1\ndef (:\n")
    ref = run([DEBIAN_PY3COMPILE, str(root)], env=clean_env())
    assert ref.returncode != 0
    remove_pycs(str(root))
    p = run([frontend(tmp_path), str(root)], env=fe_env(d))
    assert p.returncode == 1, p.err
    assert "%s:2: SyntaxError:" % (root / "broken.py") in p.err, p.err
    assert os.path.exists(root / "__pycache__" / "ok.cpython-311.pyc")
    assert not os.path.exists(root / "__pycache__" / "broken.cpython-311.pyc")


def test_verbose_and_quiet(start_daemon, tmp_path, tree):
    d = start_daemon()
    quiet = run([frontend(tmp_path), "-q", tree], env=fe_env(d))
    assert quiet.returncode == 0 and quiet.out == "" and quiet.err == "", quiet.err
    remove_pycs(tree)
    loud = run([frontend(tmp_path), "-v", os.path.join(tree, "top.py")], env=fe_env(d))
    assert loud.returncode == 0 and "top.py" in loud.out, (loud.out, loud.err)


def test_usage_errors(start_daemon, tmp_path):
    d = start_daemon()
    fe = frontend(tmp_path)
    assert run([fe, "-X", "foo"], env=fe_env(d)).returncode == 2  # -X needs a directory
    assert run([fe, "-V", "banana", "/tmp"], env=fe_env(d)).returncode == 2
    assert run([fe], env=fe_env(d)).returncode == 1  # as py3compile: usage, exit 1
    assert run([fe, "--bogus"], env=fe_env(d)).returncode == 2
    h = run([fe, "-h"], env=fe_env(d))
    assert h.returncode == 0 and "-p" in h.out


@pytest.mark.parametrize("name", ["py3compile", "pycompile"])
def test_version_not_installed(start_daemon, tmp_path, name):
    d = start_daemon()
    p = run([frontend(tmp_path, name), "-V", "3.99", "/tmp"], env=fe_env(d))
    assert p.returncode == 3 and "not installed" in p.err, p.err
    ref = run([DEBIAN_PY3COMPILE, "-V", "3.99", "/tmp"], env=clean_env())
    assert ref.returncode == 3


def test_pycompile_same_as_debian(start_daemon, tmp_path, tree):
    d = start_daemon()
    compare(d, tmp_path, tree, [tree], name="pycompile")


def test_unknown_package_fails(start_daemon, tmp_path):
    d = start_daemon()
    admin = tmp_path / "admin"
    (admin / "info").mkdir(parents=True)
    p = run([frontend(tmp_path), "-p", "no-such-package"], env=fe_env(d, {"PYCQUEUE_DPKG_ADMINDIR": str(admin)}))
    assert p.returncode != 0 and "not installed" in p.err, p.err


def test_unreachable_daemon_runs_the_original(tmp_path, tree):
    marker = tmp_path / "marker"
    fake = tmp_path / "original"
    fake.write_text("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\nexit 0\n" % marker)
    fake.chmod(0o755)
    env = clean_env({"PYCQUEUE_SOCKET": str(tmp_path / "nothing.sock"), "PYCQUEUE_NO_AUTOSTART": "1",
                     "PYCQUEUE_ORIGINAL_PY3COMPILE": str(fake)})
    p = run([frontend(tmp_path), "-f", tree], env=env)
    assert p.returncode == 0, p.err
    assert marker.read_text().split("\n")[:2] == ["-f", tree]
    assert "running %s instead" % fake in p.err, p.err


def test_refused_caller_runs_the_original(start_daemon, public_tmp, sockdir):
    """A root daemon compiles for root only: another user's py3compile runs
    the original, with that user's own rights, and says why."""
    if os.geteuid() != 0 or not shutil.which("setpriv", path="/usr/bin:/bin"):
        pytest.skip("needs root and setpriv")
    d = start_daemon()
    root = os.path.join(public_tmp, "tree")
    write(os.path.join(root, "mod.py"), b"M = 1\n")
    exe, marks, original = frontend_for_another_user(sockdir, public_tmp, "py3compile", "id -u > {marks}/ran")
    env = fe_env(d, {"PYCQUEUE_ORIGINAL_PY3COMPILE": original})
    p = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", exe, root],
            env=env, cwd="/")
    assert p.returncode == 0, p.err
    assert "changes files for root only; running %s instead" % original in p.err, p.err
    with open(os.path.join(marks, "ran")) as f:
        assert f.read().strip() == str(pwd.getpwnam("nobody").pw_uid)
    assert not os.path.exists(os.path.join(root, "__pycache__"))


def test_unstartable_daemon_runs_the_original(tmp_path, tree):
    """Autostart allowed, but the daemon cannot be started."""
    marker = tmp_path / "marker"
    fake = tmp_path / "original"
    fake.write_text("#!/bin/sh\ntouch %s\nexit 7\n" % marker)
    fake.chmod(0o755)
    env = clean_env({"PYCQUEUE_SOCKET": str(tmp_path / "nothing.sock"),
                     "PYCQUEUE_DAEMON": str(tmp_path / "no-such-daemon"),
                     "PYCQUEUE_ORIGINAL_PY3COMPILE": str(fake)})
    p = run([frontend(tmp_path), tree], env=env)
    assert p.returncode == 7 and marker.exists(), p.err  # the original's own status


def test_no_original_is_an_error(tmp_path, tree):
    env = clean_env({"PYCQUEUE_SOCKET": str(tmp_path / "nothing.sock"), "PYCQUEUE_NO_AUTOSTART": "1",
                     "PYCQUEUE_ORIGINAL_PY3COMPILE": str(tmp_path / "absent")})
    p = run([frontend(tmp_path), tree], env=env)
    assert p.returncode == 3 and "no original" in p.err, p.err
