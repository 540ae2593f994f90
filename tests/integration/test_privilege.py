# SPDX-License-Identifier: MIT
"""Issue 6, the front desk, tried as an unprivileged local user would try it
against a root pycqueued: authorisation is decided before any effect, only
the privileged (or the configuration) name interpreters, read-only verbs act
with the caller's own rights, and the records of others are redacted.

Each test reproduces one attack and asserts that it fails. The client runs
as nobody through setpriv; frames the client would never send go through
pycqtest.RawSession, a helper process running as nobody."""

import errno
import hashlib
import os
import shutil
import stat
import subprocess

import pytest

from pycqtest import (CPYTHON_TAG, PYTHON, clean_env, MSG_AUDIT, MSG_CLEAN, MSG_COMPILE, MSG_DONE, MSG_ERROR, MSG_HISTORY,
                      MSG_REPAIR, MSG_STATUS, MSG_VERIFY, MSG_WAIT, MSG_WHY, TAG_CTX_ARGV,
                      TAG_CTX_DPKG_PACKAGE, TAG_CTX_TOOL, TAG_EXCLUDE, TAG_FAILED_ONLY, TAG_FORCE,
                      TAG_INVALIDATION, TAG_LIMIT, TAG_NO_WAIT, TAG_OPT_LEVEL, TAG_PACKAGE, TAG_PATH,
                      TAG_PYTHON, TAG_REPORT_ALL, TAG_ROOT, TAG_SINCE, RawSession, cache_path, db_counts,
                      describe, fake_interpreter, field, field_u64, frame, json_records, marker_dir,
                      pool_interpreters, public_dir, py_compile_ref, raw_request, read, run_client, wait_until,
                      write)

NOBODY_UID = 65534
REAL_PYTHON = "/usr/bin/python3.11"


def as_nobody(d, client, *args, **kw):
    return run_client(*args, socket_path=d.socket, user="nobody", pycqueue=client, **kw)


def flush_records(d):
    """Makes the daemon write out the provenance rows still pending (an
    administration query does that first), so that row counts are final."""
    p = d.pycq("history", "--limit=1")
    assert p.returncode == 0, describe(p)


def effects(d):
    """What a request may not change: the pools and the rows."""
    flush_records(d)
    return pool_interpreters(d.status()), db_counts(d.state_dir)


def new_effects(d, before):
    """Pools and rows that appeared since @before (an effects() value);
    None when there are none (pools may go away: idle ones are reclaimed)."""
    pools, rows = effects(d)
    if pools <= before[0] and rows == before[1]:
        return None
    return "pools %r -> %r, rows %r -> %r" % (sorted(before[0]), sorted(pools), before[1], rows)


def snapshot(root):
    """Everything under @root (bytes-relative path -> type, mode, owner,
    size, mtime and content hash), to show that nothing changed there."""
    out = {}
    root = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            h = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, h)
    return out


def refused(reply, why="", errnos=(errno.EPERM,)):
    """The frames of a raw request end with MSG_ERROR, errno EPERM (or one
    of @errnos)."""
    frames = reply["frames"]
    assert frames and frames[-1].type == MSG_ERROR, "not refused %s: %r" % (why, reply)
    assert frames[-1].errno in errnos, "refused %s with the wrong errno: %r" % (why, frames[-1])
    return frames[-1]


# audit on a daemon that does not audit may say so (EOPNOTSUPP) rather than EPERM
READ_REFUSALS = {"audit": (errno.EPERM, errno.EOPNOTSUPP)}


def root_only_dir(base, name):
    """@base/@name, mode 0700: nobody can neither list nor search it."""
    d = public_dir(base, name)
    os.chmod(d, 0o700)
    return d


@pytest.fixture
def victim(public_tmp):
    """A tree nobody can read, with sources in every state repair and clean
    act on: a .pyc the daemon never wrote (foreign), a stale one, an
    orphan, and a source without its .pyc."""
    root = public_dir(public_tmp, "victim")
    a = write(os.path.join(root, "pkg", "a.py"), "def f():\n    return 'a'\n")
    b = write(os.path.join(root, "pkg", "b.py"), "B = 2\n")
    write(os.path.join(root, "pkg", "c.py"), "C = 3\n")
    os.makedirs(os.path.dirname(cache_path(a)))
    py_compile_ref(a, cache_path(a))
    py_compile_ref(b, cache_path(b))
    write(b, "B = 22\n", mtime=os.stat(b).st_mtime + 10)  # stale now
    shutil.copy(cache_path(a), os.path.join(root, "pkg", "__pycache__", "gone.%s.pyc" % CPYTHON_TAG))
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return root


