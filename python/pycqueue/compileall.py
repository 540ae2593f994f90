# SPDX-License-Identifier: MIT
"""compileall through pycqueued.

compile_dir(), compile_file() and compile_path() have the standard
library's signatures, return values, printed output and exceptions. A call
walks (and decides, as compileall does, which files are up to date, what
each one's target and co_filename are) here, in the caller's process; then
the whole walk goes to the daemon as one request (one per optimization
level when the targets are not PEP 3147's, as with legacy=True or a pycache
prefix); then the output compileall would have printed file by file is
printed, in its order. `workers` is accepted and checked: the daemon's
pool does the work in parallel whatever it says.

Where no daemon serves this process, the standard library's own function
runs instead (see pycqueue._client).
"""

import filecmp
import importlib.util
import os
import struct
import sys
from pathlib import Path

import compileall as _std

from . import _client, _engine
from . import py_compile as _pyc

__all__ = ["compile_dir", "compile_file", "compile_path", "main"]

TOOL = "pycqueue.compileall"

# The standard library's own, kept before main() lends it ours.
_std_compile_dir = _std.compile_dir
_std_compile_file = _std.compile_file
_std_compile_path = _std.compile_path


class _Walk(object):
    """What a call prints and compiles, in compileall's order: text lines
    and files (each a _File), replayed once the daemon has answered."""

    def __init__(self):
        self.events = []

    def say(self, text):
        self.events.append(text)


class _File(object):
    """One source compile_file() compiles: its units per level, in order."""

    def __init__(self, fullname, quiet, units, refused, hardlink_dupes):
        self.fullname = fullname
        self.quiet = quiet
        self.units = units          # compiled by the daemon
        self.refused = refused      # (level, cfile) py_compile refuses first, or None
        self.hardlink_dupes = hardlink_dupes
        self.success = True

    def report(self):
        """Prints and links what compile_file() would have; sets success."""
        if not self.quiet:
            print("Compiling {!r}...".format(self.fullname))
        try:
            previous = None
            for unit in self.units:
                if unit.error is not None:
                    raise unit.error
                if previous is not None and self.hardlink_dupes:
                    if filecmp.cmp(unit.cfile, previous.cfile, shallow=False):
                        os.unlink(unit.cfile)
                        os.link(previous.cfile, unit.cfile)
                previous = unit
            if self.refused is not None:
                level, cfile, dfile, mode = self.refused
                # py_compile's own refusal, with its words; writes nothing.
                _pyc._std_compile(self.fullname, cfile, dfile, True, optimize=level, invalidation_mode=mode)
        except _pyc.PyCompileError as err:
            self.success = False
            if self._error_heading():
                encoding = sys.stdout.encoding or sys.getdefaultencoding()
                print(err.msg.encode(encoding, errors="backslashreplace").decode(encoding))
        except (SyntaxError, UnicodeError, OSError) as e:
            self.success = False
            if self._error_heading():
                print(e.__class__.__name__ + ":", e)

    def _error_heading(self):
        if self.quiet >= 2:
            return False
        if self.quiet:
            print("*** Error compiling {!r}...".format(self.fullname))
        else:
            print("*** ", end="")
        return True


def _dfile_of(fullname, ddir, stripdir, prependdir):
    """co_filename as compile_file() computes it (None: the file's name)."""
    dfile = None
    if ddir is not None:
        dfile = os.path.join(ddir, os.path.basename(fullname))
    if stripdir is not None:
        kept = fullname.split(os.path.sep)
        for strip_part, full_part in zip(stripdir.split(os.path.sep), fullname.split(os.path.sep)):
            if strip_part == full_part:
                kept.remove(strip_part)
        dfile = os.path.join(*kept)
    if prependdir is not None:
        dfile = os.path.join(prependdir, fullname if dfile is None else dfile)
    return dfile


def _current(fullname, cfiles):
    """compileall's up-to-date test: every target starts with a timestamp
    header naming the source's mtime."""
    try:
        mtime = int(os.stat(fullname).st_mtime)
        expect = struct.pack("<4sLL", importlib.util.MAGIC_NUMBER, 0, mtime & 0xFFFFFFFF)
        for cfile in cfiles:
            with open(cfile, "rb") as f:
                if f.read(12) != expect:
                    return False
        return True
    except OSError:
        return False


