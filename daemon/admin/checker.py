# pycqueue marshal checker: loads the marshal data of .pyc files for verify.
#
# Runs as `python -I -S -c CODE`, CODE being daemon/sandbox/child-prelude.py
# followed by this text (the Makefile joins them into checker-code.h), in
# the same sandbox as the compile workers (the worker user, a memory limit,
# no files), under the interpreter whose magic number the files carry. The
# files are untrusted: any user may ask to verify any tree, and marshal data
# can be built to take minutes or gigabytes to load. The daemon bounds both:
# it kills this process at its deadline (config checker_timeout) and reports
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
# _not_dumpable(), _read_exact() and _send() come from the prelude.
_HEADER = 16   # magic, flags, then mtime+size or the source hash
_MAX_TEXT = 512


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
