# pycqueue marshal checker: loads the marshal data of .pyc files for verify.
#
# Runs as `python -I -S -c CODE` with this text as CODE, in the same sandbox
# as the compile workers (the worker user, a memory limit, no files), under
# the interpreter whose magic number the files carry. The files are
# untrusted: any user may ask to verify any tree, and marshal data can be
# built to take minutes or gigabytes to load. The daemon bounds both: it
# kills this process at its deadline (config checker_timeout) and reports
# the files it had no answer for.
#
# Frames in both directions are a little-endian u32 length and a payload:
#
#   daemon -> checker:  the whole .pyc file (an empty frame: unreadable)
#   checker -> daemon:  one frame per file, in order, as soon as it is
#                       loaded: b"\0" when it loads, b"\1" + UTF-8 text of
#                       the error when it does not
#
# The daemon closes our stdin after the last file; we exit at its EOF.
import os
import sys

_rfd = 0
_wfd = 1
_HEADER = 16   # magic, flags, then mtime+size or the source hash
_MAX_TEXT = 512


def _not_dumpable():
    # As in worker.py: no core dumps, no ptrace, no /proc/PID/mem.
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


def main():
    _not_dumpable()
    import marshal
    while True:
        try:
            n = int.from_bytes(_read_exact(4), "little")
            data = _read_exact(n)
        except EOFError:
            return
        try:
            marshal.loads(data[_HEADER:])
            reply = b"\0"
        except Exception as e:
            text = (type(e).__name__ + ": " + str(e)).replace("\n", " ")
            reply = b"\1" + text[:_MAX_TEXT].encode("utf-8", "replace")
        del data
        _send(reply)


main()
