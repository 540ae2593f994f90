# SPDX-License-Identifier: MIT
"""The client protocol of pycqueued (doc/protocol.md), in pure Python.

This is the module's only way to the daemon: one connection per call, one
MSG_COMPILE request on it, the replies read until MSG_DONE or MSG_ERROR.
Everything here is bounded as in the C client: a frame is at most 16 MiB,
a reply frame is read by its announced length, and a request that would
not fit in one frame is sent as several.

Whether the daemon serves this process is decided before anything is sent:
the peer's credentials (SO_PEERCRED) name the daemon's uid, and the daemon
takes compile requests from root, or from its own uid when it runs as an
ordinary user. A process it would refuse (EPERM) compiles in-process, as
the standard library would, because its user could write those files
anyway: see Backend below. No daemon at all is the same, with one warning
on stderr per process; PYCQUEUE_STRICT=1 turns both into DaemonError.
"""

import errno
import fcntl
import os
import socket
import struct
import subprocess
import sys
import time

PROTOCOL_VERSION = 1
MAX_FRAME = 16 * 1024 * 1024

MSG_COMPILE = 1
MSG_ACCEPTED = 16
MSG_PROGRESS = 17
MSG_RESULT = 18
MSG_DONE = 19
MSG_ERROR = 20

TAG_CTX_TOOL = 1
TAG_CTX_DPKG_PACKAGE = 2
TAG_CTX_ARGV = 3
TAG_CTX_DPKG_SCRIPT = 4
TAG_PATH = 10
TAG_PYTHON = 12
TAG_OPT_LEVEL = 13
TAG_INVALIDATION = 14
TAG_FORCE = 15
TAG_REPORT_ALL = 19
TAG_PATH_TARGET = 27
TAG_PATH_DISPLAY = 28
TAG_RESULT_SOURCE = 40
TAG_RESULT_TARGET = 41
TAG_RESULT_OUTCOME = 42
TAG_ERROR_TYPE = 43
TAG_ERROR_LINE = 44
TAG_ERROR_MESSAGE = 45
TAG_ERRNO = 46
TAG_ERROR_DETAIL = 47

OUTCOME_COMPILED = 0
OUTCOME_UP_TO_DATE = 1
OUTCOME_COALESCED = 2
OUTCOME_FAILED = 3

DEFAULT_SOCKET = "/run/pycqueue/socket"
DEFAULT_DAEMON = "/usr/sbin/pycqueued"
AUTOSTART_IDLE_EXIT = "60"
AUTOSTART_TIMEOUT = 10.0
AUTOSTART_LOCK_TIMEOUT = 30.0

# Paths per request: well below the daemon's max_paths_per_request, and
# the frame limit is checked as the request grows.
MAX_PATHS_PER_REQUEST = 20000
# A context argument is cut by the daemon at 4096 bytes; send no more.
MAX_ARGV = 256
MAX_STRING = 4096


class DaemonError(OSError):
    """The daemon could not serve the request, and PYCQUEUE_STRICT=1 (or
    the request failed as a whole: the daemon's MSG_ERROR)."""


class ProtocolError(DaemonError):
    pass


def _field(tag, data):
    return struct.pack("<HI", tag, len(data)) + data


def _u64(tag, value):
    return _field(tag, struct.pack("<Q", value))


def _string(tag, text):
    data = os.fsencode(text) if not isinstance(text, bytes) else text
    return _field(tag, data.replace(b"\0", b"")[:MAX_STRING])


def frame(msg_type, fields):
    body = struct.pack("<HH", PROTOCOL_VERSION, msg_type) + b"".join(fields)
    if len(body) + 4 > MAX_FRAME:
        raise ProtocolError(errno.EMSGSIZE, "request too large for one frame")
    return struct.pack("<I", len(body)) + body


def parse_frame(data):
    """(type, [(tag, bytes)]) of one whole frame; ProtocolError if malformed."""
    if len(data) < 8:
        raise ProtocolError(errno.EBADMSG, "short frame")
    version, msg_type = struct.unpack_from("<HH", data, 4)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(errno.EPROTONOSUPPORT, "protocol version %d" % version)
    fields = []
    pos = 8
    while pos < len(data):
        if pos + 6 > len(data):
            raise ProtocolError(errno.EBADMSG, "truncated field header")
        tag, size = struct.unpack_from("<HI", data, pos)
        pos += 6
        if size > len(data) - pos:
            raise ProtocolError(errno.EBADMSG, "field runs past its frame")
        fields.append((tag, data[pos:pos + size]))
        pos += size
    return msg_type, fields


