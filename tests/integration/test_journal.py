# SPDX-License-Identifier: MIT
"""pycqueued's logging through the journal (pycqueued(8), LOGGING).

No journald runs here or in CI, so the test plays it: the daemon runs in a
private mount namespace where /run/systemd/journal is a directory of the
test's, in which the test has bound its own AF_UNIX datagram socket. That
is the address libsystemd's sd_journal_sendv() sends to, so the datagrams
the daemon writes there are exactly what journald would receive; the test
decodes the native protocol (KEY=value lines, the binary KEY\\n<le64 size>
<data>\\n form, and a memfd passed with SCM_RIGHTS for large entries).
$JOURNAL_STREAM names the daemon's stderr (its log file), as systemd sets it
for a service whose stderr is the journal; without it, or when it names
another file, the daemon must keep to the old "<N>message" lines on stderr
and send nothing to the socket."""

import array
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading

import pytest

from pycqtest import (PYCQUEUED, cache_path, clean_env, describe, run_client, terminate,
                      wait_for_socket, wait_until, write, write_daemon_config)

# The MESSAGE_IDs of daemon/message-ids.h, as pycqueued(8) documents them.
FILE_FAILED = b"195b7d134fbd47b4b580a2b3d7945b61"
FILE_DONE = b"5f96e02f01d4420bbdd99d5eb8bc3251"
REQUEST_FINISHED = b"28991894489c480282e38ae34d1c88f0"
DEGRADED = b"0a7b7b766ebe494fb295687342836449"
RECOVERED = b"5ef0b26dd6aa421ba44f4c2a8f2375e9"

# The largest entry the test takes, as a datagram or a memfd: far above
# anything the daemon should send (its messages and paths are bounded).
MAX_DATAGRAM = 8 * 1024 * 1024

# Runs "$@" (the daemon) with a fresh /run/systemd whose journal/ is the
# test's directory $1. Where the machine has no /run/systemd, a fresh /run
# is mounted instead (nothing is created on the host but /run/pycqueue,
# the daemon's own), with the host's /run/pycqueue bound back in: worker
# uid locks there are shared with every other daemon on the machine.
NAMESPACE_SCRIPT = r'''
set -e
journal=$1 hostrun=$2
shift 2
if [ -d /run/systemd ]; then
        mount -t tmpfs -o mode=0755,size=1m pycq-journal-test /run/systemd
else
        mkdir -p /run/pycqueue
        mount --bind /run "$hostrun"
        mount -t tmpfs -o mode=0755,size=1m pycq-journal-test /run
        mkdir /run/pycqueue /run/systemd
        mount --bind "$hostrun/pycqueue" /run/pycqueue
fi
mkdir /run/systemd/journal
mount --bind "$journal" /run/systemd/journal
exec "$@"
'''


