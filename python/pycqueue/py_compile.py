# SPDX-License-Identifier: MIT
"""py_compile through pycqueued.

compile() has the signature, return value, exceptions and output of the
standard library's py_compile.compile(); PyCompileError and
PycInvalidationMode *are* the standard library's, so code that catches
py_compile.PyCompileError catches ours. The daemon compiles and writes the
file; this module decides what the standard library decides before that
(the target path, the default invalidation mode, the refusal of a symlink
or special file at the target) and reports what it would report after.

Where no daemon serves this process the standard library's own compile()
runs instead: see pycqueue._client for when, and PYCQUEUE_STRICT.
"""

import importlib.util
import os
import sys

import py_compile as _std

from . import _client, _engine

PyCompileError = _std.PyCompileError
PycInvalidationMode = _std.PycInvalidationMode

__all__ = ["compile", "main", "PyCompileError", "PycInvalidationMode"]

TOOL = "pycqueue.py_compile"

# The standard library's own, kept before main() lends it ours.
_std_compile = _std.compile


def _default_invalidation_mode():
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return PycInvalidationMode.CHECKED_HASH
    return PycInvalidationMode.TIMESTAMP


def _cfile_of(file, optimize):
    """py_compile's target for @file at @optimize (its rule, pycache
    prefix included)."""
    if optimize >= 0:
        return importlib.util.cache_from_source(file, optimization=optimize if optimize >= 1 else "")
    return importlib.util.cache_from_source(file)


def _refused_target(cfile):
    """True when py_compile refuses @cfile before compiling (FileExistsError)."""
    return os.path.islink(cfile) or (os.path.exists(cfile) and not os.path.isfile(cfile))


def _level(optimize):
    return optimize if optimize >= 0 else sys.flags.optimize


def _in_process(reason, refused, args, kwargs, func):
    """The standard library's own function, after saying why (once), or
    DaemonError under PYCQUEUE_STRICT=1."""
    if _client.strict():
        raise _client.DaemonError(1, "pycqueue: %s (PYCQUEUE_STRICT is set)" % reason)
    if not refused:
        _client.warn_fallback(reason)
    return func(*args, **kwargs)


def compile(file, cfile=None, dfile=None, doraise=False, optimize=-1, invalidation_mode=None, quiet=0):
    """Byte-compiles @file as py_compile.compile() does, through pycqueued.
    Returns the target's path, or None when a compile error was reported
    (or, with quiet=2, silenced)."""
    args = (file, cfile, dfile, doraise, optimize, invalidation_mode, quiet)
    std = _std_compile
    if isinstance(file, bytes) or (cfile is not None and isinstance(cfile, bytes)):
        return std(*args)  # bytes paths: the standard library's own business
    file = os.fspath(file)
    if invalidation_mode is None:
        invalidation_mode = _default_invalidation_mode()
    if cfile is None:
        cfile = _cfile_of(file, optimize)
    given = cfile  # returned as given, a path-like object included
    cfile = os.fspath(cfile)
    if _refused_target(cfile):
        return std(*args)  # raises its FileExistsError; writes nothing
    try:
        _client.probe()
    except _client.Unavailable as exc:
        return _in_process(exc.reason, exc.refused, args, {}, std)
    unit = _engine.Unit(file, _level(optimize), cfile, os.fspath(dfile) if dfile else file)
    try:
        _engine.run(TOOL, [unit], _engine.mode_code(invalidation_mode))
    except (_client.Unavailable, _client.DaemonError) as exc:
        refused = getattr(exc, "refused", False) or getattr(exc, "errno", None) == 1
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        _client.mark_unavailable(reason, refused)
        return _in_process(reason, refused, args, {}, std)
    error = unit.error
    if error is None:
        return given
    if isinstance(error, PyCompileError):
        if quiet < 2:
            if doraise:
                raise error
            sys.stderr.write(error.msg + "\n")
        return None
    raise error


def main(*args, **kwargs):
    """The standard library's command line (python3 -m py_compile), with
    this module's compile() doing the work."""
    saved = _std.compile
    _std.compile = compile
    try:
        return _std.main(*args, **kwargs)
    finally:
        _std.compile = saved


if __name__ == "__main__":
    sys.exit(main())
