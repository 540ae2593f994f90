# SPDX-License-Identifier: MIT
"""Issue 6, bounded work per user: every resource an unprivileged client
controls (connections, partial frames, frame size, concurrent requests,
reply rows, memory for unread replies, time values) has a limit; hitting it
is a clear error to that caller only, and root keeps being served.

The daemons here get small limits in their configuration; the attackers
run as nobody (the client through setpriv, raw frames through
pycqtest.RawSession)."""

import errno
import os
import random
import sqlite3
import struct
import subprocess
import time

import pytest

from pycqtest import (CLEAN_PATH, MSG_DONE, MSG_ERROR, MSG_HISTORY, MSG_RECORD, MSG_STATUS, MSG_STATUS_REPLY,
                      PYTHON, TAG_LIMIT, TAG_PACKAGE, TAG_SINCE, RawSession, assert_tree_compiled,
                      clean_env, daemon_rss_kib, describe, field, field_u64, frame, json_records, public_dir,
                      run_client, wait_until, write)

STATUS = frame(MSG_STATUS)


def as_nobody(d, client, *args, **kw):
    return run_client(*args, socket_path=d.socket, user="nobody", pycqueue=client, **kw)


def served(s, cid, timeout=15):
    """A status request on connection @cid gets its reply."""
    r = s.request(cid, STATUS, timeout=timeout)
    return bool(r["frames"]) and r["frames"][-1].type == MSG_STATUS_REPLY


def root_compiles(d, base, name="rootcheck"):
    src = write(os.path.join(base, name, "m.py"), "X = 1\n")
    p = d.pycq("compile", "-f", src, timeout=120)
    assert p.returncode == 0, "root is not served: " + describe(p)


def fill_history(d, base, rows, package_size=64):
    """Gives daemon @d a database of @rows + 1 job rows, all of one public
    module written by root, whose request carries a package name of
    @package_size bytes (fat records cost memory in every reply). Stops the
    daemon, multiplies the row with sqlite, starts it again. Returns the
    module's path."""
    src = write(os.path.join(public_dir(base, "hist"), "m.py"), "X = 1\n", mode=0o644)
    p = d.pycq("compile", "--package=p", src)
    assert p.returncode == 0, describe(p)
    p = d.pycq("history", "--limit=1")  # the row is written out first
    assert p.returncode == 0, describe(p)
    assert d.stop() == 0
    db = sqlite3.connect(os.path.join(d.state_dir, "provenance.db"), timeout=30)
    with db:
        db.execute("UPDATE requests SET package = ?", ("p" * package_size,))
        cols = ("request_id, target, source, source_mtime, source_size, source_sha256, pyc_sha256, "
                "interpreter_id, opt_level, mode, outcome, error_type, error_line, error_message")
        db.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                   "INSERT INTO jobs (%s, start, end) SELECT %s, start + x, end + x FROM jobs, c "
                   "WHERE jobs.id = (SELECT MIN(id) FROM jobs)" % (cols, cols), (rows,))
    db.close()
    d.start()
    return src


# --- connections -------------------------------------------------------------------

def test_connections_per_uid(start_daemon, public_tmp):
    d = start_daemon(config="max_connections_per_uid = 4\n")
    with RawSession(d.socket) as s:
        held = s.open(4)
        for cid in held:
            assert served(s, cid), "a connection within the limit was not served"
        (extra,) = s.open()
        r = s.request(extra, STATUS, timeout=15)
        assert not any(f.type == MSG_STATUS_REPLY for f in r["frames"]), "the 5th connection was served: %r" % r
        assert r["eof"] or r["send_error"], "the 5th connection was not closed: %r" % r
        # root is not counted against nobody's limit
        assert d.status()["pid"] == d.pid
        root_compiles(d, public_tmp)
        # a connection nobody closes frees its place
        s.close_conns([held[0]])

        def again():
            (cid,) = s.open()
            ok = served(s, cid, timeout=5)
            if not ok:
                s.close_conns([cid])
            return ok
        assert wait_until(again, timeout=20, interval=0.2), "a closed connection still counts"


