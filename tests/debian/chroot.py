# SPDX-License-Identifier: MIT
"""Bookworm chroots with real packages from the archive, for the end-to-end
tests (tests/debian/test_chroot.py) and the apt benchmark (bench/apt).

The model: one base tarball, made once by mmdebstrap and kept on the
machine, is unpacked into as many working chroots as a run needs ("stock"
with Debian's own byte-compile tools, "pycqueue" with this tree's .debs
installed); each is thrown away at the end of the run.

- The archive is the machine's own: its apt sources (deb822 files under
  /etc/apt/sources.list.d and the one-line /etc/apt/sources.list) are read
  at run time and mapped onto bookworm, bookworm-updates and
  bookworm-security. No host name lives in the repository.
- The cache (CACHE_DIR, default /var/cache/pycqueue-tests, or
  $PYCQUEUE_TEST_CACHE) holds the base tarball, with apt's package lists so
  that apt inside a chroot needs no `apt-get update`, and a pool of every
  .deb a chroot downloaded. Before each apt run the pool is linked into the
  chroot's /var/cache/apt/archives and afterwards anything new is copied
  back, so a rerun installs from the pool without the network. The base is
  keyed by the sources and the base package list: a changed mirror makes a
  new one. Deleting the directory is always safe; the next run rebuilds it.
- Inside a chroot: /proc, /sys (read-only), a devpts and a tmpfs on
  /dev/shm are mounted, and a policy-rc.d forbids every service start (no
  init runs; pycqueued is started by its client's autostart). Teardown kills
  every process whose root is the chroot (and their descendants), unmounts,
  and deletes the tree without crossing into another file system; it runs
  even when the run failed, and refuses to delete while anything is still
  mounted inside. No directory of the machine is bind-mounted (each mount is
  a new instance), so even a leftover chroot deleted by something else
  cannot take the machine's files with it. The one exception is bind(): a
  directory the test made itself (the socket directory of a daemon on the
  machine, for the installer tests) may be bound into a chroot; it is
  unmounted with the rest, and nothing is deleted while it is.

Everything here runs as root (mounts, chroot)."""

import fcntl
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

SUITE = "bookworm"
CACHE_DIR = os.environ.get("PYCQUEUE_TEST_CACHE") or "/var/cache/pycqueue-tests"
POOL = "archives"
# In the base: what pycqueue needs before it can be installed (its Depends
# on python3 and adduser), so that both chroots start from the same system.
BASE_INCLUDE = ["python3", "adduser"]
# The python3-* set installed with one apt-get install: pure-python and
# compiled modules, small and large (sqlalchemy, pygments, lxml); with their
# dependencies 62 packages, about 20 MB of .debs. All are in bookworm's main.
PACKAGES = [
    "python3-attr", "python3-certifi", "python3-chardet", "python3-charset-normalizer",
    "python3-click", "python3-colorama", "python3-cryptography", "python3-dateutil",
    "python3-distro", "python3-docutils", "python3-idna", "python3-jinja2",
    "python3-jsonschema", "python3-lxml", "python3-mako", "python3-markupsafe",
    "python3-more-itertools", "python3-msgpack", "python3-openssl", "python3-packaging",
    "python3-pkg-resources", "python3-ply", "python3-psutil", "python3-pycparser",
    "python3-pygments", "python3-pyparsing", "python3-pyrsistent", "python3-requests",
    "python3-serial", "python3-setuptools", "python3-simplejson", "python3-six",
    "python3-sqlalchemy", "python3-tabulate", "python3-toml", "python3-tz",
    "python3-urllib3", "python3-wheel", "python3-yaml", "python3-zmq",
]
# Recommends are left out: they would double the run (image libraries,
# ICU, babel's locale data) without adding much Python.
INSTALL = ["install", "--no-install-recommends"]
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MMDEBSTRAP_TIMEOUT = 1800  # seconds; turns a hung download into a failure
APT_TIMEOUT = 1200
SUITE_SUFFIXES = ("", "-updates", "-security")


class ChrootUnavailable(Exception):
    """No chroot can be made here: no mmdebstrap, no usable apt source, or
    the archive cannot be reached and nothing is cached. The tests skip
    with this message."""


def log(msg):
    print("chroot: %s" % msg, flush=True)


# ---------------------------------------------------------------- apt sources


