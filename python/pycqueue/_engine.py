# SPDX-License-Identifier: MIT
"""Compiles a list of units (one source at one optimization level into one
target) through pycqueued, and turns each file's result into what the
standard library would have returned or raised for it.

A unit whose target is the PEP 3147 one for this interpreter is sent
without a target (the daemon names it, and creates __pycache__ only when it
writes, as py_compile does); any other target (a cfile, compileall -b, a
pycache prefix) is sent as an explicit TAG_PATH_TARGET, whose directory is
created first as py_compile creates it. Every unit carries its display
name (dfile, or the file as the caller named it), which becomes
co_filename. Units are grouped into as few requests as the protocol
allows: default targets of the same optimization levels share one request,
explicit targets need one per level.
"""

import builtins
import errno
import os
import sys

from . import _client

TIMESTAMP, CHECKED_HASH, UNCHECKED_HASH = 0, 1, 2


class Unit(object):
    __slots__ = ("file", "source", "level", "cfile", "display", "default_target", "key_source",
                 "key_target", "error", "done")

    def __init__(self, file, level, cfile, display):
        self.file = file                      # as the caller named it
        self.source = os.fsencode(os.path.abspath(file))
        self.level = level
        self.cfile = cfile
        self.display = display
        self.default_target = cfile_is_default(self.source, level, cfile)
        self.error = None                     # the exception to raise, once done
        self.done = False
        self.key_source = self.key_target = None


def pep3147_name(name, level):
    stem = name[:-3]
    opt = ".opt-%d" % level if level else ""
    return stem + "." + sys.implementation.cache_tag + opt + ".pyc"


def cfile_is_default(source, level, cfile):
    """True when @cfile is where pycqueued writes @source's level by
    default: DIR/__pycache__/NAME.TAG[.opt-N].pyc of a NAME.py."""
    directory, name = os.path.split(os.fsdecode(source))
    if not name.endswith(".py") or sys.implementation.cache_tag is None:
        return False
    want = os.path.join(directory, "__pycache__", pep3147_name(name, level))
    return os.path.abspath(cfile) == want


def _canonical_named(path):
    directory, name = os.path.split(path)
    return os.path.join(os.path.realpath(directory), name)


def _prepare(unit):
    """Keys to find the unit's result by; the explicit target's directory
    made as py_compile makes it."""
    # py_compile makes the directory once it has read and compiled the
    # source: not for a source it cannot read (the daemon says why).
    if not unit.default_target and os.path.isfile(unit.file):
        directory = os.path.dirname(unit.cfile)
        if directory:
            try:
                os.makedirs(directory)
            except FileExistsError:
                pass
    src = _canonical_named(os.fsdecode(unit.source))
    unit.key_source = os.fsencode(src)
    if unit.default_target:
        directory, name = os.path.split(src)
        unit.key_target = os.fsencode(os.path.join(directory, "__pycache__", pep3147_name(name, unit.level)))
    else:
        unit.key_target = os.fsencode(_canonical_named(os.path.abspath(unit.cfile)))


def _groups(units):
    """[(levels, [units])]: each group is one request."""
    by_source = {}
    order = []
    for u in units:
        if u.source not in by_source:
            by_source[u.source] = []
            order.append(u.source)
        by_source[u.source].append(u)
    groups = {}
    keys = []

    def add(key, us):
        if key not in groups:
            groups[key] = []
            keys.append(key)
        groups[key].extend(us)

    for source in order:
        us = by_source[source]
        if all(u.default_target for u in us):
            add(("default", tuple(sorted(set(u.level for u in us)))), us)
        else:
            for u in us:
                add(("explicit", (u.level,)), [u])
    return [(key[1], key[0] == "explicit", groups[key]) for key in keys]


def _exception_of(unit, result):
    """What the standard library raises for this failure."""
    from . import py_compile
    message = result.error_message or "failed"
    if result.error_detail is not None:
        exc_type = getattr(builtins, result.error_type or "", None)
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            exc_type = type(result.error_type or "Exception", (Exception,), {})
        if issubclass(exc_type, SyntaxError):
            value = exc_type(message, (unit.display, result.error_line or None, None, None))
        else:
            try:
                value = exc_type(message)
            except Exception:
                value = type(exc_type.__name__, (Exception,), {})(message)
        return py_compile.PyCompileError(exc_type, value, unit.display, result.error_detail)
    exc_type = getattr(builtins, result.error_type or "", None)
    if not (isinstance(exc_type, type) and issubclass(exc_type, OSError)):
        return OSError(message)
    code = _client.ERRNO_OF.get(exc_type.__name__)
    if code is None:
        return exc_type(message)
    if exc_type is FileExistsError:
        return exc_type(message)
    # Where the standard library fails (reading the source, or writing the
    # target), with its words: "[Errno 2] No such file or directory: 'x.py'".
    where = unit.cfile if message.startswith("cannot write ") else unit.file
    return exc_type(code, os.strerror(code), where)


def _deliver(units, results):
    by_key = {}
    for u in units:
        by_key.setdefault((u.key_source, u.key_target), []).append(u)
    leftovers = []
    for r in results:
        us = by_key.get((r.source, r.target))
        u = next((x for x in us if not x.done), None) if us else None
        if u is None:
            leftovers.append(r)
            continue
        u.done = True
        if r.outcome == _client.OUTCOME_FAILED:
            u.error = _exception_of(u, r)
    for r in leftovers:
        # A path that failed before any target was known names the path
        # as sent; else the same source under another canonical target.
        for u in units:
            if u.done:
                continue
            if (r.target is None and r.source == u.source) or r.source == u.key_source:
                u.done = True
                if r.outcome == _client.OUTCOME_FAILED:
                    u.error = _exception_of(u, r)
                if r.target is not None:
                    break
    for u in units:
        if not u.done:
            u.done = True
            u.error = OSError(errno.EIO, "pycqueued sent no result for %s" % u.file)


def run(tool, units, mode):
    """Compiles @units through the daemon; sets each unit's error. Raises
    _client.Unavailable, DaemonError or ProtocolError when the daemon does
    not serve the whole of it: nothing was reported then, and the caller
    falls back."""
    for u in units:
        _prepare(u)
    interpreter = _client.interpreter()
    for levels, explicit, us in _groups(units):
        items = [_client.Item(u.source, b"" if u.default_target else os.fsencode(os.path.abspath(u.cfile)),
                              os.fsencode(u.display))
                 for u in (us if explicit else _first_per_source(us))]
        results = _client.compile_items(tool, items, interpreter, list(levels), mode)
        _deliver(us, results)


def _first_per_source(units):
    seen = set()
    out = []
    for u in units:
        if u.source not in seen:
            seen.add(u.source)
            out.append(u)
    return out


def mode_code(invalidation_mode):
    name = getattr(invalidation_mode, "name", str(invalidation_mode))
    return {"TIMESTAMP": TIMESTAMP, "CHECKED_HASH": CHECKED_HASH, "UNCHECKED_HASH": UNCHECKED_HASH}[name]