def socket_path():
    return os.environ.get("PYCQUEUE_SOCKET") or DEFAULT_SOCKET


def daemon_path():
    return os.environ.get("PYCQUEUE_DAEMON") or DEFAULT_DAEMON


def strict():
    return os.environ.get("PYCQUEUE_STRICT", "") not in ("", "0")


def _connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return s


def _not_listening(exc):
    return isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ECONNREFUSED)


def _autostart(path):
    """Starts the daemon as the C client does: under "<socket>.lock", so
    that racing clients start one; detached from this process (a shell
    that backgrounds it and exits) with --idle-exit. Only root starts
    one: a daemon started by another user would serve that user alone."""
    daemon = daemon_path()
    if os.geteuid() != 0 or not os.access(daemon, os.X_OK):
        return None
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, mode=0o755, exist_ok=True)
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return None
    try:
        deadline = time.monotonic() + AUTOSTART_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                try:
                    return _connect(path)  # the holder's daemon listens
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.05)
        try:
            return _connect(path)
        except OSError as exc:
            if not _not_listening(exc):
                return None
        try:
            subprocess.run(["/bin/sh", "-c", '"$0" "$@" </dev/null >/dev/null 2>&1 &', daemon,
                            "--socket=" + os.path.abspath(path), "--idle-exit=" + AUTOSTART_IDLE_EXIT],
                           cwd="/", close_fds=True, start_new_session=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        deadline = time.monotonic() + AUTOSTART_TIMEOUT
        delay = 0.01
        while time.monotonic() < deadline:
            try:
                return _connect(path)
            except OSError as exc:
                if not _not_listening(exc):
                    return None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return None
    finally:
        os.close(lock_fd)


def _peer_uid(sock):
    opt = getattr(socket, "SO_PEERCRED", 17)
    data = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    return struct.unpack("3i", data)[1]


class Unavailable(Exception):
    """No daemon serves this process; @refused: it is there but would
    refuse this user (so compiling in-process is the expected path)."""

    def __init__(self, reason, refused=False):
        Exception.__init__(self, reason)
        self.reason = reason
        self.refused = refused


_unavailable = [None]


def open_connection():
    """A socket to a daemon that accepts compile requests from us, or
    Unavailable. Once no daemon could serve this process, it stays so for
    the process's life: the fallback is decided (and warned about) once."""
    if _unavailable[0] is not None:
        raise _unavailable[0]
    try:
        return _open_connection()
    except Unavailable as exc:
        _unavailable[0] = exc
        raise


def probe():
    """Raises Unavailable unless a daemon would serve us now."""
    open_connection().close()


def mark_unavailable(reason, refused=False):
    """From now on this process compiles in-process (the daemon failed a
    request, or refused it)."""
    if _unavailable[0] is None:
        _unavailable[0] = Unavailable(reason, refused)


def _open_connection():
    path = socket_path()
    try:
        sock = _connect(path)
    except OSError as exc:
        sock = None
        if _not_listening(exc) and os.environ.get("PYCQUEUE_NO_AUTOSTART", "") in ("", "0"):
            sock = _autostart(path)
        if sock is None:
            raise Unavailable("cannot reach pycqueued at %s: %s" % (path, exc.strerror or exc))
    try:
        uid = _peer_uid(sock)
    except OSError as exc:
        sock.close()
        raise Unavailable("cannot identify pycqueued at %s: %s" % (path, exc.strerror))
    me = os.geteuid()
    if me != 0 and me != uid:
        sock.close()
        raise Unavailable("pycqueued at %s takes compile requests from root only" % path, refused=True)
    return sock


class Result(object):
    __slots__ = ("source", "target", "outcome", "error_type", "error_line", "error_message",
                 "error_detail")

    def __init__(self):
        self.source = self.target = None
        self.outcome = None
        self.error_type = self.error_message = self.error_detail = None
        self.error_line = 0


def _recv_exact(sock, n):
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ProtocolError(errno.ECONNRESET, "pycqueued closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock):
    head = _recv_exact(sock, 4)
    (length,) = struct.unpack("<I", head)
    if length < 4 or length + 4 > MAX_FRAME:
        raise ProtocolError(errno.EBADMSG, "bad frame length %d" % length)
    return parse_frame(head + _recv_exact(sock, length))


def _decode(data):
    return data.decode("utf-8", "surrogateescape")


def _context(tool):
    fields = [_string(TAG_CTX_TOOL, tool)]
    for name, tag in (("DPKG_MAINTSCRIPT_PACKAGE", TAG_CTX_DPKG_PACKAGE),
                      ("DPKG_MAINTSCRIPT_NAME", TAG_CTX_DPKG_SCRIPT)):
        value = os.environ.get(name)
        if value:
            fields.append(_string(tag, value))
    argv = [sys.executable] + list(sys.argv)
    for arg in argv[:MAX_ARGV]:
        fields.append(_string(TAG_CTX_ARGV, arg))
    return fields


class Item(object):
    """One path of a request: absolute source, explicit target ("" =
    PEP 3147's), display name ("" = the canonical source)."""
    __slots__ = ("source", "target", "display")

    def __init__(self, source, target=b"", display=b""):
        self.source = source
        self.target = target
        self.display = display


def compile_request(sock, tool, items, interpreter, levels, mode):
    """Sends one MSG_COMPILE (forced, every result reported) and returns
    the list of Results. Raises DaemonError for a MSG_ERROR and
    ProtocolError when the exchange breaks."""
    fields = _context(tool)
    fields.append(_field(TAG_PYTHON, interpreter))
    for level in levels:
        fields.append(_u64(TAG_OPT_LEVEL, level))
    fields += [_u64(TAG_INVALIDATION, mode), _u64(TAG_FORCE, 1), _u64(TAG_REPORT_ALL, 1)]
    explicit = any(i.target for i in items)
    displays = any(i.display for i in items)
    for item in items:
        fields.append(_field(TAG_PATH, item.source))
        if explicit:
            fields.append(_field(TAG_PATH_TARGET, item.target))
        if displays:
            fields.append(_field(TAG_PATH_DISPLAY, item.display))
    sock.sendall(frame(MSG_COMPILE, fields))
    results = []
    while True:
        msg_type, reply = _recv_frame(sock)
        if msg_type == MSG_ERROR:
            code, message = errno.EIO, "the request failed"
            for tag, data in reply:
                if tag == TAG_ERRNO and len(data) == 8:
                    code = struct.unpack("<Q", data)[0]
                elif tag == TAG_ERROR_MESSAGE:
                    message = _decode(data)
            raise DaemonError(code, message)
        if msg_type == MSG_DONE:
            return results
        if msg_type != MSG_RESULT:
            continue  # ACCEPTED, PROGRESS, and types this module does not know
        r = Result()
        for tag, data in reply:
            if tag == TAG_RESULT_SOURCE:
                r.source = data
            elif tag == TAG_RESULT_TARGET:
                r.target = data
            elif tag == TAG_RESULT_OUTCOME and len(data) == 8:
                r.outcome = struct.unpack("<Q", data)[0]
            elif tag == TAG_ERROR_TYPE:
                r.error_type = _decode(data)
            elif tag == TAG_ERROR_LINE and len(data) == 8:
                r.error_line = struct.unpack("<Q", data)[0]
            elif tag == TAG_ERROR_MESSAGE:
                r.error_message = _decode(data)
            elif tag == TAG_ERROR_DETAIL:
                r.error_detail = _decode(data)
        results.append(r)


def compile_items(tool, items, interpreter, levels, mode):
    """compile_request() over as many requests as the items need (one,
    unless there are very many). Raises Unavailable, DaemonError."""
    sock = open_connection()
    results = []
    try:
        for start in range(0, max(len(items), 1), MAX_PATHS_PER_REQUEST):
            chunk = items[start:start + MAX_PATHS_PER_REQUEST]
            if chunk:
                results += compile_request(sock, tool, chunk, interpreter, levels, mode)
    except OSError as exc:
        if isinstance(exc, DaemonError):
            raise
        raise ProtocolError(exc.errno or errno.EIO, "lost pycqueued: %s" % exc)
    finally:
        sock.close()
    return results


_warned = [False]


def warn_fallback(reason):
    """Once per process: say that the stdlib compiles in-process."""
    if _warned[0]:
        return
    _warned[0] = True
    try:
        sys.stderr.write("pycqueue: %s; compiling in-process\n" % reason)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def interpreter():
    """This interpreter as the daemon should run it: the compiling
    interpreter is the one the caller's stdlib would have used."""
    return os.fsencode(os.path.realpath(sys.executable))


# The errno of each OSError subclass a failed file can name, so that it is
# raised as the standard library raises it: OSError(errno, strerror, file).
ERRNO_OF = {
    "FileNotFoundError": errno.ENOENT,
    "PermissionError": errno.EACCES,
    "IsADirectoryError": errno.EISDIR,
    "NotADirectoryError": errno.ENOTDIR,
    "FileExistsError": errno.EEXIST,
    "BlockingIOError": errno.EAGAIN,
    "TimeoutError": errno.ETIMEDOUT,
}
