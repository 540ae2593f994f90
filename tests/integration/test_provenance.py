# SPDX-License-Identifier: MIT
"""The provenance record as `why` and `history` show it: who wrote a .pyc
(uid, pid, executable, command line, parent chain, package, tool), with
what interpreter, the sha256 of source and .pyc, and whether the file on
disk is still what the daemon wrote."""

import os
import subprocess
import time

import pytest

from pycqtest import (CPYTHON_TAG, PYCQUEUE, PYTHON, cache_path, clean_env, describe, json_records, read,
                      run_client, sha256_of, write)

SOURCE = '"""doc"""\ndef f(x):\n    assert x\n    return x + 1\n'


def compiled_module(d, tmp_path, name="mod", text=SOURCE):
    src = write(tmp_path / "src" / (name + ".py"), text)
    p = d.pycq("compile", src)
    assert p.returncode == 0, describe(p)
    return src, cache_path(src)


def why_json(d, path, expect_rc=0):
    p = d.pycq("--json", "why", path)
    assert p.returncode == expect_rc, describe(p)
    return json_records(p)


# --- why ---------------------------------------------------------------------------

def test_why_lists_the_write(daemon, tmp_path):
    src, pyc = compiled_module(daemon, tmp_path)
    src_sha = sha256_of(src)
    pyc_sha = sha256_of(pyc)

    for path in (src, pyc):
        recs = why_json(daemon, path)
        assert len(recs) == 1, recs
        r = recs[0]
        assert r["outcome"] == "compiled", r
        assert r["target"] == pyc and r["source"] == src, r
        assert r["uid"] == os.getuid() and r["gid"] == os.getgid(), r
        assert isinstance(r["pid"], int) and r["pid"] > 1, r
        assert r["exe"] == os.path.realpath(PYCQUEUE), r
        assert "compile" in r["cmdline"] and src in r["cmdline"], r
        assert r["tool"] == "pycqueue", r
        assert os.path.realpath(r["interpreter"]) == os.path.realpath(PYTHON), r
        assert r["cache_tag"] == CPYTHON_TAG, r
        assert r["opt_level"] == 0 and r["invalidation_mode"] == "timestamp", r
        assert r["source_sha256"] == src_sha, r
        assert r["pyc_sha256"] == pyc_sha, r
        assert r["matches_disk"] is True, r
        assert isinstance(r["time"], (int, float)) and abs(r["time"] - time.time()) < 3600, r
        assert isinstance(r["parents"], list) and r["parents"], r
        assert r["parents"][-1]["pid"] == 1, "the parent chain does not reach pid 1: %r" % r["parents"]

    # human output: the verdict line names the target and says "identical"
    p = daemon.pycq("why", src)
    assert p.returncode == 0, describe(p)
    first = p.out.splitlines()[0]
    assert pyc in first and "identical" in first, describe(p)
    assert src_sha in p.out and pyc_sha in p.out, describe(p)
    assert "pycqueue" in p.out, describe(p)


def test_why_newest_first(daemon, tmp_path):
    src, pyc = compiled_module(daemon, tmp_path)
    first_sha = sha256_of(pyc)
    write(src, SOURCE + "Y = 2\n")
    p = daemon.pycq("compile", src)
    assert p.returncode == 0, describe(p)
    recs = why_json(daemon, pyc)
    assert len(recs) == 2, recs
    assert recs[0]["pyc_sha256"] == sha256_of(pyc) and recs[0]["matches_disk"] is True, recs
    assert recs[1]["pyc_sha256"] == first_sha and recs[1]["matches_disk"] is False, recs
    assert recs[0]["time"] >= recs[1]["time"], recs


def test_why_after_overwrite_differs(daemon, tmp_path):
    src, pyc = compiled_module(daemon, tmp_path)
    ours = sha256_of(pyc)
    data = bytearray(read(pyc))
    data[-1] ^= 0xFF
    with open(pyc, "wb") as f:
        f.write(bytes(data))

    recs = why_json(daemon, src)
    assert len(recs) == 1, recs
    assert recs[0]["pyc_sha256"] == ours, recs
    assert recs[0]["matches_disk"] is False, recs

    p = daemon.pycq("why", pyc)
    assert p.returncode == 0, describe(p)
    first = p.out.splitlines()[0]
    assert pyc in first and "NOT what pycqueued last wrote" in first, describe(p)
    assert sha256_of(pyc) in first, describe(p)


def test_why_removed_file(daemon, tmp_path):
    src, pyc = compiled_module(daemon, tmp_path)
    os.unlink(pyc)
    recs = why_json(daemon, src)
    assert len(recs) == 1 and recs[0]["matches_disk"] is False, recs
    p = daemon.pycq("why", src)
    assert p.returncode == 0, describe(p)
    assert "not on disk" in p.out.splitlines()[0], describe(p)