def _deb822_stanzas(text):
    stanza, key = {}, None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
        elif line[0] in " \t" and key:
            stanza[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()


def _one_line_entries(text):
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        options = {}
        if words and words[0].startswith("["):
            opts = []
            while words:
                w = words.pop(0)
                opts.append(w)
                if w.endswith("]"):
                    break
            for opt in " ".join(opts).strip("[]").split():
                if "=" in opt:
                    k, v = opt.split("=", 1)
                    options[k.lower()] = v
        if len(words) >= 3:
            yield {"types": "deb", "uris": words[0], "suites": words[1],
                   "components": " ".join(words[2:]), "signed-by": options.get("signed-by", "")}


def host_apt_entries(etc="/etc/apt"):
    """The machine's binary apt sources as dicts (uris, suites, components,
    signed-by), deb822 and one-line, enabled ones only."""
    entries = []
    for path in sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.sources"))):
        with open(path) as f:
            for s in _deb822_stanzas(f.read()):
                if "deb" in s.get("types", "").split() and s.get("enabled", "yes").lower() != "no":
                    entries.append(s)
    paths = [os.path.join(etc, "sources.list")] + sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.list")))
    for path in paths:
        try:
            with open(path) as f:
                entries += list(_one_line_entries(f.read()))
        except FileNotFoundError:
            pass
    return entries


def bookworm_sources(etc="/etc/apt"):
    """One-line "deb [signed-by=…] URI SUITE main" lines for the chroot:
    each of the machine's Debian sources mapped onto bookworm (its suite's
    codename replaced, keeping -updates and -security; backports, sid and
    experimental left out). Raises ChrootUnavailable when none is left."""
    lines = []
    for e in host_apt_entries(etc):
        if "main" not in e.get("components", "").split():
            continue
        signed_by = e.get("signed-by", "")
        # An inline key block cannot go on one line; apt then falls back to
        # the keyrings mmdebstrap sets up for a Debian suite.
        option = "[signed-by=%s] " % signed_by if signed_by.startswith("/") and os.path.exists(signed_by) else ""
        for uri in e.get("uris", "").split():
            for suite in e.get("suites", "").split():
                if suite in ("sid", "unstable", "experimental", "rc-buggy"):
                    continue
                suffix = "-" + suite.split("-", 1)[1] if "-" in suite else ""
                if suffix not in SUITE_SUFFIXES:
                    continue
                line = "deb %s%s %s%s main" % (option, uri.rstrip("/"), SUITE, suffix)
                if line not in lines:
                    lines.append(line)
    if not any(l.split()[-2] == SUITE for l in lines):
        raise ChrootUnavailable("no Debian apt source on this machine to map onto %s "
                                "(read %s/sources.list and sources.list.d)" % (SUITE, etc))
    return lines


def archive_reachable(lines, timeout=10):
    """True when the first source's Release file answers."""
    words = [w for w in lines[0].split() if not w.startswith("[")]
    url = "%s/dists/%s/InRelease" % (words[1], words[2])
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except Exception:
        return False


# ---------------------------------------------------------------- the cache


def _clean_env(extra=None):
    env = {"PATH": CLEAN_PATH, "LC_ALL": "C.UTF-8", "HOME": "/root",
           "DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}
    env.update(extra or {})
    return env


def base_key(lines):
    h = hashlib.sha256(json.dumps([SUITE, lines, BASE_INCLUDE, os.uname().machine]).encode())
    return h.hexdigest()[:16]


class _Lock:
    """An exclusive flock on CACHE_DIR/lock: two runs (a test run and the
    bench) never build or fill the cache at once."""

    def __init__(self, cache_dir):
        os.makedirs(cache_dir, exist_ok=True)
        self.fd = os.open(os.path.join(cache_dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


README = """This directory is a cache of pycqueue's Debian tests (tests/debian/chroot.py)
and benchmark (bench/apt): a base tarball of a {suite} chroot made by mmdebstrap
from this machine's apt sources, with apt's package lists, and a pool of the
.debs the chroots installed ({pool}/). It only makes reruns fast and
network-free; deleting it is always safe (the next run rebuilds it).
"""


def ensure_base(cache_dir=CACHE_DIR, packages=PACKAGES):
    """Returns the path of the base tarball, making it (and downloading
    @packages into the pool) when it is missing. Raises ChrootUnavailable
    when it is missing and cannot be made."""
    lines = bookworm_sources()
    key = base_key(lines)
    tarball = os.path.join(cache_dir, "%s-%s.tar" % (SUITE, key))
    if os.path.exists(tarball):
        return tarball
    if shutil.which("mmdebstrap", path=CLEAN_PATH) is None:
        raise ChrootUnavailable("mmdebstrap not installed and no cached base in %s" % cache_dir)
    if not archive_reachable(lines):
        raise ChrootUnavailable("the archive (%s) cannot be reached and no cached base in %s"
                                % (lines[0], cache_dir))
    with _Lock(cache_dir):
        if os.path.exists(tarball):
            return tarball
        pool = os.path.join(cache_dir, POOL)
        os.makedirs(pool, exist_ok=True)
        with open(os.path.join(cache_dir, "README"), "w") as f:
            f.write(README.format(suite=SUITE, pool=POOL))
        tmp = tarball + ".tmp"
        # The hooks run on this machine with the chroot's path as $1: the
        # set's .debs (and their dependencies) are downloaded into the
        # chroot's archive cache, emptied first, and copied to the pool
        # before mmdebstrap's cleanup empties it again.
        archives = '"$1"/var/cache/apt/archives'
        hooks = [
            "rm -f %s/*.deb" % archives,
            "chroot \"$1\" apt-get %s --download-only -y -q %s" % (" ".join(INSTALL), " ".join(packages)),
            "cp -n %s/*.deb %s/" % (archives, pool),
        ]
        argv = ["mmdebstrap", "--mode=root", "--variant=apt", "--format=tar",
                "--include=" + ",".join(BASE_INCLUDE),
                "--skip=cleanup/apt/lists",
                "--aptopt=Acquire::Retries \"3\"",
                "--aptopt=Acquire::Languages \"none\""]
        argv += ["--customize-hook=" + h for h in hooks]
        argv += [SUITE, tmp] + lines
        log("making the base chroot (once; cached in %s): %s" % (cache_dir, " ".join(argv)))
        start = time.monotonic()
        r = subprocess.run(argv, env=_clean_env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=MMDEBSTRAP_TIMEOUT)
        if r.returncode != 0:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise RuntimeError("mmdebstrap failed (%d):\n%s" % (r.returncode, r.stderr[-6000:]))
        os.rename(tmp, tarball)
        log("base made in %.0f s: %s" % (time.monotonic() - start, tarball))
    return tarball


# ---------------------------------------------------------------- a chroot


def _mounts_under(root):
    """Mount points at or below @root, deepest first (from mountinfo)."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _processes_in(root):
    """PIDs whose root directory is @root or below it, with every
    descendant of theirs (a sandboxed worker may have a root of its own)."""
    inside, parents = set(), {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            proc_root = os.readlink("/proc/%d/root" % pid)
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if proc_root == root or proc_root.startswith(root + "/"):
            inside.add(pid)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in inside and pid not in inside:
                inside.add(pid)
                grew = True
    inside.discard(os.getpid())
    return inside


class Chroot:
    """A working chroot unpacked from the base tarball at @path (which must
    not exist yet). Use as a context manager, or call setup() and
    teardown()."""

    def __init__(self, path, tarball, cache_dir=CACHE_DIR):
        self.path = os.path.realpath(path)
        self.tarball = tarball
        self.pool = os.path.join(cache_dir, POOL)
        self.mounted = []

    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()

    def host_path(self, path):
        """The chroot's @path as seen from outside."""
        return os.path.join(self.path, path.lstrip("/"))

    def setup(self):
        os.makedirs(self.path)
        subprocess.run(["tar", "-xf", self.tarball, "-C", self.path, "--numeric-owner"], check=True)
        for fstype, point, options in (("proc", "proc", "nosuid,nodev,noexec"),
                                       ("sysfs", "sys", "ro,nosuid,nodev,noexec"),
                                       ("devpts", "dev/pts", "newinstance,ptmxmode=0666,mode=620,gid=5"),
                                       ("tmpfs", "dev/shm", "nosuid,nodev,mode=1777")):
            target = self.host_path(point)
            os.makedirs(target, exist_ok=True)
            subprocess.run(["mount", "-t", fstype, "-o", options, fstype, target], check=True)
            self.mounted.append(target)
        ptmx = self.host_path("dev/ptmx")
        if not os.path.lexists(ptmx):
            os.symlink("pts/ptmx", ptmx)
        for node in ("null", "zero", "full", "random", "urandom", "tty"):
            if not os.path.exists(self.host_path("dev/" + node)):
                raise RuntimeError("the base tarball has no /dev/%s" % node)
        self.write("/usr/sbin/policy-rc.d",
                   "#!/bin/sh\n# No init runs in this chroot: no service may start.\nexit 101\n", mode=0o755)

    def bind(self, host_dir, path):
        """Binds the machine's directory @host_dir (one the test made, never
        a system directory) at the chroot's @path, which is created when
        missing. teardown() unmounts it before anything is deleted."""
        target = self.host_path(path)
        os.makedirs(target, exist_ok=True)
        subprocess.run(["mount", "--bind", host_dir, target], check=True)
        self.mounted.append(target)
        return target

    def unbind(self, path):
        """Undoes bind() at the chroot's @path."""
        target = self.host_path(path)
        subprocess.run(["umount", target], check=True)
        self.mounted.remove(target)

    def kill_processes(self):
        """Kills every process whose root is inside the chroot (and their
        descendants); returns the PIDs that were still there after 5 s."""
        pids = set()
        for _ in range(50):
            pids = _processes_in(self.path)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        return pids

    def teardown(self):
        """Kills what runs inside, unmounts, deletes. Safe to call twice."""
        if not os.path.isdir(self.path):
            return
        self.kill_processes()
        for point in _mounts_under(self.path):
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", point], capture_output=True)
        left = _mounts_under(self.path)
        if left:
            raise RuntimeError("still mounted, not deleting %s: %s" % (self.path, left))
        subprocess.run(["rm", "-rf", "--one-file-system", self.path], check=True)
        self.mounted = []

    # ------------------------------------------------------------ running

    def run(self, argv, check=True, env=None, timeout=APT_TIMEOUT, input=None):
        """Runs @argv inside, in a clean environment (no PYTHON* variable,
        no SOURCE_DATE_EPOCH: they would change what is compiled). Returns
        the CompletedProcess (text); raises with its output when @check and
        it failed."""
        r = subprocess.run(["chroot", self.path] + list(argv), env=_clean_env(env),
                           input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, errors="replace")
        if check and r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, argv, r.stdout, r.stderr)
        return r

    def popen(self, argv, env=None):
        return subprocess.Popen(["chroot", self.path] + list(argv), env=_clean_env(env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace")

    def write(self, path, text, mode=0o644):
        target = self.host_path(path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(text)
        os.chmod(target, mode)

    def resolve(self, path, max_links=40):
        """@path with every symlink resolved as the chroot sees it (an
        absolute link points into the chroot, not at the machine's file),
        as a path inside the chroot."""
        parts = [p for p in path.split("/") if p]
        done = []
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = self.host_path("/" + "/".join(done + [part]))
            if os.path.islink(here):
                max_links -= 1
                if max_links < 0:
                    raise OSError("too many symlinks in %s" % path)
                target = os.readlink(here)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p] + parts
            else:
                done.append(part)
        return "/" + "/".join(done)

    def read_bytes(self, path):
        """The bytes of the chroot's @path (symlinks resolved inside)."""
        with open(self.host_path(self.resolve(path)), "rb") as f:
            return f.read()

    # ------------------------------------------------------------ apt

    def _pool_in(self):
        archives = self.host_path("var/cache/apt/archives")
        for deb in glob.glob(os.path.join(self.pool, "*.deb")):
            dest = os.path.join(archives, os.path.basename(deb))
            if os.path.exists(dest):
                continue
            try:
                os.link(deb, dest)
            except OSError:
                shutil.copy2(deb, dest)

    def _pool_out(self):
        os.makedirs(self.pool, exist_ok=True)
        for deb in glob.glob(self.host_path("var/cache/apt/archives/*.deb")):
            dest = os.path.join(self.pool, os.path.basename(deb))
            if not os.path.exists(dest):
                tmp = dest + ".tmp"
                shutil.copy2(deb, tmp)
                os.rename(tmp, dest)

    def apt(self, args, check=True, env=None):
        """apt-get -y @args inside, with the pool linked into the chroot's
        archive cache (so nothing cached is downloaded) and anything newly
        downloaded copied back. Returns (wall seconds, CompletedProcess)."""
        self._pool_in()
        start = time.monotonic()
        try:
            r = self.run(["apt-get", "-y", "-q", "-o", "Dpkg::Use-Pty=0"] + list(args),
                         check=False, env=env)
        finally:
            wall = time.monotonic() - start
            self._pool_out()
        if check and r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, ["apt-get"] + list(args), r.stdout, r.stderr)
        return wall, r

    def install_debs(self, debs):
        """Installs local .deb files (with their dependencies) by apt."""
        names = []
        for deb in debs:
            dest = self.host_path("tmp/debs/" + os.path.basename(deb))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(deb, dest)
            names.append("/tmp/debs/" + os.path.basename(deb))
        return self.apt(INSTALL + names)

    def package_files(self, package):
        """The paths dpkg lists for @package (installed)."""
        r = self.run(["dpkg-query", "-L", package])
        return [line for line in r.stdout.splitlines() if line.startswith("/")]

    def pyc_state(self, roots=None):
        """One pass inside the chroot, with its own python3 (-B: the
        check writes no bytecode): every .pyc under @roots (default
        /usr/lib/python3* and /usr/share) with its sha256, whether it is
        valid, and whether its source is gone. Returns a dict: pycs
        {path: sha256}, invalid {path: reason}, orphans [path]."""
        if roots is None:
            roots = sorted("/" + os.path.relpath(p, self.path)
                           for p in glob.glob(self.host_path("usr/lib/python3*"))) + ["/usr/share"]
        r = self.run(["/usr/bin/python3", "-I", "-S", "-B", "-c", PYC_CHECK] + list(roots))
        return json.loads(r.stdout)

    def check_pycs(self, paths):
        """The validity check (see PYC_CHECK) of the given .pyc paths:
        {path: reason} of those that are not valid (a missing one is not
        valid)."""
        r = self.run(["/usr/bin/python3", "-I", "-S", "-B", "-c", PYC_CHECK, "--files"],
                     input="\n".join(paths))
        return json.loads(r.stdout)["invalid"]


# Runs inside a chroot (python3 -I -S -B -c). A .pyc is valid when the
# interpreter's importlib would use it: the magic is this interpreter's,
# the flags are known, a timestamp .pyc's header holds its source's mtime
# and size (a hash-based one, the source's hash), and the body unmarshals
# to a code object. Its source is the .py one directory up, named by the
# .pyc's name without the cache tag and optimization (PEP 3147/488).
PYC_CHECK = r'''
import hashlib, json, marshal, os, sys, types
from importlib.util import MAGIC_NUMBER, source_hash, source_from_cache

def source_of(pyc):
    try:
        return source_from_cache(pyc)
    except ValueError:
        return None

def problem(pyc):
    try:
        with open(pyc, "rb") as f:
            data = f.read()
    except OSError as e:
        return "unreadable: %s" % e.strerror
    src = source_of(pyc)
    if src is None:
        return "not a PEP 3147 name"
    if len(data) < 16:
        return "short: %d bytes" % len(data)
    if data[:4] != MAGIC_NUMBER:
        return "magic %s, not %s" % (data[:4].hex(), MAGIC_NUMBER.hex())
    flags = int.from_bytes(data[4:8], "little")
    try:
        st = os.stat(src)
    except OSError:
        return "source gone"
    if flags == 0:
        if int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF:
            return "mtime in header %d, source %d" % (int.from_bytes(data[8:12], "little"), int(st.st_mtime))
        if int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF:
            return "size in header %d, source %d" % (int.from_bytes(data[12:16], "little"), st.st_size)
    elif flags in (1, 3):
        with open(src, "rb") as f:
            if source_hash(f.read()) != data[8:16]:
                return "source hash differs"
    else:
        return "unknown flags %d" % flags
    try:
        code = marshal.loads(data[16:])
    except Exception as e:
        return "does not unmarshal: %s" % e
    if not isinstance(code, types.CodeType):
        return "body is a %s, not code" % type(code).__name__
    return None

out = {"pycs": {}, "invalid": {}, "orphans": []}
if sys.argv[1:] == ["--files"]:
    for pyc in sys.stdin.read().split("\n"):
        if pyc:
            p = problem(pyc) if os.path.exists(pyc) else "missing"
            if p:
                out["invalid"][pyc] = p
else:
    for root in sys.argv[1:]:
        for top, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(".pyc"):
                    continue
                pyc = os.path.join(top, name)
                with open(pyc, "rb") as f:
                    out["pycs"][pyc] = hashlib.sha256(f.read()).hexdigest()
                src = source_of(pyc)
                if src is not None and not os.path.exists(src):
                    out["orphans"].append(pyc)
                    continue
                p = problem(pyc)
                if p:
                    out["invalid"][pyc] = p
json.dump(out, sys.stdout)
'''