def _plan_file(walk, units, fullname, ddir=None, force=False, rx=None, quiet=0, legacy=False, optimize=-1,
               invalidation_mode=None, stripdir=None, prependdir=None, limit_sl_dest=None,
               hardlink_dupes=False):
    """compile_file()'s decisions for one file: appends to @walk and @units.
    Returns False when it already knows the file fails, else True."""
    if ddir is not None and (stripdir is not None or prependdir is not None):
        raise ValueError("Destination dir (ddir) cannot be used in combination with stripdir or prependdir")
    fullname = os.fspath(fullname)
    stripdir = os.fspath(stripdir) if stripdir is not None else None
    name = os.path.basename(fullname)
    dfile = _dfile_of(fullname, ddir, stripdir, prependdir)
    levels = sorted(set([optimize] if isinstance(optimize, int) else optimize))
    if hardlink_dupes and len(levels) < 2:
        raise ValueError("Hardlinking of duplicated bytecode makes sense only for more than one "
                         "optimization level")
    if rx is not None and rx.search(fullname):
        return True
    if limit_sl_dest is not None and os.path.islink(fullname):
        if Path(limit_sl_dest).resolve() not in Path(fullname).resolve().parents:
            return True
    if not os.path.isfile(fullname) or not name.endswith(".py"):
        return True
    cfiles = []
    for level in levels:
        if legacy:
            cfiles.append(fullname + "c")
        else:
            cfiles.append(_pyc._cfile_of(fullname, level))
    if not force and _current(fullname, cfiles):
        return True
    if invalidation_mode is None:
        invalidation_mode = _pyc._default_invalidation_mode()
    mine, refused = [], None
    for level, cfile in zip(levels, cfiles):
        if _pyc._refused_target(cfile):
            refused = (level, cfile, dfile, invalidation_mode)
            break
        mine.append(_engine.Unit(fullname, _pyc._level(level), cfile, dfile or fullname))
    units.extend((u, invalidation_mode) for u in mine)
    walk.events.append(_File(fullname, quiet, mine, refused, hardlink_dupes))
    return True


def _walk_dir(walk, directory, maxlevels, quiet):
    """compileall's walk: names sorted, __pycache__ skipped, symlinked
    directories not entered; yields the non-directories."""
    if quiet < 2 and isinstance(directory, os.PathLike):
        directory = os.fspath(directory)
    if not quiet:
        walk.say("Listing {!r}...".format(directory))
    try:
        names = os.listdir(directory)
    except OSError:
        if quiet < 2:
            walk.say("Can't list {!r}".format(directory))
        names = []
    names.sort()
    for name in names:
        if name == "__pycache__":
            continue
        fullname = os.path.join(directory, name)
        if not os.path.isdir(fullname):
            yield fullname
        elif (maxlevels > 0 and name != os.curdir and name != os.pardir and not os.path.islink(fullname)):
            for sub in _walk_dir(walk, fullname, maxlevels - 1, quiet):
                yield sub


def _run(walk, units):
    """Compiles @units (pairs of unit and invalidation mode) through the
    daemon. Raises what _engine.run() raises."""
    by_mode = {}
    for unit, mode in units:
        by_mode.setdefault(_engine.mode_code(mode), []).append(unit)
    for mode, us in sorted(by_mode.items()):
        _engine.run(TOOL, us, mode)


def _served(reason_holder):
    try:
        _client.probe()
        return True
    except _client.Unavailable as exc:
        reason_holder.append(exc)
        return False


def _fallback(exc, func, args, kwargs):
    refused = getattr(exc, "refused", False) or getattr(exc, "errno", None) == 1
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    _client.mark_unavailable(reason, refused)
    return _pyc._in_process(reason, refused, args, kwargs, func)


