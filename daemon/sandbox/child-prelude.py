# pycqueue sandboxed-child prelude: what the worker and the checker share.
#
# The Makefile puts this text in front of daemon/compile/worker.py and of
# daemon/admin/checker.py when it compiles each into the daemon as a byte
# array (daemon/worker-code.h, daemon/checker-code.h); the daemon runs the
# result as `python -I -S -c CODE`. It is text pasted in front, not a
# module: a child inside a chroot has no file of ours to import. So it
# defines only names starting with "_", imports nothing the interpreter may
# lack, and runs nothing itself; each program calls _not_dumpable() first.
#
# Frames in both directions are a little-endian u32 length followed by the
# payload, read from fd 0 and written to fd 1.
import os

_rfd = 0
_wfd = 1


def _not_dumpable():
    # No core dump, no ptrace and no /proc/PID/mem even for processes of
    # its own user (which runs nothing but pycqueue's interpreters). The
    # daemon cannot do this for us, because exec resets it. An interpreter
    # without ctypes (a minimal chroot) goes on without; its uid of its own
    # still keeps other users out.
    try:
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except Exception:
        pass


def _read_exact(n):
    parts = []
    while n:
        b = os.read(_rfd, min(n, 1 << 20))
        if not b:
            raise EOFError
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def _send(payload):
    data = len(payload).to_bytes(4, "little") + payload
    view = memoryview(data)
    while view:
        n = os.write(_wfd, view)
        view = view[n:]