def parse_entry(data):
    """One native-protocol entry: a dict of field name -> list of values (bytes)."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:  # KEY\n<le64 size><data>\n
            key = line
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            start = nl + 1 + 8
            value = data[start:start + size]
            assert len(value) == size and data[start + size:start + size + 1] == b"\n", "bad binary field"
            i = start + size + 1
        fields.setdefault(key.decode("ascii"), []).append(value)
    return fields


class FakeJournal:
    """A socket at DIR/socket that collects what is sent to it, decoded."""

    def __init__(self, directory):
        self.dir = directory
        self.entries = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(os.path.join(directory, "socket"))
        # Room for a burst: a blocked sender is the daemon's loop.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.settimeout(0.1)
        self.stopping = False
        self.idle = threading.Event()  # set when a receive found the socket empty
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fd_space = socket.CMSG_SPACE(struct.calcsize("i") * 4)
        while not self.stopping:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(MAX_DATAGRAM, fd_space)
            except socket.timeout:
                self.idle.set()
                continue
            except OSError:
                return
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                    for fd in fds:
                        try:  # a sealed memfd holding the whole entry
                            size = os.fstat(fd).st_size
                            assert size <= MAX_DATAGRAM, "memfd entry of %d bytes" % size
                            data = os.pread(fd, size, 0)
                        finally:
                            os.close(fd)
            entry = parse_entry(data)
            with self.lock:
                self.entries.append(entry)

    def sync(self):
        """Returns once everything sent before the call has been read."""
        self.idle.clear()
        assert self.idle.wait(timeout=10), "the receiver is stuck"

    def find(self, **match):
        """The entries whose fields have these (bytes) values."""
        with self.lock:
            entries = list(self.entries)
        return [e for e in entries
                if all(v in e.get(k, []) for k, v in match.items())]

    def close(self):
        self.stopping = True
        self.thread.join(timeout=10)
        self.sock.close()


class NamespacedDaemon:
    def __init__(self, base, sockdir, journal_dir, args=(), config=""):
        self.socket = os.path.join(sockdir, "j.sock")
        self.state_dir = os.path.join(base, "state")
        self.config = os.path.join(base, "j.conf")
        self.log_path = os.path.join(base, "j.log")
        self.hostrun = tempfile.mkdtemp(prefix="pycq-hostrun-", dir=base)
        self.journal_dir = journal_dir
        self.args = list(args)
        self.proc = None
        self.stopped = False  # the test stopped it on purpose
        write_daemon_config(self.config, config)

    def start(self, journal_stream="match"):
        """@journal_stream: "match" sets $JOURNAL_STREAM to the daemon's
        stderr, "other" to another file's, None leaves it unset."""
        cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", NAMESPACE_SCRIPT, "sh",
               self.journal_dir, self.hostrun, PYCQUEUED, "--socket=" + self.socket,
               "--state-dir=" + self.state_dir, "--config=" + self.config, "--workers=1"] + self.args
        env = clean_env(drop=("JOURNAL_STREAM",))
        log = open(self.log_path, "ab")
        try:
            if journal_stream == "match":
                st = os.fstat(log.fileno())
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            elif journal_stream == "other":
                st = os.stat(self.config)
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                         cwd="/")
        finally:
            log.close()
        wait_for_socket(self.socket, self.proc, timeout=10)
        return self

    def pycq(self, *args):
        return run_client(*args, socket_path=self.socket)

    def log_bytes(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def stop(self):
        self.stopped = True
        return terminate(self.proc)


@pytest.fixture
def fake_journal():
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is missing")
    d = tempfile.mkdtemp(prefix="pycq-journal-", dir="/tmp")
    j = FakeJournal(d)
    yield j
    j.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def jdaemon(request, tmp_path, sockdir, fake_journal):
    """Factory: jdaemon(args=(), journal_stream="match") starts a pycqueued
    in the namespace; teardown stops it and fails on an unasked exit or a
    sanitizer report."""
    daemons = []

    def start(args=(), journal_stream="match", config=""):
        d = NamespacedDaemon(str(tmp_path), sockdir, fake_journal.dir, args, config)
        daemons.append(d)
        return d.start(journal_stream)

    yield start
    for d in daemons:
        died = d.proc.poll()
        terminate(d.proc)
        log = d.log_bytes().decode("utf-8", "replace")
        assert died is None or d.stopped, "pycqueued exited (%s) during the test:\n%s" % (died, log[-5000:])
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log[-5000:]


def tree(tmp_path):
    """A good file, a bad one, and a good one whose name is not UTF-8 and
    holds a newline."""
    src = tmp_path / "src"
    src.mkdir()
    good = str(src / "good.py")
    bad = str(src / "bad.py")
    odd = os.path.join(os.fsencode(src), b"odd\xff\nname.py")
    write(good, b"X = 1\n")
    write(bad, b"x = 1\ndef f(:\n")
    write(odd, b"Y = 2\n")
    return os.fsencode(good), os.fsencode(bad), odd


def one(entries, what):
    assert len(entries) == 1, "%s: %d entries: %r" % (what, len(entries), entries)
    return entries[0]


def test_journal_fields_per_file(jdaemon, fake_journal, tmp_path):
    """With --log-level=debug every file has its entry; failures have their
    own MESSAGE_ID; paths arrive as the exact bytes, not UTF-8 or a line."""
    good, bad, odd = tree(tmp_path)
    d = jdaemon(args=["--log-level=debug"])
    p = d.pycq("compile", "--package=journal-test", good, bad, odd)
    assert p.returncode == 1, describe(p)
    uid = str(os.getuid()).encode()

    assert wait_until(lambda: fake_journal.find(MESSAGE_ID=REQUEST_FINISHED), 10), fake_journal.entries
    failed = one(fake_journal.find(MESSAGE_ID=FILE_FAILED), "failed")
    assert failed["PYCQUEUE_SOURCE"] == [bad]
    assert failed["PYCQUEUE_TARGET"] == [os.fsencode(cache_path(bad.decode()))]
    assert failed["PYCQUEUE_OUTCOME"] == [b"failed"]
    assert failed["PYCQUEUE_PACKAGE"] == [b"journal-test"]
    assert failed["PYCQUEUE_UID"] == [uid]
    assert failed["PYCQUEUE_ERROR_TYPE"] == [b"SyntaxError"]
    assert failed["PYCQUEUE_ERROR_LINE"] == [b"2"]
    assert failed["PRIORITY"] == [b"4"] and failed["SYSLOG_IDENTIFIER"] == [b"pycqueued"]
    assert bad in failed["MESSAGE"][0] and b"SyntaxError" in failed["MESSAGE"][0], failed
    request = failed["PYCQUEUE_REQUEST"][0]
    assert re.fullmatch(rb"[1-9][0-9]*", request), request

    done = fake_journal.find(MESSAGE_ID=FILE_DONE, PYCQUEUE_REQUEST=request)
    by_source = {e["PYCQUEUE_SOURCE"][0]: e for e in done}
    assert set(by_source) == {good, odd}, done
    for source, e in by_source.items():
        assert e["PYCQUEUE_OUTCOME"] == [b"compiled"], e
        assert e["PYCQUEUE_TARGET"] == [os.fsencode(cache_path(os.fsdecode(source)))], e
        assert e["PYCQUEUE_PACKAGE"] == [b"journal-test"] and e["PYCQUEUE_UID"] == [uid], e
        assert e["PRIORITY"] == [b"7"], e
        assert os.path.isfile(cache_path(os.fsdecode(source)))
    # the raw bytes are in the field; the message is one escaped line
    msg = by_source[odd]["MESSAGE"][0]
    assert b"\n" not in msg and b"odd\\xff\\x0aname.py" in msg, msg

    fin = one(fake_journal.find(MESSAGE_ID=REQUEST_FINISHED, PYCQUEUE_REQUEST=request), "summary")
    assert fin["PYCQUEUE_COMPILED"] == [b"2"] and fin["PYCQUEUE_FAILED"] == [b"1"], fin
    assert fin["PYCQUEUE_UP_TO_DATE"] == [b"0"] and fin["PRIORITY"] == [b"6"], fin
    # journald has it all: nothing went to stderr but what came before the
    # journal was chosen (nothing at all)
    assert d.log_bytes() == b"", d.log_bytes()


def test_journal_volume_at_default_level(jdaemon, fake_journal, tmp_path):
    """At the default level a success is not one entry per file: only the
    failures and the request's summary are."""
    good, bad, odd = tree(tmp_path)
    d = jdaemon()
    p = d.pycq("compile", good, bad, odd)
    assert p.returncode == 1, describe(p)
    assert wait_until(lambda: fake_journal.find(MESSAGE_ID=REQUEST_FINISHED), 10), fake_journal.entries
    assert len(fake_journal.find(MESSAGE_ID=FILE_FAILED)) == 1, fake_journal.entries
    assert fake_journal.find(MESSAGE_ID=FILE_DONE) == [], fake_journal.entries
    fin = one(fake_journal.find(MESSAGE_ID=REQUEST_FINISHED), "summary")
    assert "PYCQUEUE_PACKAGE" not in fin, fin  # none given

    # all up to date: the summary drops to debug, nothing is logged
    before = len(fake_journal.entries)
    p = d.pycq("compile", good, odd)
    assert p.returncode == 0, describe(p)
    fake_journal.sync()  # the daemon sends before it answers
    assert len(fake_journal.entries) == before, fake_journal.entries[before:]


def test_degraded_and_recovered_message_ids(jdaemon, fake_journal, tmp_path):
    """A database that cannot be opened makes recording degraded, with its
    MESSAGE_ID; once it can be, the recovery has its own."""
    state = tmp_path / "state"
    (state / "provenance.db").mkdir(parents=True)  # not a database: open fails
    d = jdaemon()
    assert wait_until(lambda: fake_journal.find(MESSAGE_ID=DEGRADED), 10), fake_journal.entries
    deg = one(fake_journal.find(MESSAGE_ID=DEGRADED), "degraded")
    assert deg["PRIORITY"] == [b"3"] and deg["PYCQUEUE_DEGRADED_REASON"][0], deg
    assert b"DEGRADED" in deg["MESSAGE"][0]

    os.rmdir(state / "provenance.db")
    good, _bad, _odd = tree(tmp_path)
    assert d.pycq("compile", good).returncode == 0
    # the recorder retries every few seconds
    assert wait_until(lambda: fake_journal.find(MESSAGE_ID=RECOVERED), 20), fake_journal.entries
    rec = one(fake_journal.find(MESSAGE_ID=RECOVERED), "recovered")
    assert rec["PRIORITY"] == [b"5"] and rec["PYCQUEUE_DROPPED_RECORDS"] == [b"0"], rec


@pytest.mark.parametrize("journal_stream", [None, "other"])
def test_stderr_fallback(jdaemon, fake_journal, tmp_path, journal_stream):
    """Without $JOURNAL_STREAM, or with one that is not the daemon's stderr,
    the journal socket is left alone (even though it is there) and every
    line goes to stderr with its <N> prefix, as before."""
    good, bad, odd = tree(tmp_path)
    d = jdaemon(args=["--log-level=debug"], journal_stream=journal_stream)
    p = d.pycq("compile", good, bad, odd)
    assert p.returncode == 1, describe(p)
    assert wait_until(lambda: b"Request " in d.log_bytes(), 10), d.log_bytes()
    d.stop()
    log = d.log_bytes()
    lines = log.split(b"\n")
    assert lines[-1] == b"" and len(lines) > 3, log
    for line in lines[:-1]:
        assert re.match(rb"<[0-7]>", line), "a line without its priority prefix: %r" % line
    assert re.search(rb"^<4>Failed to compile " + re.escape(bad) + rb":2: SyntaxError: ", log, re.M), log
    assert b"<7>compiled " + good in log, log
    # the odd name stays on its one line, escaped
    assert re.search(rb"^<7>compiled .*odd\\xff\\x0aname\.py", log, re.M), log
    fake_journal.sync()
    assert fake_journal.entries == []