def test_why_never_compiled(daemon, tmp_path):
    # the daemon knows the interpreter (one compile elsewhere), not this file
    compiled_module(daemon, tmp_path, name="other")
    src = write(tmp_path / "never" / "n.py", "X = 1\n")
    p = daemon.pycq("why", src)
    assert p.returncode == 1, describe(p)
    assert "never written" in p.out + p.err, describe(p)
    assert why_json(daemon, src, expect_rc=1) == []
    os.mkdir(os.path.dirname(cache_path(src)))
    assert why_json(daemon, cache_path(src), expect_rc=1) == []
    # a .pyc made by someone else is on disk but still never written by us
    subprocess.run([PYTHON, "-m", "py_compile", src], env=clean_env(), timeout=60, check=True)
    p = daemon.pycq("why", cache_path(src))
    assert p.returncode == 1, describe(p)


def test_why_shows_writes_not_failures(daemon, tmp_path):
    """`why` lists the writes of a .pyc (issue 3); a later failed compile
    leaves the old file, which still matches the last write."""
    src, pyc = compiled_module(daemon, tmp_path)
    before = read(pyc)
    write(src, "x = 1\ndef f(:\n")
    p = daemon.pycq("compile", src)
    assert p.returncode == 1, describe(p)
    assert read(pyc) == before
    recs = why_json(daemon, src)
    assert [r["outcome"] for r in recs] == ["compiled"], recs
    assert recs[0]["matches_disk"] is True, recs
    # the failure is in the history
    p = daemon.pycq("--json", "history", "--failed", src)
    assert p.returncode == 0, describe(p)
    failed = json_records(p)
    assert len(failed) == 1 and failed[0]["error_type"] == "SyntaxError" and failed[0]["error_line"] == 2, failed
    assert failed[0]["source_sha256"] == sha256_of(src), failed


# --- the requester: parent chain and packages ---------------------------------------

PARENT = ("import subprocess, sys\n"
          "p = subprocess.Popen(sys.argv[2:])\n"
          "print(p.pid, flush=True)\n"
          "sys.exit(p.wait())\n")


def test_parent_chain(daemon, tmp_path):
    src = write(tmp_path / "src" / "chain.py", "X = 1\n")
    marker = "parent-marker-%d" % os.getpid()
    client = [PYCQUEUE, "--socket=" + daemon.socket, "--no-autostart", "compile", src]
    # sh (not exec'ing: a command follows) → python3 (prints the client's pid) → pycqueue
    cmd = ["/bin/sh", "-c", '"$@"; exit $?', "sh-" + marker, PYTHON, "-c", PARENT, marker] + client
    sh = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    out, err = sh.communicate(timeout=120)
    assert sh.returncode == 0, (out, err)
    client_pid = int(out.split()[0])

    recs = why_json(daemon, src)
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["pid"] == client_pid, r
    parents = r["parents"]
    assert len(parents) >= 3, parents
    py, shell = parents[0], parents[1]
    assert py["exe"] == os.path.realpath(PYTHON), parents
    assert marker in py["cmdline"] and py["cmdline"].startswith(PYTHON), parents
    assert shell["pid"] == sh.pid, parents
    assert shell["exe"] == os.path.realpath("/bin/sh"), parents
    assert "sh-" + marker in shell["cmdline"], parents
    assert parents[2]["pid"] == os.getpid(), "the test runner is the shell's parent: %r" % parents
    assert parents[-1]["pid"] == 1, parents
    assert len({q["pid"] for q in parents}) == len(parents), parents

    p = daemon.pycq("why", src)
    assert p.returncode == 0, describe(p)
    chain = [line for line in p.out.splitlines() if line.strip().startswith("chain:")]
    assert len(chain) == 1 and chain[0].rstrip().endswith("pycqueue"), describe(p)
    assert "%d" % client_pid in p.out, describe(p)


def test_packages_recorded_and_filtered(daemon, tmp_path):
    both = write(tmp_path / "src" / "both.py", "X = 1\n")
    dpkg_only = write(tmp_path / "src" / "dpkg_only.py", "X = 2\n")
    plain = write(tmp_path / "src" / "plain.py", "X = 3\n")
    env = clean_env({"DPKG_MAINTSCRIPT_PACKAGE": "foo"})
    p = daemon.pycq("compile", "--package=bar", both, env=env)
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("compile", dpkg_only, env=clean_env({"DPKG_MAINTSCRIPT_PACKAGE": "foo2"}))
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("compile", plain)
    assert p.returncode == 0, describe(p)

    r = why_json(daemon, both)[0]
    assert r["package"] == "bar" and r.get("dpkg_package") == "foo", r
    r = why_json(daemon, dpkg_only)[0]
    assert r["package"] == "foo2", r
    r = why_json(daemon, plain)[0]
    assert not r.get("package"), r

    def targets(*args):
        p = daemon.pycq("--json", "history", *args)
        assert p.returncode == 0, describe(p)
        return sorted(x["target"] for x in json_records(p))

    assert targets("--package=bar") == [cache_path(both)]
    assert targets("--package=foo") == [cache_path(both)]
    assert targets("--package=foo2") == [cache_path(dpkg_only)]
    assert targets("--package=nonesuch") == []
    assert targets() == sorted(cache_path(s) for s in (both, dpkg_only, plain))

    p = daemon.pycq("history", "--package=bar")
    assert p.returncode == 0, describe(p)
    assert cache_path(both) in p.out and "bar" in p.out, describe(p)
    assert cache_path(plain) not in p.out, describe(p)