def test_partial_frame_times_out(start_daemon):
    d = start_daemon(config="frame_timeout = 1\n")
    with RawSession(d.socket) as s:
        partial, idle = s.open(2)
        assert s.send(partial, STATUS[:6]) is None
        closed, after = s.wait_hup(partial, timeout=10)
        assert closed, "a connection holding 6 bytes of a frame was not closed within 10 s"
        # a connection that sent nothing is no partial frame
        closed, after = s.wait_hup(idle, timeout=3)
        assert not closed, "a connection that sent nothing was closed after %.1f s" % after
        assert served(s, idle)


def test_idle_connections_and_roots_reserve(start_daemon):
    """Unprivileged connections that ask nothing are closed after
    connection_idle_timeout, and when other users hold every connection
    (max_connections), root still gets in."""
    d = start_daemon(config="connection_idle_timeout = 2\nmax_connections = 4\nmax_connections_per_uid = 4\n")
    with RawSession(d.socket) as s:
        conns = s.open(4)
        with RawSession(d.socket, user="daemon") as other:
            (cid,) = other.open()
            closed, _ = other.wait_hup(cid, timeout=5)
            assert closed, "a fifth connection from another user was kept past max_connections"
        with RawSession(d.socket, user=None) as root:
            (cid,) = root.open()
            r = root.request(cid, frame(MSG_STATUS), timeout=30)
            assert r["frames"] and r["frames"][-1].type == MSG_STATUS_REPLY, "root locked out: %r" % r
        closed, _ = s.wait_hup(conns[0], timeout=15)
        assert closed, "an idle unprivileged connection was never closed"


def test_trickled_frame_times_out(start_daemon):
    """The deadline runs from a frame's first byte: a client that sends one
    byte at a time, each before the timeout, is still cut off."""
    d = start_daemon(config="frame_timeout = 1\n")
    big = frame(MSG_HISTORY, field(TAG_PACKAGE, b"x" * 200))
    with RawSession(d.socket) as s:
        (cid,) = s.open()
        closed = False
        for i in range(40):  # 40 bytes over about 8 s, one every 0.2 s
            if s.send(cid, big[i:i + 1]) is not None:
                closed = True
                break
            closed, _ = s.wait_hup(cid, timeout=0.2)
            if closed:
                break
        assert closed, "a frame trickled in one byte at a time was never cut off"
        assert i < 30, "cut off only after %d bytes (%.1f s)" % (i, i * 0.2)