def _execute(walk, units, func, args, kwargs):
    """The daemon compiles; then compileall's output. Returns the files'
    success, or the standard library's result when the daemon failed us."""
    try:
        _run(walk, units)
    except (_client.Unavailable, _client.DaemonError) as exc:
        return _fallback(exc, func, args, kwargs)
    success = True
    for event in walk.events:
        if isinstance(event, _File):
            event.report()
            success = success and event.success
        else:
            print(event)
    return success


def compile_file(fullname, ddir=None, force=False, rx=None, quiet=0, legacy=False, optimize=-1,
                 invalidation_mode=None, *, stripdir=None, prependdir=None, limit_sl_dest=None,
                 hardlink_dupes=False):
    """Byte-compiles one file as compileall.compile_file() does, through
    pycqueued. Returns True unless it failed."""
    args = (fullname, ddir, force, rx, quiet, legacy, optimize, invalidation_mode)
    kwargs = dict(stripdir=stripdir, prependdir=prependdir, limit_sl_dest=limit_sl_dest,
                  hardlink_dupes=hardlink_dupes)
    why = []
    if not _served(why):
        return _fallback(why[0], _std_compile_file, args, kwargs)
    walk, units = _Walk(), []
    _plan_file(walk, units, *args, **kwargs)
    return _execute(walk, units, _std_compile_file, args, kwargs)


def compile_dir(dir, maxlevels=None, ddir=None, force=False, rx=None, quiet=0, legacy=False, optimize=-1,
                workers=1, invalidation_mode=None, *, stripdir=None, prependdir=None, limit_sl_dest=None,
                hardlink_dupes=False):
    """Byte-compiles a tree as compileall.compile_dir() does, in one
    request to pycqueued. Returns True unless a file failed."""
    args = (dir, maxlevels, ddir, force, rx, quiet, legacy, optimize, workers, invalidation_mode)
    kwargs = dict(stripdir=stripdir, prependdir=prependdir, limit_sl_dest=limit_sl_dest,
                  hardlink_dupes=hardlink_dupes)
    if ddir is not None and (stripdir is not None or prependdir is not None):
        raise ValueError("Destination dir (ddir) cannot be used in combination with stripdir or prependdir")
    why = []
    if not _served(why):
        return _fallback(why[0], _std_compile_dir, args, kwargs)
    if ddir is not None:
        stripdir, prependdir, ddir = dir, ddir, None
    if workers < 0:
        raise ValueError("workers must be greater or equal to 0")
    if maxlevels is None:
        maxlevels = sys.getrecursionlimit()
    walk, units = _Walk(), []
    try:
        for fullname in _walk_dir(walk, dir, maxlevels, quiet):
            _plan_file(walk, units, fullname, None, force, rx, quiet, legacy, optimize, invalidation_mode,
                       stripdir=stripdir, prependdir=prependdir, limit_sl_dest=limit_sl_dest,
                       hardlink_dupes=hardlink_dupes)
    except Exception:
        # compileall would have printed this much, compiled nothing of it
        # yet (the planning raises only on the first file), then raised.
        for event in walk.events:
            if not isinstance(event, _File):
                print(event)
        raise
    return _execute(walk, units, _std_compile_dir, args, kwargs)


def compile_path(skip_curdir=1, maxlevels=0, force=False, quiet=0, legacy=False, optimize=-1,
                 invalidation_mode=None):
    """compileall.compile_path(): compile_dir() over sys.path, stopping at
    the first directory that fails, as compileall does."""
    success = True
    for entry in sys.path:
        if (not entry or entry == os.curdir) and skip_curdir:
            if quiet < 2:
                print("Skipping current directory")
        else:
            success = success and compile_dir(entry, maxlevels, None, force, quiet=quiet, legacy=legacy,
                                              optimize=optimize, invalidation_mode=invalidation_mode)
    return success


def main():
    """The standard library's command line (python3 -m compileall), with
    this module's functions doing the work."""
    saved = (_std.compile_dir, _std.compile_file, _std.compile_path)
    _std.compile_dir, _std.compile_file, _std.compile_path = compile_dir, compile_file, compile_path
    try:
        return _std.main()
    finally:
        _std.compile_dir, _std.compile_file, _std.compile_path = saved


if __name__ == "__main__":
    sys.exit(int(not main()))