# --- history -------------------------------------------------------------------------

@pytest.fixture
def history_tree(daemon, tmp_path):
    good = [write(tmp_path / "h" / ("g%d.py" % i), "X = %d\n" % i) for i in range(3)]
    bad = write(tmp_path / "h" / "broken.py", "def f(:\n    pass\n")
    p = daemon.pycq("compile", str(tmp_path / "h"))
    assert p.returncode == 1, describe(p)
    return good, bad


def test_history_table(daemon, history_tree):
    good, bad = history_tree
    p = daemon.pycq("history")
    assert p.returncode == 0, describe(p)
    lines = p.out.splitlines()
    assert lines[0].split() == ["TIME", "OUTCOME", "PACKAGE", "PID", "EXE", "TARGET"], describe(p)
    for s in good + [bad]:
        assert any(cache_path(s) in line for line in lines), "%s not in history\n%s" % (s, describe(p))
    broken = [line for line in lines if cache_path(bad) in line]
    assert len(broken) == 1 and "failed" in broken[0] and "SyntaxError" in broken[0], describe(p)
    assert all("compiled" in line for line in lines if any(cache_path(s) in line for s in good)), describe(p)


def test_history_json(daemon, history_tree):
    good, bad = history_tree
    p = daemon.pycq("--json", "history")
    assert p.returncode == 0, describe(p)
    recs = json_records(p)
    assert sorted(r["target"] for r in recs) == sorted(cache_path(s) for s in good + [bad])
    by_target = {r["target"]: r for r in recs}
    assert by_target[cache_path(bad)]["outcome"] == "failed"
    for s in good:
        assert by_target[cache_path(s)]["outcome"] == "compiled"
        assert by_target[cache_path(s)]["pyc_sha256"] == sha256_of(cache_path(s))


def test_history_failed(daemon, history_tree):
    good, bad = history_tree
    p = daemon.pycq("--json", "history", "--failed")
    assert p.returncode == 0, describe(p)
    recs = json_records(p)
    assert [r["target"] for r in recs] == [cache_path(bad)], recs
    assert recs[0]["error_type"] == "SyntaxError", recs
    p = daemon.pycq("history", "--failed")
    assert p.returncode == 0, describe(p)
    assert cache_path(bad) in p.out, describe(p)
    assert not any(cache_path(s) in p.out for s in good), describe(p)


def test_history_since(daemon, history_tree):
    good, bad = history_tree
    future = str(int(time.time()) + 3600)
    p = daemon.pycq("--json", "history", "--since=" + future)
    assert p.returncode == 0, describe(p)
    assert json_records(p) == []
    p = daemon.pycq("history", "--since=" + future)
    assert p.returncode == 0, describe(p)
    assert not any(cache_path(s) in p.out for s in good + [bad]), describe(p)
    # the last hour holds them all
    for since in ("1h", str(int(time.time()) - 3600)):
        p = daemon.pycq("--json", "history", "--since=" + since)
        assert p.returncode == 0, describe(p)
        assert len(json_records(p)) == len(good) + 1, describe(p)
    p = daemon.pycq("history", "--since=yesterday-ish")
    assert p.returncode == 2, describe(p)


def test_history_path(daemon, history_tree, tmp_path):
    good, bad = history_tree
    other = write(tmp_path / "elsewhere" / "o.py", "X = 1\n")
    p = daemon.pycq("compile", other)
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("--json", "history", good[0])
    assert p.returncode == 0, describe(p)
    assert [r["target"] for r in json_records(p)] == [cache_path(good[0])]
    p = daemon.pycq("--json", "history", str(tmp_path / "h"))
    assert p.returncode == 0, describe(p)
    assert sorted(r["target"] for r in json_records(p)) == sorted(cache_path(s) for s in good + [bad])


# --- status -----------------------------------------------------------------------------

def test_status_database(daemon, tmp_path):
    for i in range(4):
        write(tmp_path / "s" / ("m%d.py" % i), "X = %d\n" % i)
    p = daemon.pycq("compile", str(tmp_path / "s"))
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("history")  # waits for the records to be written
    assert p.returncode == 0, describe(p)
    db = daemon.status()["database"]
    assert db["path"] == os.path.join(daemon.state_dir, "provenance.db"), db
    assert db["recording"] is True and db["degraded"] is False and db["dropped_records"] == 0, db
    assert "degraded_reason" not in db, db
    assert db["rows"] == 4, db
    assert db["size_bytes"] > 0, db
    assert daemon.status()["audit"] is False


def test_read_verbs_open_to_nobody(daemon, traversable, nobody_client):
    tmp_path = traversable
    src, pyc = compiled_module(daemon, tmp_path)
    for args in (("why", src), ("history",), ("history", src)):
        p = run_client("--json", *args, socket_path=daemon.socket, user="nobody", pycqueue=nobody_client)
        assert p.returncode == 0, describe(p)
        assert [r["target"] for r in json_records(p)] == [pyc], describe(p)