@pytest.fixture
def fake(public_tmp, trusted_bindir):
    """A working interpreter that leaves a marker when started: a root-owned
    script in a root-owned 0755 directory (so the file itself is one a
    privileged caller may name), and its marker path."""
    marker = os.path.join(marker_dir(public_tmp), "fake-started")
    return fake_interpreter(os.path.join(trusted_bindir, "fake-python"), marker), marker


# --- authorisation before any effect ------------------------------------------------

def test_mutating_verbs_refused_before_any_effect(daemon, victim, fake, nobody_client):
    interp, marker = fake
    before_tree = snapshot(victim)
    pools, rows = effects(daemon)

    for args in (("compile", victim), ("compile", "-f", "--python=" + interp, victim),
                 ("compile", "-f", "-O", "2", "--package=p", victim + "/pkg/c.py"), ("repair", victim),
                 ("clean", victim), ("clean", "--python=" + interp, victim)):
        p = as_nobody(daemon, nobody_client, *args, timeout=60)
        assert p.returncode == 4, "%r: %s" % (args, describe(p))
        assert p.err.strip(), "%r: no message for the refusal" % (args,)

    assert not os.path.exists(marker), "a refused request started the interpreter"
    assert snapshot(victim) == before_tree, "a refused request changed the tree"
    assert new_effects(daemon, (pools, rows)) is None, "a refused request created a pool or a row"


READ_VERBS = {  # verb -> the fields besides TAG_PYTHON that make it a valid request
    "verify": (MSG_VERIFY, lambda t: [field(TAG_PATH, t)]),
    "why": (MSG_WHY, lambda t: [field(TAG_PATH, os.path.join(t, "pkg", "a.py"))]),
    "history": (MSG_HISTORY, lambda t: [field(TAG_PATH, t)]),
    "audit": (MSG_AUDIT, lambda t: []),
}


@pytest.mark.parametrize("verb", sorted(READ_VERBS))
def test_read_verb_cannot_name_an_interpreter(daemon, victim, fake, verb):
    """Finding 1's first step: a read-only request naming an interpreter that
    runs nowhere and that the configuration does not list is refused, and
    nothing is started."""
    interp, marker = fake
    pools, rows = effects(daemon)
    mtype, fields = READ_VERBS[verb]
    r = raw_request(daemon.socket, frame(mtype, *fields(victim), field(TAG_PYTHON, interp)))
    err = refused(r, "(%s naming %s)" % (verb, interp), READ_REFUSALS.get(verb, (errno.EPERM,)))
    if err.errno == errno.EPERM:
        assert interp in err.message, "the refusal does not name the interpreter: %r" % err
    assert not os.path.exists(marker), "the interpreter was started"
    assert new_effects(daemon, (pools, rows)) is None


def test_read_verb_may_use_a_running_pool(daemon, victim, fake, nobody_client):
    interp, marker = fake
    p = daemon.pycq("compile", "--python=" + interp, victim)
    assert p.returncode == 0, describe(p)
    assert os.path.exists(marker)
    assert interp in pool_interpreters(daemon.status())
    pools, rows = effects(daemon)

    r = raw_request(daemon.socket, frame(MSG_VERIFY, field(TAG_PATH, victim), field(TAG_PYTHON, interp)))
    assert r["frames"] and r["frames"][-1].type == MSG_DONE, r
    assert new_effects(daemon, (pools, rows)) is None


def test_read_verb_may_use_a_configured_interpreter(start_daemon, victim, fake):
    interp, marker = fake
    d = start_daemon(config="interpreters = %s %s\n" % (REAL_PYTHON, interp))
    r = raw_request(d.socket, frame(MSG_VERIFY, field(TAG_PATH, victim), field(TAG_PYTHON, interp)))
    assert r["frames"] and r["frames"][-1].type == MSG_DONE, r


# --- finding 1: code injection through a pool a user started ----------------------