MALFORMED = {
    "bad-version": frame(MSG_STATUS, version=2),
    # a field header announcing 100 bytes at the very end of the frame
    "field-overruns-frame": struct.pack("<IHHHI", 4 + 6, 1, MSG_STATUS, 1, 100),
    "u64-wrong-size": frame(MSG_HISTORY, field(TAG_LIMIT, b"\x01\x02\x03")),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_frame_closes_and_frees(start_daemon, kind):
    """Finding 10: a malformed frame ends its connection, even when the
    client neither reads nor closes, and the connection stops counting:
    twice the per-uid limit of such connections in a row are all answered."""
    d = start_daemon(config="max_connections_per_uid = 3\n")
    with RawSession(d.socket) as s:
        for i in range(6):
            (cid,) = s.open()
            assert s.send(cid, MALFORMED[kind]) is None, "connection %d refused before its frame" % i
            closed, _ = s.wait_hup(cid, timeout=10)
            assert closed, "connection %d: not closed after a malformed frame (%s)" % (i, kind)
            r = s.receive(cid, timeout=10, until_end=False)
            assert r["eof"], r
            if kind == "bad-version":
                assert [f.type for f in r["frames"]] == [MSG_ERROR], \
                    "connection %d: want one MSG_ERROR before EOF, got %r" % (i, r["frames"])
            # the client side stays open: the daemon's close alone must free the slot
        (cid,) = s.open()
        assert served(s, cid), "nobody locked out by connections the daemon closed"


# --- frame size -------------------------------------------------------------------

def status_frame_of_size(size):
    """A MSG_STATUS of @size bytes in all, padded with a field of a tag no
    one knows (receivers skip unknown tags)."""
    pad = size - 8 - 6
    return frame(MSG_STATUS, field(999, b"\0" * pad))


def test_frame_size_for_unprivileged_callers(daemon):
    big = status_frame_of_size(2 * 1024 * 1024)
    with RawSession(daemon.socket) as s:
        (cid,) = s.open()
        r = s.request(cid, big, timeout=30, until_eof=True)
        assert not any(f.type == MSG_STATUS_REPLY for f in r["frames"]), "a 2 MiB frame from nobody was served"
        assert r["eof"] or r["send_error"], "the connection stayed open: %r" % r
    # root may send up to 16 MiB
    with RawSession(daemon.socket, user=None) as s:
        (cid,) = s.open()
        r = s.request(cid, status_frame_of_size(15 * 1024 * 1024), timeout=60)
        assert r["frames"] and r["frames"][-1].type == MSG_STATUS_REPLY, r


def test_buffer_memory_per_uid_and_in_total(start_daemon):
    """max_buffer_memory bounds what unprivileged peers' half-sent frames
    may pin: one uid gets a quarter of it, so the uid that fills its share
    is refused while another user and root are still served."""
    d = start_daemon(config="max_buffer_memory = 4194304\nframe_timeout = 60\n")
    half = status_frame_of_size(900 * 1024)[:300 * 1024]  # 300 KiB of a 900 KiB frame
    with RawSession(d.socket) as s:
        ids = s.open(4)
        refused = None
        for i, cid in enumerate(ids):
            if s.send(cid, half) is not None:
                refused = i
                break
            closed, _ = s.wait_hup(cid, timeout=1)
            if closed:
                refused = i
                break
        assert refused is not None, "nobody pinned 4 x 300 KiB past a 1 MiB share"
        assert refused >= 1, "the first half frame was refused already"
        # another unprivileged user is not shut out by nobody's share
        with RawSession(d.socket, user="daemon") as other:
            (cid,) = other.open()
            r = other.request(cid, frame(MSG_STATUS), timeout=30)
            assert r["frames"] and r["frames"][-1].type == MSG_STATUS_REPLY, r
        # nor is root
        with RawSession(d.socket, user=None) as root:
            (cid,) = root.open()
            r = root.request(cid, frame(MSG_STATUS), timeout=30)
            assert r["frames"] and r["frames"][-1].type == MSG_STATUS_REPLY, r


# --- concurrent requests ----------------------------------------------------------

def test_concurrent_read_requests_per_uid(start_daemon, public_tmp, nobody_client):
    d = start_daemon(config="max_requests_per_uid = 2\n")
    fill_history(d, public_tmp, 50000, package_size=2000)
    unread = frame(MSG_HISTORY, field_u64(TAG_LIMIT, 1000000))
    with RawSession(d.socket) as s:
        held = s.open(2)
        for cid in held:
            assert s.send(cid, unread) is None
            # a first reply shows the request runs; the rest stays unread,
            # far more than any socket and connection buffer holds
            r = s.receive(cid, timeout=30, max_bytes=1)
            assert r["read"] > 0 and not r["eof"], r
        p = as_nobody(d, nobody_client, "history", "--limit=10", timeout=60)
        assert p.returncode != 0, "a third concurrent request was served: " + describe(p)
        assert "too many" in p.err.lower(), describe(p)
        p = d.pycq("history", "--limit=10", timeout=60)
        assert p.returncode == 0, "root is limited by nobody's requests: " + describe(p)
        root_compiles(d, public_tmp)
        s.close_conns(held)
    assert wait_until(lambda: as_nobody(d, nobody_client, "history", "--limit=10", timeout=60).returncode == 0,
                      timeout=30, interval=0.5), "the finished requests still count"


# --- reply rows and memory --------------------------------------------------------

def test_reply_rows_bounded(start_daemon, public_tmp, nobody_client):
    d = start_daemon(config="max_reply_rows = 50\n")
    fill_history(d, public_tmp, 200)
    for run in (d.pycq, lambda *a, **kw: as_nobody(d, nobody_client, *a, **kw)):
        p = run("--json", "history", "--limit=1000000", timeout=60)
        assert p.returncode == 0, describe(p)
        n = len(json_records(p))
        assert 0 < n <= 50, "%d records with max_reply_rows = 50" % n
        assert "max_reply_rows" in p.err, "the cut is not reported: " + describe(p)


def test_request_time_limit_frees_the_callers_slot(start_daemon, public_tmp, nobody_client):
    """An unprivileged request ends at request_time_limit however slowly its
    reply is read: a client that never reads does not keep its uid's slot
    (max_requests_per_uid) or a query thread for long."""
    d = start_daemon(config="request_time_limit = 2\nmax_requests_per_uid = 1\n")
    fill_history(d, public_tmp, 4000, package_size=3000)  # about 14 MB of records
    with RawSession(d.socket) as s:
        (cid,) = s.open()
        assert s.send(cid, frame(MSG_HISTORY, field_u64(TAG_LIMIT, 1000000))) is None
        r = s.receive(cid, timeout=30, max_bytes=1)
        assert r["read"] > 0 and not r["eof"], r
        # while the unread reply holds the slot, a second request is refused
        p = as_nobody(d, nobody_client, "history", "--limit=1", timeout=60)
        assert p.returncode != 0 and "too many" in p.err.lower(), describe(p)
        # past the limit the first request has ended, and the slot is free
        ok = wait_until(lambda: as_nobody(d, nobody_client, "history", "--limit=1", timeout=60).returncode == 0,
                        timeout=20, interval=0.5)
        assert ok, "the slot was still taken long after request_time_limit"


def test_request_time_limit_bounds_the_walk(start_daemon, nobody_client):
    """`verify /` by a local user walks the whole file system with that
    user's rights (several seconds here); the walk itself stops at
    request_time_limit and says so, instead of walking on and then failing
    with a bare timeout."""
    d = start_daemon(config="request_time_limit = 1\n")
    p = as_nobody(d, nobody_client, "verify", "/", timeout=120)
    assert p.returncode != 0, describe(p)
    assert "ran out of time (request_time_limit)" in p.err, describe(p)
    assert as_nobody(d, nobody_client, "status").returncode == 0


def test_unread_replies_do_not_grow_memory(start_daemon, public_tmp):
    """8 clients that ask for every record and never read: replies stream,
    so the daemon's memory stays bounded (it reached 770 MB with replies
    built whole)."""
    # the default max_reply_rows; 20,000 fat records are 70 MB per reply
    d = start_daemon()
    fill_history(d, public_tmp, 20000, package_size=3000)
    limit_kib = 150 * 1024
    peak = daemon_rss_kib(d.pid)
    with RawSession(d.socket) as s:
        conns = s.open(8)
        for cid in conns:
            assert s.send(cid, frame(MSG_HISTORY, field_u64(TAG_LIMIT, 1000000))) is None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and peak <= limit_kib:
            peak = max(peak, daemon_rss_kib(d.pid))
            time.sleep(0.1)
        assert peak <= limit_kib, "VmRSS reached %d MiB with 8 unread replies" % (peak // 1024)
        root_compiles(d, public_tmp)
        assert daemon_rss_kib(d.pid) <= limit_kib


# --- time values --------------------------------------------------------------------

def test_since_does_not_wrap(daemon, public_tmp, nobody_client):
    """Finding 10: --since=2**44 (seconds) once wrapped to a small time and
    returned everything."""
    tree = public_dir(public_tmp, "tree")
    for i in range(3):
        write(os.path.join(tree, "m%d.py" % i), "X = %d\n" % i, mode=0o644)
    p = daemon.pycq("compile", tree)
    assert p.returncode == 0, describe(p)
    p = daemon.pycq("--json", "history")
    assert len(json_records(p)) == 3, describe(p)

    for run in (daemon.pycq, lambda *a, **kw: as_nobody(daemon, nobody_client, *a, **kw)):
        p = run("--json", "history", "--since=%d" % 2**44, timeout=60)
        assert p.returncode == 0, describe(p)
        assert json_records(p) == [], describe(p)
    for since in (2**44, 2**54, 2**63, 2**64 - 1):
        for user in (None, "nobody"):
            with RawSession(daemon.socket, user=user) as s:
                (cid,) = s.open()
                got = s.request(cid, frame(MSG_HISTORY, field_u64(TAG_SINCE, since), field_u64(TAG_LIMIT, 1000)))
            types = [f.type for f in got["frames"]]
            assert MSG_RECORD not in types, "since=%d (%s) returned records" % (since, user or "root")
            assert types and types[-1] in (MSG_DONE, MSG_ERROR), got
            if types[-1] == MSG_ERROR:
                assert got["frames"][-1].errno == errno.EINVAL, got


# --- the load test of section 6 ---------------------------------------------------

# Runs as nobody until the deadline or until the stop file exists: sends
# status, why and history frames on fresh connections, reads the answers,
# and now and then opens a few connections past the limit.
FLOODER = r'''
import os, socket, struct, sys, time
path, deadline, stop, why_path = sys.argv[1], float(sys.argv[2]), sys.argv[3], os.fsencode(sys.argv[4])
def fr(t, *fields):
    body = struct.pack("<HH", 1, t) + b"".join(fields)
    return struct.pack("<I", len(body)) + body
def fld(tag, data):
    return struct.pack("<HI", tag, len(data)) + data
frames = [fr(2), fr(4, fld(10, why_path)), fr(5, fld(20, struct.pack("<Q", 1000000))),
          fr(5, fld(10, os.path.dirname(why_path)))]
n = 0
while time.time() < deadline and not os.path.exists(stop) and n < 100000:
    n += 1
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        s.sendall(frames[n % len(frames)])
        while s.recv(1 << 16):
            pass
    except OSError:
        pass
    finally:
        s.close()
    if n % 20 == 0:
        extra = []
        for _ in range(4):
            try:
                e = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                e.settimeout(2)
                e.connect(path)
                extra.append(e)
            except OSError:
                pass
        for e in extra:
            e.close()
'''


def hostile_tree(root, n=40):
    """Sources with .pyc files whose header matches them (so verify loads
    them) followed by random bytes."""
    rnd = random.Random(6)
    magic = subprocess.run([PYTHON, "-I", "-c", "import importlib.util,sys;"
                            "sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"],
                           stdout=subprocess.PIPE, check=True, timeout=60).stdout
    for i in range(n):
        src = write(os.path.join(root, "h%02d.py" % i), "H = %d\n" % i, mode=0o644)
        st = os.stat(src)
        head = magic + struct.pack("<III", 0, int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(16, 4096)))
        write(os.path.join(root, "__pycache__", "h%02d.cpython-311.pyc" % i), head + body, mode=0o644)
    os.chmod(os.path.join(root, "__pycache__"), 0o755)
    return root


def test_root_compiles_while_nobody_attacks(start_daemon, public_tmp, nobody_client):
    limit = 8
    d = start_daemon(config="max_connections_per_uid = %d\n" % limit)
    tree = public_dir(public_tmp, "big")
    for i in range(600):
        write(os.path.join(tree, "pkg%02d" % (i // 50), "mod%03d.py" % i),
              "def f%d(x):\n    return [x, %d, %r]\n" % (i, i, "s" * (i % 40)), mode=0o644)
    for dirpath, dirnames, _ in os.walk(tree):
        os.chmod(dirpath, 0o755)
    hostile = hostile_tree(public_dir(public_tmp, "hostile"))
    stop = os.path.join(public_tmp, "stop")
    deadline = time.time() + 240
    children = []
    try:
        with RawSession(d.socket) as held:
            # limit - 4 connections, each stuck in the middle of a frame
            for cid in held.open(limit - 4):
                held.send(cid, STATUS[:6])
            setpriv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
            env = clean_env()
            for _ in range(2):
                children.append(subprocess.Popen(
                    setpriv + [PYTHON, "-I", "-S", "-c", FLOODER, d.socket, str(deadline), stop,
                               os.path.join(tree, "pkg00", "mod000.py")],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    env=env, cwd="/"))
            loop = ("i=0; while [ $i -lt 1000 ] && [ ! -e '%s' ] && [ $(date +%%s) -lt %d ]; do "
                    "timeout 60 '%s' --socket='%s' --no-autostart -q verify '%s' >/dev/null 2>&1; "
                    "i=$((i+1)); done" % (stop, int(deadline), nobody_client, d.socket, hostile))
            children.append(subprocess.Popen(setpriv + ["/bin/sh", "-c", loop], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             env=dict(env, PATH=CLEAN_PATH), cwd="/"))
            time.sleep(1)  # let the attack get going
            assert all(c.poll() is None for c in children), "an attacker exited early"

            t0 = time.monotonic()
            p = d.pycq("compile", tree, timeout=180)
            took = time.monotonic() - t0
            assert p.returncode == 0, "root's compile under attack: " + describe(p)
            assert all(c.poll() is None for c in children), "the attack ended before root's compile did"
    finally:
        write(stop, "")
        for c in children:
            try:
                c.wait(timeout=15)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait(timeout=15)
    v = assert_tree_compiled(tree)  # validate(tree).assert_clean() and no .pyc missing
    assert len(v.valid) == 600, "compiled in %.1f s" % took
