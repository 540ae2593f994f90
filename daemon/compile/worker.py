# pycqueue worker: compiles Python source to .pyc bytes for pycqueued.
#
# Runs as `python -I -S -c CODE`, CODE being daemon/sandbox/child-prelude.py
# followed by this text (the Makefile joins them into worker-code.h), so it
# needs no file of ours and also works inside a chroot. _not_dumpable(),
# _read_exact() and _send() come from the prelude. It never opens a source
# or writes a file: the daemon sends the source bytes and writes the result.
# Frames in both directions are a little-endian u32 length followed by the
# payload.
#
#   worker -> daemon, once:  b"H" magic(4) hash(8) then NUL-separated
#                            cache_tag, version, implementation
#                            (hash = source_hash(b"pycqueue"), which tells the
#                            daemon the interpreter's SipHash variant)
#   daemon -> worker:        b"J" <Q id> <I mtime> <I size> <B optimize>
#                            <B mode> <I path length> path source
#   worker -> daemon:        b"R" <Q id> <B 0> pyc-bytes, or
#                            b"R" <Q id> <B 1> <I line> type NUL message
#                            NUL detail
#
# detail is the text py_compile's PyCompileError carries for the error
# (its msg), worded by this interpreter's own py_compile, so that the
# Python client module can raise the same PyCompileError (TAG_ERROR_DETAIL).
#
# mode: 0 timestamp, 1 checked-hash, 2 unchecked-hash. The pyc is built
# exactly as py_compile builds it, so the bytes are identical.
#
# First it makes itself non-dumpable (see the prelude).
import sys
from importlib import _bootstrap_external as _be
from importlib.util import MAGIC_NUMBER, source_hash


def _compile(path, source, mtime, size, optimize, mode):
    code = compile(source, path, "exec", dont_inherit=True, optimize=optimize)
    if mode == 0:
        data = _be._code_to_timestamp_pyc(code, mtime, size)
    else:
        data = _be._code_to_hash_pyc(code, source_hash(source), mode == 1)
    return bytes(data)


def _detail(exc, path):
    try:
        import py_compile
        return py_compile.PyCompileError(type(exc), exc, path).msg
    except Exception:
        # An interpreter without a working py_compile: its rule, by hand.
        if type(exc) is SyntaxError:
            import traceback
            text = "".join(traceback.format_exception_only(type(exc), exc))
            return text.replace('File "<string>"', 'File "%s"' % path)
        return "Sorry: %s: %s" % (type(exc).__name__, exc)


def _error_reply(job_id, exc, path):
    line = 0
    message = str(exc)
    if isinstance(exc, SyntaxError):
        line = exc.lineno or 0
        message = exc.msg or message
    kind = type(exc).__name__
    detail = _detail(exc, path)
    try:
        detail = detail.encode("utf-8", "surrogateescape")
    except UnicodeError:
        detail = detail.encode("utf-8", "backslashreplace")
    # Texts end at a NUL: the message is cut there, as it always was.
    text = (kind.encode("utf-8", "replace") + b"\0"
            + message.encode("utf-8", "replace").split(b"\0", 1)[0] + b"\0"
            + detail.replace(b"\0", b"\\0"))
    return (b"R" + job_id.to_bytes(8, "little") + b"\1"
            + (line & 0xFFFFFFFF).to_bytes(4, "little") + text)


def main():
    _not_dumpable()
    impl = sys.implementation
    version = "%d.%d.%d" % sys.version_info[:3]
    hello = (b"H" + MAGIC_NUMBER + source_hash(b"pycqueue")
             + impl.cache_tag.encode() + b"\0" + version.encode()
             + b"\0" + impl.name.encode())
    _send(hello)
    while True:
        try:
            n = int.from_bytes(_read_exact(4), "little")
            frame = _read_exact(n)
        except EOFError:
            return
        if frame[:1] != b"J" or len(frame) < 23:
            sys.exit(3)
        job_id = int.from_bytes(frame[1:9], "little")
        mtime = int.from_bytes(frame[9:13], "little")
        size = int.from_bytes(frame[13:17], "little")
        optimize = frame[17]
        mode = frame[18]
        plen = int.from_bytes(frame[19:23], "little")
        path = frame[23:23 + plen].decode("utf-8", "surrogateescape")
        source = frame[23 + plen:]
        try:
            pyc = _compile(path, source, mtime, size, optimize, mode)
            reply = b"R" + job_id.to_bytes(8, "little") + b"\0" + pyc
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError,
                OverflowError, UnicodeError, LookupError) as exc:
            reply = _error_reply(job_id, exc, path)
        del source
        _send(reply)


main()