# A "python" that works, reports the real cache tag and magic, and adds a
# line of its own to every module it compiles.
EVIL_PYTHON = r'''#!/usr/bin/python3.11
import builtins, os, sys
try:
    os.close(os.open(%(marker)r, os.O_WRONLY | os.O_CREAT, 0o666))
except OSError:
    pass
_compile = builtins.compile
def compile(source, filename, mode, *args, **kw):
    if mode == "exec" and isinstance(source, bytes):
        source = b"import os; os.system('id >/tmp/owned')\n" + source
    return _compile(source, filename, mode, *args, **kw)
builtins.compile = compile
code = sys.argv[sys.argv.index("-c") + 1]
sys.argv = ["-c"]
exec(_compile(code, "<string>", "exec"), {"__name__": "__main__"})
'''


def assert_reference_bytes(tree, tmp_path, allow_missing=False):
    """Every .pyc of a source under @tree is byte for byte what py_compile
    writes (with @allow_missing, sources without a .pyc are let be)."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [x for x in dirnames if x != "__pycache__"]
        for f in filenames:
            if f.endswith(".py"):
                src = os.path.join(dirpath, f)
                if allow_missing and not os.path.exists(cache_path(src)):
                    continue
                ref = py_compile_ref(src, os.path.join(str(tmp_path), "ref-%d.pyc" % n))
                assert read(cache_path(src)) == ref, "%s: not what py_compile writes" % cache_path(src)
                n += 1
    assert n > 0


def test_code_injection_through_a_read_verb_pool(daemon, public_tmp, tmp_path, victim, nobody_client):
    marker = os.path.join(marker_dir(public_tmp), "evil-started")
    evil_dir = public_dir(public_tmp, "home-nobody")
    os.chown(evil_dir, NOBODY_UID, -1)
    evil = write(os.path.join(evil_dir, "python3"), EVIL_PYTHON % {"marker": marker}, mode=0o755)
    os.chown(evil, NOBODY_UID, -1)
    tree2 = public_dir(public_tmp, "victim2")
    for i in range(3):
        write(os.path.join(tree2, "m%d.py" % i), "X = %d\n" % i)

    # the attack: read-only requests naming the planted interpreter
    attempts = {}
    for verb, (mtype, fields) in sorted(READ_VERBS.items()):
        attempts[verb] = raw_request(daemon.socket, frame(mtype, *fields(victim), field(TAG_PYTHON, evil)))
    p = as_nobody(daemon, nobody_client, "verify", victim)
    assert p.returncode in (0, 1), describe(p)

    # root's repair (the tree holds a foreign and a stale .pyc and an orphan)
    # and root's forced compile must not be served by that pool
    p = daemon.pycq("repair", victim)
    assert p.returncode in (0, 1), describe(p)
    assert_reference_bytes(victim, tmp_path, allow_missing=True)
    p = daemon.pycq("compile", "-f", victim, tree2)
    assert p.returncode == 0, describe(p)
    assert_reference_bytes(victim, tmp_path)
    assert_reference_bytes(tree2, tmp_path)

    assert not os.path.exists(marker), "the planted interpreter was started"
    assert evil not in pool_interpreters(daemon.status())
    for verb, r in attempts.items():
        refused(r, "(%s naming %s)" % (verb, evil), READ_REFUSALS.get(verb, (errno.EPERM,)))


def _world_writable_file(bindir, public_tmp):
    return os.path.join(bindir, "python"), lambda path: os.chmod(path, 0o777)


def _file_owned_by_nobody(bindir, public_tmp):
    return os.path.join(bindir, "python"), lambda path: os.chown(path, NOBODY_UID, -1)


def _world_writable_dir(bindir, public_tmp):
    d = os.path.join(bindir, "open")
    os.mkdir(d)
    os.chmod(d, 0o777)
    return os.path.join(d, "python"), lambda path: None


def _dir_owned_by_nobody(bindir, public_tmp):
    d = os.path.join(bindir, "nobodys")
    os.mkdir(d)
    os.chmod(d, 0o755)
    os.chown(d, NOBODY_UID, -1)
    return os.path.join(d, "python"), lambda path: None


def _acl_grants_write(bindir, public_tmp):
    return os.path.join(bindir, "python"), lambda path: subprocess.run(
        ["setfacl", "-m", "u:nobody:rwx", path], check=True)


UNSAFE_INTERPRETERS = {"acl-grants-write": _acl_grants_write, "world-writable-file": _world_writable_file, "file-owned-by-nobody": _file_owned_by_nobody,
                       "in-world-writable-dir": _world_writable_dir, "in-dir-owned-by-nobody": _dir_owned_by_nobody}


@pytest.mark.parametrize("kind", sorted(UNSAFE_INTERPRETERS))
def test_root_cannot_use_an_interpreter_others_can_write(daemon, public_tmp, trusted_bindir, kind):
    bindir = trusted_bindir
    path, spoil = UNSAFE_INTERPRETERS[kind](bindir, public_tmp)
    marker = os.path.join(marker_dir(public_tmp), "unsafe-started")
    fake_interpreter(path, marker)
    spoil(path)
    tree = public_dir(public_tmp, "tree")
    write(os.path.join(tree, "m.py"), "X = 1\n")

    p = daemon.pycq("compile", "--python=" + path, tree, timeout=60)
    assert p.returncode in (4, 5), describe(p)
    assert path in p.err, "the error does not name the interpreter: " + describe(p)
    assert not os.path.exists(marker), "the interpreter was started"
    assert path not in pool_interpreters(daemon.status())
    assert not os.path.exists(os.path.join(tree, "__pycache__"))


# --- finding 2: the pool table cannot be filled by others -------------------------

def test_pool_table_cannot_be_filled_by_nobody(daemon, public_tmp, trusted_bindir, victim):
    markers = marker_dir(public_tmp)
    progs = []
    for i in range(20):
        d = public_dir(trusted_bindir, "progs", "p%02d" % i)
        progs.append(fake_interpreter(os.path.join(d, "python3"), os.path.join(markers, "p%02d" % i)))

    replies = []
    with RawSession(daemon.socket) as s:
        for prog in progs:
            (cid,) = s.open()
            replies.append(s.request(cid, frame(MSG_VERIFY, field(TAG_PATH, victim), field(TAG_PYTHON, prog)),
                                     timeout=60))

    tree = public_dir(public_tmp, "tree")
    for i in range(3):
        write(os.path.join(tree, "m%d.py" % i), "X = %d\n" % i)
    p = daemon.pycq("compile", tree)
    assert p.returncode == 0, "root locked out after 20 read-only requests: " + describe(p)
    p = daemon.pycq("compile", "-f", "--python=" + REAL_PYTHON, tree)
    assert p.returncode == 0, describe(p)
    assert pool_interpreters(daemon.status()) <= {REAL_PYTHON}
    assert os.listdir(markers) == [], "started: %r" % os.listdir(markers)
    for prog, r in zip(progs, replies):
        refused(r, "(verify naming %s)" % prog)


# --- finding 3: names and existence of what the caller cannot see -------------------

@pytest.fixture
def secret(daemon, public_tmp):
    """A root-only (0700) directory reachable through a public one, holding
    a compiled module and an orphaned .pyc with a name nobody may learn."""
    d = public_dir(public_tmp, "secret")
    src = write(os.path.join(d, "src", "mod.py"), "X = 1\n")
    write(os.path.join(d, "exists.py"), "E = 1\n")
    os.mkdir(os.path.join(d, "existsdir"))
    p = daemon.pycq("compile", d)
    assert p.returncode == 0, describe(p)
    shutil.copy(cache_path(src), os.path.join(d, "src", "__pycache__", "secretname.%s.pyc" % CPYTHON_TAG))
    os.chmod(d, 0o700)
    return d


def test_read_verbs_do_not_leak_names(daemon, secret, nobody_client):
    mod = os.path.join(secret, "src", "mod.py")
    for args in (("verify", secret), ("verify", secret + "/src"), ("verify", mod),
                 ("verify", secret + "/src/__pycache__"), ("why", mod), ("history", mod),
                 ("history", secret + "/src"), ("history",)):
        for fmt in ((), ("--json",)):
            p = as_nobody(daemon, nobody_client, *fmt, *args, timeout=60)
            assert "secretname" not in p.out + p.err, "%r leaks a name: %s" % (args, describe(p))
    # root still sees it
    p = daemon.pycq("verify", secret)
    assert "secretname" in p.out, describe(p)


def test_recorded_names_stay_hidden(daemon, public_tmp, nobody_client):
    """Names that come from the database (targets recorded under a
    directory, a package's targets) are shown to a caller only if it could
    look them up itself: verifying the public parent of a root-only
    directory, or the package, says nothing of what lies inside."""
    pub = public_dir(public_tmp, "parent")
    hidden = os.path.join(pub, "secret", "src", "topsecretmodule.py")
    write(hidden, "X = 1\n")
    p = daemon.pycq("compile", "--package=pkgx", os.path.dirname(hidden))
    assert p.returncode == 0, describe(p)
    os.chmod(os.path.join(pub, "secret"), 0o700)
    flush_records(daemon)
    for args in (("verify", pub), ("verify", "--package=pkgx"), ("history", pub), ("history", "--package=pkgx")):
        for fmt in ((), ("--json",)):
            p = as_nobody(daemon, nobody_client, *fmt, *args, timeout=60)
            assert "topsecretmodule" not in p.out + p.err, "%r leaks a recorded name: %s" % (args, describe(p))
    p = daemon.pycq("--json", "history", "--package=pkgx")
    assert "topsecretmodule" in p.out, describe(p)


def test_contents_of_unreadable_files_not_shown(daemon, public_tmp, nobody_client):
    """A record of a file the caller may look up but not read carries no
    sha256 and no error text: nothing that tells of its content."""
    pub = public_dir(public_tmp, "readable-dir")
    src = write(os.path.join(pub, "private.py"), "PIN = 4711\n")
    bad = write(os.path.join(pub, "broken.py"), b"\xffsecret = 1\n")
    p = daemon.pycq("compile", pub)
    assert p.returncode == 1, describe(p)
    os.chmod(src, 0o600)
    os.chmod(bad, 0o600)
    os.chmod(cache_path(src), 0o600)
    flush_records(daemon)
    p = as_nobody(daemon, nobody_client, "--json", "history", pub, timeout=60)
    assert p.returncode == 0, describe(p)
    records = json_records(p)
    assert {r["source"] for r in records} == {src, bad}, records
    for r in records:
        assert r.get("redacted") is True, r
        for key in ("source_sha256", "pyc_sha256", "error_message", "pid", "gid", "cmdline", "exe"):
            assert key not in r, "%s shown for an unreadable file: %r" % (key, r)
    p = daemon.pycq("--json", "history", pub)
    assert all("source_sha256" in r or "error_message" in r for r in json_records(p)), describe(p)


def same_answer(p1, path1, p2, path2):
    """Two runs give the same exit code and output once their paths are
    swapped for a placeholder."""
    def norm(p, path):
        # why names the cache file of a .py: its stem must not count either
        stem = os.path.splitext(os.path.basename(path))[0]
        out, err = (t.replace(path, "PATH").replace("/%s." % stem, "/NAME.") for t in (p.out, p.err))
        return (p.returncode, out, err)
    return norm(p1, path1) == norm(p2, path2)


@pytest.mark.parametrize("verb", ["verify", "why", "history"])
def test_no_existence_oracle(daemon, secret, nobody_client, verb):
    for present, absent in (("exists.py", "missing.py"), ("existsdir", "missingdir"),
                            ("src/mod.py", "src/nomod.py")):
        if verb == "why" and "dir" in present:
            continue
        a, b = os.path.join(secret, present), os.path.join(secret, absent)
        for fmt in ((), ("--json",)):
            pa = as_nobody(daemon, nobody_client, *fmt, verb, a, timeout=60)
            pb = as_nobody(daemon, nobody_client, *fmt, verb, b, timeout=60)
            assert same_answer(pa, a, pb, b), "%s tells %s from %s:\n%s\n---\n%s" % (
                verb, present, absent, describe(pa), describe(pb))


def test_no_existence_oracle_through_symlinks(daemon, secret, public_tmp, tmp_path, nobody_client):
    """A public tree whose source is a symlink into the root-only directory:
    verify answers the same whether the link's target exists or not."""
    ref_src = write(os.path.join(str(tmp_path), "ref", "link.py"), "R = 1\n")
    ref_pyc = py_compile_ref(ref_src, os.path.join(str(tmp_path), "ref.pyc"))
    trees = {}
    for name, target in (("a", "exists.py"), ("b", "missing.py")):
        t = public_dir(public_tmp, "links", name)
        os.symlink(os.path.join(secret, target), os.path.join(t, "link.py"))
        write(cache_path(os.path.join(t, "link.py")), ref_pyc, mode=0o644)
        os.chmod(os.path.join(t, "__pycache__"), 0o755)
        trees[name] = t
    for fmt in ((), ("--json",)):
        pa = as_nobody(daemon, nobody_client, *fmt, "verify", trees["a"], timeout=60)
        pb = as_nobody(daemon, nobody_client, *fmt, "verify", trees["b"], timeout=60)
        assert same_answer(pa, trees["a"], pb, trees["b"]), \
            "verify tells an existing symlink target from a missing one:\n%s\n---\n%s" % (describe(pa), describe(pb))


# --- provenance of others: redacted, or not shown at all ---------------------------

REDACTED_KEYS = ("cmdline", "exe", "parents")


def test_records_of_others_are_redacted(daemon, public_tmp, nobody_client):
    hidden = public_dir(public_tmp, "hidden", "topsecretarg")
    write(os.path.join(hidden, "h.py"), "H = 1\n")
    os.chmod(os.path.dirname(hidden), 0o700)
    p = daemon.pycq("compile", "--package=secretpkg", hidden)
    assert p.returncode == 0, describe(p)
    pub = public_dir(public_tmp, "pub")
    srcs = [write(os.path.join(pub, "m%d.py" % i), "X = %d\n" % i) for i in range(2)]
    for s in srcs:
        os.chmod(s, 0o644)
    p = daemon.pycq("compile", "--package=pubpkg", "-x", "cmdlinemarker", pub)
    assert p.returncode == 0, describe(p)

    seen = 0
    for args in (("history", pub), ("why", srcs[0]), ("history", "--limit=100000"), ("history",)):
        p = as_nobody(daemon, nobody_client, "--json", *args, timeout=60)
        assert p.returncode == 0, describe(p)
        for word in ("topsecretarg", "secretpkg", "cmdlinemarker"):
            assert word not in p.out + p.err, "%r shows %s: %s" % (args, word, describe(p))
        for r in json_records(p):
            seen += 1
            assert r["uid"] == 0 and r["package"] == "pubpkg", r
            assert {"time", "tool", "outcome"} <= set(r), r
            assert not [k for k in r if k.startswith(REDACTED_KEYS)], "not redacted: %r" % r
            assert r.get("redacted") is True, r
        # the text form too
        p = as_nobody(daemon, nobody_client, *args, timeout=60)
        for word in ("topsecretarg", "secretpkg", "cmdlinemarker"):
            assert word not in p.out + p.err, "%r shows %s: %s" % (args, word, describe(p))
    assert seen >= 2 + 1 + 2 + 2, "nobody should still see the records of the public tree"

    # root sees everything, unredacted
    p = daemon.pycq("--json", "history", "--limit=100000")
    assert p.returncode == 0, describe(p)
    recs = json_records(p)
    assert any("topsecretarg" in r["target"] for r in recs), recs
    assert all("cmdline" in r and "redacted" not in r for r in recs), recs
    assert any("cmdlinemarker" in r["cmdline"] for r in recs), recs


# --- every verb x every field ---------------------------------------------------

VERB_TYPES = {"compile": MSG_COMPILE, "wait": MSG_WAIT, "why": MSG_WHY, "history": MSG_HISTORY,
              "verify": MSG_VERIFY, "repair": MSG_REPAIR, "clean": MSG_CLEAN, "audit": MSG_AUDIT,
              "status": MSG_STATUS}
MUTATING = {"compile", "repair", "clean"}


def every_field(verb, pub, secret_dir, interp):
    """(name, fields) for each field the verb could carry, one at a time on
    top of a minimal valid request, then all of them together."""
    if verb == "why":
        paths = [field(TAG_PATH, os.path.join(pub, "pkg", "a.py"))]
        secret_paths = [field(TAG_PATH, os.path.join(secret_dir, "src", "mod.py"))]
    else:
        paths = [field(TAG_PATH, pub)]
        secret_paths = [field(TAG_PATH, secret_dir)]
    extra = [
        ("secret-path", secret_paths),
        ("python", [field(TAG_PYTHON, interp)]),
        ("exclude", [field(TAG_EXCLUDE, "nomatch")]),
        ("opt-level", [field_u64(TAG_OPT_LEVEL, 2)]),
        ("invalidation", [field_u64(TAG_INVALIDATION, 1)]),
        ("force", [field_u64(TAG_FORCE, 1)]),
        ("package", [field(TAG_PACKAGE, "somepkg")]),
        ("root", [field(TAG_ROOT, pub)]),
        ("no-wait", [field_u64(TAG_NO_WAIT, 1)]),
        ("report-all", [field_u64(TAG_REPORT_ALL, 1)]),
        ("limit", [field_u64(TAG_LIMIT, 5)]),
        ("since", [field_u64(TAG_SINCE, 1)]),
        ("failed-only", [field_u64(TAG_FAILED_ONLY, 1)]),
        ("context", [field(TAG_CTX_TOOL, "py3compile"), field(TAG_CTX_DPKG_PACKAGE, "python3-x"),
                     field(TAG_CTX_ARGV, "py3compile"), field(TAG_CTX_ARGV, "-p")]),
    ]
    base = paths if verb not in ("status", "wait", "audit") else []
    out = [("minimal", base)]
    out += [(name, base + fs) for name, fs in extra if name != "secret-path"]
    out.append(("secret-path", secret_paths))
    if verb != "why":
        out.append(("all", base + secret_paths + [f for name, fs in extra[1:] for f in fs]))
    else:
        out.append(("all", secret_paths + [f for name, fs in extra[1:] for f in fs]))
    return out


@pytest.mark.parametrize("verb", sorted(VERB_TYPES))
def test_every_field_of_every_verb(daemon, public_tmp, victim, fake, secret, verb):
    interp, marker = fake
    pools, rows = effects(daemon)
    trees = {t: snapshot(t) for t in (victim, secret)}
    failures = []
    with RawSession(daemon.socket) as s:
        for name, fields in every_field(verb, victim, secret, interp):
            (cid,) = s.open()
            r = s.request(cid, frame(VERB_TYPES[verb], *fields), timeout=60)
            s.close_conns([cid])
            last = r["frames"][-1] if r["frames"] else None
            if verb in MUTATING and (last is None or last.type != MSG_ERROR or last.errno != errno.EPERM):
                failures.append("%s/%s: not refused with EPERM: %r" % (verb, name, r))
            if (name == "python" and verb in READ_VERBS
                    and (last is None or last.type != MSG_ERROR
                         or last.errno not in READ_REFUSALS.get(verb, (errno.EPERM,)))):
                failures.append("%s/%s: an unknown interpreter not refused with EPERM: %r" % (verb, name, r))
            if os.path.exists(marker):
                failures.append("%s/%s: the interpreter was started" % (verb, name))
                os.unlink(marker)
            changed = new_effects(daemon, (pools, rows))
            if changed:
                failures.append("%s/%s: new pools or rows: %s" % (verb, name, changed))
                pools, rows = effects(daemon)
            for t, snap in trees.items():
                after = snapshot(t)
                if after != snap:
                    changed = sorted(k for k in set(snap) | set(after) if snap.get(k) != after.get(k))
                    failures.append("%s/%s: changed under %s: %r" % (verb, name, t, changed))
                    trees[t] = after
    assert not failures, "\n".join(failures)


# --- audit records follow the same visibility rule -----------------------------------

def test_audit_records_of_others(start_daemon, public_tmp, nobody_client):
    audited = public_dir(public_tmp, "aud")
    pub = write(os.path.join(public_dir(audited, "pub"), "r.py"), "R = 1\n", mode=0o644)
    hid_dir = public_dir(audited, "hid", "topsecretaudit")
    hid = write(os.path.join(hid_dir, "s.py"), "S = 1\n")
    os.chmod(os.path.dirname(hid_dir), 0o700)
    d = start_daemon(args=["--audit=" + audited])
    assert d.status()["audit"] is True
    for src in (pub, hid):
        # a writer behind the daemon's back, with a word in its command line
        p = subprocess.run([PYTHON, "-c", "import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True)",
                            src, "auditcmdmarker"], env=clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, p.stderr
    os.chmod(os.path.dirname(cache_path(pub)), 0o755)

    def root_records():
        p = d.pycq("--json", "audit")
        assert p.returncode == 0, describe(p)
        recs = json_records(p)
        return recs if {cache_path(pub), cache_path(hid)} <= {r["path"] for r in recs} else None
    recs = wait_until(root_records, 15, 0.1)
    assert recs, "audit did not see both writes"
    assert all("auditcmdmarker" in r.get("cmdline", "") and "redacted" not in r for r in recs), recs

    p = as_nobody(d, nobody_client, "--json", "audit", timeout=60)
    assert p.returncode == 0, describe(p)
    for word in ("topsecretaudit", "auditcmdmarker"):
        assert word not in p.out + p.err, "audit shows nobody %s: %s" % (word, describe(p))
    recs = json_records(p)
    assert [r["path"] for r in recs] == [cache_path(pub)], recs
    assert not [k for k in recs[0] if k.startswith(REDACTED_KEYS)], "not redacted: %r" % recs[0]
    assert recs[0].get("redacted") is True, recs[0]
