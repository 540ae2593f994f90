# SPDX-License-Identifier: MIT
"""An installer's day (issue 8, sections 1, 2 and 4): a bookworm target laid
down under a directory, pycqueue's .deb installed in it, and one pycqueued
running on the machine (built from this tree, as root) that compiles the
target both from outside and for the target's own front-ends.

The scenario, one module-scoped setup:
  1. the target is unpacked from the cached base of chroot.py (no network
     on a rerun) and pycqueue's .debs are installed in it;
  2. a pycqueued on the machine listens in a directory of the test's that
     is bind-mounted at the target's /run/pycqueue, so that every client
     inside reaches it, as an installer's target would;
  3. apt-get installs the python3-* set inside the target (dpkg runs the
     postinsts, whose py3compile queues its work and triggers pycqueue's
     flush, with the deferral of maintainer scripts as in production),
     while on the machine `pycqueue compile --root=TARGET` walks the
     target's Python directories again and again until dpkg is done, and
     once more afterwards.
The tests then check what an installer needs: every file compiled once,
every .pyc valid and equal to what the target's own compileall writes,
nothing written outside the target, workers run inside it, and `why` names
both kinds of requester. The chroot-client tests after them (section 1)
use the same target and daemon: paths resolve inside the target, symlinks
as the chroot resolves them, escapes are refused, and the target's
interpreter compiles.

Before any client inside the target is let near the daemon, a probe checks
that the daemon resolves a chroot client's paths inside its root: a daemon
without that support would compile the machine's files of the same name.
Without it every test here fails at setup, which is expected until the
daemon's root support has landed.

Runs as root, like the rest of tests/debian; skipped as the chroot tests
are (PYCQUEUE_NO_CHROOT=1, no mmdebstrap and no cached base)."""

import collections
import glob
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

import chroot as chrootlib

DIST_PACKAGES = "/usr/lib/python3/dist-packages"
# A package excluded from the --root walk (a -x regex), so that its files
# are compiled by its postinst's py3compile whatever the timing.
POSTINST_PACKAGE = "python3-sqlalchemy"
POSTINST_REGEX = "/dist-packages/sqlalchemy/"
POSTINST_FILE = DIST_PACKAGES + "/sqlalchemy/__init__.py"
# Files no package owns, so that only the --root walk compiles them.
ROOT_ONLY_DIR = DIST_PACKAGES + "/pycq_installer_only"
ROOT_ONLY_FILE = ROOT_ONLY_DIR + "/mod.py"
# The files of the setup's probe (see require_root_support).
PROBE_DIR = "/opt/pycq-installer-probe"
CLIENT_TIMEOUT = 600
SOCKET_WAIT = 15
TIMINGS = {}


def report_timing(name, seconds):
    TIMINGS[name] = round(seconds, 1)
    print("installer timing: %s %.1f s" % (name, seconds))


def text_of(r):
    return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (r.returncode, r.stdout[-4000:], r.stderr[-4000:])


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------- the daemon on the machine


def host_binaries(unpacked):
    """pycqueued and pycqueue for the machine: $PYCQUEUED and $PYCQUEUE when
    both are set (a build directory), else the ones of the .deb under test,
    unpacked (the same build the target runs)."""
    if os.environ.get("PYCQUEUED") and os.environ.get("PYCQUEUE"):
        return os.environ["PYCQUEUED"], os.environ["PYCQUEUE"]
    return os.path.join(unpacked, "usr/sbin/pycqueued"), os.path.join(unpacked, "usr/bin/pycqueue")


class HostDaemon:
    """One pycqueued on the machine, as root, whose socket is @base/run/socket:
    the directory is bound into the target at /run/pycqueue."""

    def __init__(self, base, pycqueued, pycqueue):
        self.pycqueued, self.pycqueue = pycqueued, pycqueue
        self.sockdir = os.path.join(base, "run")
        self.socket = os.path.join(self.sockdir, "socket")
        self.state_dir = os.path.join(base, "state")
        self.config = os.path.join(base, "pycqueued.conf")
        self.log_path = os.path.join(base, "pycqueued.log")
        self.proc = None
        os.makedirs(self.sockdir)
        os.chmod(self.sockdir, 0o755)
        with open(self.config, "w") as f:
            # Its own content cache: nothing of the machine's is used.
            f.write("cache_directory = %s\n" % os.path.join(base, "cache"))

    @property
    def db(self):
        return os.path.join(self.state_dir, "provenance.db")

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.pycqueued, "--socket=" + self.socket,
                                          "--state-dir=" + self.state_dir, "--config=" + self.config],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=chrootlib._clean_env(), cwd="/")
        deadline = time.monotonic() + SOCKET_WAIT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("pycqueued exited with %d:\n%s" % (self.proc.returncode, self.log_text()))
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("pycqueued did not listen on %s:\n%s" % (self.socket, self.log_text()))
                time.sleep(0.05)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def client(self, *args, timeout=CLIENT_TIMEOUT):
        """The machine's pycqueue (never autostarting) with @args."""
        return subprocess.run([self.pycqueue, "--socket=" + self.socket, "--no-autostart"] + list(args),
                              env=chrootlib._clean_env(), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=timeout)

    def descendants(self):
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
        return out


# ---------------------------------------------------------------- what the daemon recorded


Job = collections.namedtuple("Job", "target inside outcome pyc_sha256 opt_level interpreter "
                                    "tool cmdline package dpkg_script root")
REPAIR_TOOL = "pycqueued (repair)"


def inside_root(path, root):
    """@path as seen inside @root, whether it is recorded that way or as
    the machine's path ROOT/PATH."""
    if path and root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")):]
    return path
COMPILED = 0


def provenance_jobs(db, target_root):
    """Every job row of the daemon's provenance database (opened read-only),
    with its request and interpreter. `target` is the host path of the
    .pyc; `inside` the path as seen inside @target_root, or None when the
    target is not inside it."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        columns = {row[1] for row in con.execute("PRAGMA table_info(requests)")}
        root = "r.root" if "root" in columns else "NULL"
        rows = con.execute(
            "SELECT j.target, j.outcome, j.pyc_sha256, j.opt_level, i.path, r.tool, r.cmdline, r.package,"
            " r.dpkg_script, %s FROM jobs j LEFT JOIN requests r ON r.id = j.request_id"
            " LEFT JOIN interpreters i ON i.id = j.interpreter_id ORDER BY j.id" % root).fetchall()
    finally:
        con.close()
    jobs = []
    for target, outcome, pyc_sha, opt, interp, tool, cmdline, package, script, root in rows:
        # A rooted job's target may be recorded as the path inside its root
        # or as the host path; both are normalized here.
        host = target
        if root and not (target == root or target.startswith(root.rstrip("/") + "/")):
            host = os.path.join(root, target.lstrip("/"))
        inside = None
        if host.startswith(target_root + "/"):
            inside = host[len(target_root):]
        jobs.append(Job(host, inside, outcome, pyc_sha.hex() if pyc_sha else None, opt, interp,
                        tool, cmdline or "", package, script, root))
    return jobs


def provenance_requests(db):
    """(tool, dpkg_script, package) of every request the daemon recorded."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute("SELECT tool, dpkg_script, package FROM requests").fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------- the machine's trees


def host_pyc_snapshot():
    """Every __pycache__ directory and its entries under the machine's
    /usr/lib/python3*: {path: (inode, size, mtime_ns, ctime_ns)}."""
    snap = {}
    for top in sorted(glob.glob("/usr/lib/python3*")):
        for d, dirs, files in os.walk(top):
            if os.path.basename(d) != "__pycache__":
                continue
            for path in [d] + [os.path.join(d, n) for n in files]:
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                snap[path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return snap


# ---------------------------------------------------------------- the scenario


class Scenario:
    def __init__(self, base, target, daemon):
        self.base, self.target, self.daemon = base, target, daemon
        self.dirs = []
        self.root_runs = []  # (during dpkg?, CompletedProcess)
        self.apt = None
        self.host_before = self.host_after = None
        self.seen = set()  # (pid, root, exe) of the daemon's descendants, sampled
        self.inside_daemons = set()  # pycqueued processes seen inside the target
        self.state = None
        self.jobs = None
        self.cache_tag = None

    def jobs_now(self):
        # A query writes out the records the daemon still holds in memory.
        r = self.daemon.client("history", "--limit=1")
        assert r.returncode == 0, "pycqueue history: %s" % text_of(r)
        return provenance_jobs(self.daemon.db, self.target.path)


def clear_run_dir(target):
    """Empties the target's /run/pycqueue (the socket of a daemon the
    pycqueue install autostarted there, now killed)."""
    d = target.host_path("/run/pycqueue")
    if os.path.isdir(d):
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))


def require_root_support(s):
    """Fails the setup unless the daemon resolves requests in their root: a
    file that exists only inside the target is compiled there, once from
    inside (a chroot client) and once from outside (--root). A daemon that
    resolved them on the machine finds no such file and writes nothing."""
    t = s.target
    probe_dir = PROBE_DIR
    assert not os.path.lexists(probe_dir), "the machine has %s; cannot probe" % probe_dir
    t.write(probe_dir + "/inside.py", "X = 1\n")
    t.write(probe_dir + "/outside.py", "X = 2\n")
    problems = []
    r = t.run(["pycqueue", "compile", probe_dir + "/inside.py"], check=False)
    if r.returncode != 0 or not os.path.exists(t.host_path(probe_dir + "/__pycache__/inside.%s.pyc"
                                                           % s.cache_tag)):
        problems.append("a chroot client's compile: %s" % text_of(r))
    r = s.daemon.client("compile", "--root=" + t.path, probe_dir + "/outside.py")
    if r.returncode != 0 or not os.path.exists(t.host_path(probe_dir + "/__pycache__/outside.%s.pyc"
                                                           % s.cache_tag)):
        problems.append("compile --root: %s" % text_of(r))
    if problems:
        pytest.fail("the daemon does not compile inside a target's root (daemon root support missing?)\n"
                    + "\n".join(problems) + "\n--- pycqueued log\n" + s.daemon.log_text())
    subprocess.run(["rm", "-rf", "--one-file-system", t.host_path(probe_dir)], check=True)


def sampler(s, stop):
    """Until @stop is set: the root and executable of every descendant of
    the daemon (its workers, which it starts for a request), and any
    pycqueued running inside the target."""
    while not stop.wait(0.25):
        for pid in s.daemon.descendants():
            try:
                s.seen.add((pid, os.readlink("/proc/%d/root" % pid), os.readlink("/proc/%d/exe" % pid)))
            except OSError:
                pass
        for pid in chrootlib._processes_in(s.target.path):
            try:
                exe = os.readlink("/proc/%d/exe" % pid)
            except OSError:
                continue
            # The machine's daemon forks its workers, which chroot before
            # they exec: only the target's own pycqueued counts.
            if exe.startswith(s.target.path + "/") and os.path.basename(exe).startswith("pycqueued"):
                s.inside_daemons.add((pid, exe))


def run_scenario(s):
    t, d = s.target, s.daemon
    root_args = ["compile", "--root=" + t.path, "-x", POSTINST_REGEX] + s.dirs
    result = {}

    def install():
        try:
            result["apt"] = t.apt(chrootlib.INSTALL + chrootlib.PACKAGES, check=False)
        except BaseException as e:  # reported by the test that reads it
            result["error"] = e

    start = time.monotonic()
    apt = threading.Thread(target=install)
    apt.start()
    while apt.is_alive():
        s.root_runs.append((True, d.client(*root_args)))
        apt.join(timeout=1)
    apt.join()
    report_timing("apt install of the set, with --root compiles beside it (%d of them)"
                  % len(s.root_runs), time.monotonic() - start)
    s.root_runs.append((False, d.client(*root_args)))
    r = d.client("wait")
    assert r.returncode == 0, "pycqueue wait: %s" % text_of(r)
    if "error" in result:
        raise result["error"]
    s.apt = result["apt"][1]
    report_timing("whole scenario", time.monotonic() - start)


@pytest.fixture(scope="module")
def scenario(chroot_base, debian_build, unpacked, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("installer"))
    target = chrootlib.Chroot(os.path.join(base, "target"), chroot_base)
    daemon = HostDaemon(base, *host_binaries(unpacked))
    s = Scenario(base, target, daemon)
    stop = threading.Event()
    watcher = threading.Thread(target=sampler, args=(s, stop), daemon=True)
    start = time.monotonic()
    try:
        target.setup()
        report_timing("unpack the target", time.monotonic() - start)
        # pycqueue only: the front-ends and the trigger are what the
        # scenario needs (python3-pycqueue's modules would be compiled by a
        # daemon inside, before the machine's is reachable).
        seconds, _ = target.install_debs([debian_build.deb("pycqueue")])
        report_timing("apt install of pycqueue's .deb", seconds)
        # A client of the install may have autostarted a daemon inside;
        # from now on only the machine's daemon is to be reached.
        assert target.kill_processes() == set()
        clear_run_dir(target)
        s.cache_tag = target.run(["python3", "-I", "-c", "import sys; print(sys.implementation.cache_tag)"]
                                 ).stdout.strip()
        s.dirs = [DIST_PACKAGES] + sorted("/" + os.path.relpath(p, target.path)
                                          for p in glob.glob(target.host_path("/usr/lib/python3.*")))
        target.write(ROOT_ONLY_DIR + "/__init__.py", "")
        target.write(ROOT_ONLY_FILE, "def installed_by():\n    return 'the installer'\n")
        s.host_before = host_pyc_snapshot()
        daemon.start()
        watcher.start()
        target.bind(daemon.sockdir, "/run/pycqueue")
        require_root_support(s)
        run_scenario(s)
        stop.set()
        watcher.join()
        s.host_after = host_pyc_snapshot()
        s.state = target.pyc_state()
        s.jobs = s.jobs_now()
        kinds = collections.Counter("--root" if is_root_request(s, j) else
                                    "postinst" if is_postinst_request(j) else j.tool for j in writes(s))
        print("installer: %d --root compiles during dpkg; .pyc files written: %s"
              % (sum(1 for during, r in s.root_runs if during), dict(kinds)))
        yield s
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
        daemon.stop()
        target.teardown()
        report_timing("whole module", time.monotonic() - start)
        with open(os.path.join(base, "installer-timings.json"), "w") as f:
            json.dump(TIMINGS, f, indent=1)


def writes(s, jobs=None):
    return [j for j in (s.jobs if jobs is None else jobs) if j.outcome == COMPILED]


def is_root_request(s, j):
    return j.tool == "pycqueue" and ("--root=" + s.target.path) in j.cmdline


def is_postinst_request(j, package=None):
    return j.tool in ("py3compile", "pycompile") and j.dpkg_script == "postinst" and \
        (package is None or j.package == package)


# ---------------------------------------------------------------- the scenario's checks


def test_dpkg_run_succeeds(scenario):
    r = scenario.apt
    assert r.returncode == 0, text_of(r)
    status = scenario.target.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"]
                                 + chrootlib.PACKAGES).stdout
    assert all(line.split()[1] == "ii" for line in status.splitlines()), status


def test_root_compiles_succeed_during_and_after_dpkg(scenario):
    during = [r for d, r in scenario.root_runs if d]
    assert during, "no --root compile ran while dpkg ran"
    bad = [text_of(r) for d, r in scenario.root_runs if r.returncode != 0]
    assert bad == [], "\n\n".join(bad[:3])


def test_front_ends_reached_the_machines_daemon(scenario):
    """No pycqueued ran inside the target during the run, and the daemon
    recorded postinst requests of the packages: their front-ends used the
    bound socket."""
    assert scenario.inside_daemons == set()
    packages = {package for tool, script, package in provenance_requests(scenario.daemon.db)
                if tool in ("py3compile", "pycompile") and script == "postinst"}
    missing = sorted(set(chrootlib.PACKAGES) - packages)
    # Every package of the set has Python files, so each postinst asked.
    assert missing == [], "no request recorded from the postinst of %s" % missing


def test_every_file_compiled_once(scenario):
    s = scenario
    counts = collections.Counter(j.target for j in writes(s))
    twice = {t: n for t, n in counts.items() if n > 1}
    assert twice == {}, "written more than once: %s" % sorted(twice.items())[:20]
    # Every source of dist-packages has its .pyc, and every .pyc there is
    # one the daemon wrote, with the bytes it recorded.
    written = {j.inside: j.pyc_sha256 for j in writes(s) if j.inside}
    host_dist = s.target.host_path(DIST_PACKAGES)
    missing, not_ours = [], []
    for top, dirs, files in os.walk(host_dist):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for n in files:
            if n.endswith(".py"):
                inside = "/" + os.path.relpath(os.path.join(top, "__pycache__", "%s.%s.pyc"
                                                            % (n[:-3], s.cache_tag)), s.target.path)
                if inside not in s.state["pycs"]:
                    missing.append(inside)
    for pyc, sha in s.state["pycs"].items():
        if pyc.startswith(DIST_PACKAGES + "/") and written.get(pyc) != sha:
            not_ours.append((pyc, written.get(pyc), sha))
    assert missing == [], "sources without a .pyc: %s" % missing[:20]
    assert not_ours == [], "a .pyc the daemon did not write as it is: %s" % not_ours[:20]
    assert len(written) > 2000
    # Each write is the --root walk's, a postinst's, or the repair of
    # pycqueue's file trigger (which rewrites the .pyc files of the standard
    # library that Python's own py_compile wrote when the target was made).
    others = sorted((j.inside, j.tool, j.cmdline) for j in writes(s)
                    if not (is_root_request(s, j) or is_postinst_request(j) or j.tool == REPAIR_TOOL)
                    and not (j.inside or "").startswith(PROBE_DIR + "/"))
    assert others == [], others[:20]


def test_every_pyc_is_valid(scenario):
    assert scenario.state["invalid"] == {}
    assert scenario.state["orphans"] == []


def test_nothing_outside_the_target_is_touched(scenario):
    s = scenario
    outside = sorted({j.target for j in s.jobs if j.inside is None})
    assert outside == [], "jobs with targets outside the target: %s" % outside[:20]
    changed = sorted(p for p in set(s.host_before) | set(s.host_after)
                     if s.host_before.get(p) != s.host_after.get(p))
    assert changed == [], "the machine's __pycache__ directories changed: %s" % changed[:20]


def test_workers_ran_inside_the_target(scenario):
    """Every process the daemon ran during the scenario had the target as
    its root, and its executable was the target's interpreter."""
    s = scenario
    daemon_exe = os.path.realpath(s.daemon.pycqueued)
    # A child between fork and exec is still the daemon's executable.
    workers = {(root, exe) for pid, root, exe in s.seen if exe != daemon_exe}
    inside = {(root, exe) for root, exe in workers
              if root == s.target.path and exe.startswith(s.target.path + "/")}
    assert inside, "no worker of the daemon was seen inside the target: %s" % sorted(workers)
    assert sorted(workers - inside) == [], "workers outside the target"
    interpreters = {(inside_root(j.interpreter, j.root), j.root) for j in writes(s)}
    assert {i for i, root in interpreters if not i.startswith("/usr/bin/python3")} == set(), interpreters
    assert {root for i, root in interpreters} == {s.target.path}


def why(s, path, inside):
    """`pycqueue --json why` of the target's @path, from the machine with
    --root (@inside false) or from a client inside the target."""
    if inside:
        r = s.target.run(["pycqueue", "--json", "why", path], check=False)
    else:
        r = s.daemon.client("--json", "why", "--root=" + s.target.path, path)
    assert r.returncode == 0, text_of(r)
    return json.loads(r.stdout), r


@pytest.mark.parametrize("inside", [False, True], ids=["--root", "chroot"])
def test_why_shows_both_kinds_of_requester(scenario, inside):
    s = scenario
    records, r = why(s, POSTINST_FILE, inside)
    assert records, text_of(r)
    rec = records[0]
    assert (rec.get("tool"), rec.get("dpkg_script"), rec.get("package")) == \
        ("py3compile", "postinst", POSTINST_PACKAGE), json.dumps(rec, indent=1)
    assert rec.get("root") == s.target.path, json.dumps(rec, indent=1)
    assert rec.get("target") == os.path.join(os.path.dirname(POSTINST_FILE), "__pycache__",
                                             "__init__.%s.pyc" % s.cache_tag)

    records, r = why(s, ROOT_ONLY_FILE, inside)
    assert records, text_of(r)
    rec = records[0]
    assert rec.get("tool") == "pycqueue" and "--root=" + s.target.path in rec.get("cmdline", ""), \
        json.dumps(rec, indent=1)
    assert rec.get("root") == s.target.path, json.dumps(rec, indent=1)
    # The text form says so too.
    if inside:
        r = s.target.run(["pycqueue", "why", ROOT_ONLY_FILE], check=False)
    else:
        r = s.daemon.client("why", "--root=" + s.target.path, ROOT_ONLY_FILE)
    assert r.returncode == 0, text_of(r)
    assert re.search(r"^\s*root:\s+%s$" % re.escape(s.target.path), r.stdout, re.M), text_of(r)


def test_pycs_are_identical_to_compileall_inside(scenario):
    """Last of the scenario (it rewrites the .pyc files): every .pyc the
    daemon wrote equals what `python3 -m compileall -f` inside the target
    writes at the same place."""
    s = scenario
    ours = {j.inside: j.pyc_sha256 for j in writes(s) if j.inside in s.state["pycs"]}
    assert len(ours) > 2000
    levels = sorted({j.opt_level for j in writes(s)})
    argv = ["python3", "-m", "compileall", "-f", "-q"]
    for level in levels:
        argv += ["-o", str(level)]
    s.target.run(argv + s.dirs, check=False)
    after = s.target.pyc_state(s.dirs)["pycs"]
    differ = sorted(p for p, sha in ours.items() if after.get(p) != sha)
    assert differ == [], "%d of %d differ from compileall's: %s" % (len(differ), len(ours), differ[:20])


# ---------------------------------------------------------------- chroot clients (section 1)


def pyc_of(s, path):
    d, n = os.path.split(path)
    return os.path.join(d, "__pycache__", "%s.%s.pyc" % (n[:-3], s.cache_tag))


def co_filename(s, pyc):
    """The co_filename of the target's @pyc, read inside the target."""
    r = s.target.run(["python3", "-I", "-B", "-c",
                      "import marshal, sys\nwith open(sys.argv[1], 'rb') as f:\n"
                      "    print(marshal.loads(f.read()[16:]).co_filename)", pyc])
    return r.stdout.strip()


def py_compile_inside(s, path):
    """The bytes `python3 -m py_compile PATH` writes inside the target; the
    .pyc there is replaced by them."""
    pyc = s.target.host_path(pyc_of(s, path))
    if os.path.exists(pyc):
        os.unlink(pyc)
    s.target.run(["python3", "-m", "py_compile", path])
    with open(pyc, "rb") as f:
        return f.read()


def test_chroot_client_compiles_inside_its_root(scenario):
    s = scenario
    pkg = DIST_PACKAGES + "/pycq_chroot_client"
    assert not os.path.lexists(pkg), "the machine has %s" % pkg
    s.target.write(pkg + "/__init__.py", "")
    s.target.write(pkg + "/mod.py", "import os\n\ndef where():\n    return os.getcwd()\n")
    r = s.target.run(["pycqueue", "compile", pkg], check=False)
    assert r.returncode == 0, text_of(r)
    assert not os.path.lexists(pkg), "the machine's tree was written"
    for name in ("__init__.py", "mod.py"):
        src = pkg + "/" + name
        pyc = pyc_of(s, src)
        with open(s.target.host_path(pyc), "rb") as f:
            ours = f.read()
        assert co_filename(s, pyc) == src
        assert ours == py_compile_inside(s, src), src
    jobs = [j for j in writes(s, s.jobs_now()) if j.inside and j.inside.startswith(pkg + "/")]
    assert len(jobs) == 2 and all(j.root == s.target.path for j in jobs), jobs


@pytest.mark.parametrize("inside", [False, True], ids=["--root", "chroot"])
def test_absolute_symlinks_resolve_inside_the_target(scenario, inside):
    """/opt/links/etc -> /etc and /opt/links/stdlib -> /usr/lib/python3.X
    point at the target's directories, not the machine's: the files named
    through them exist only in the target, and are compiled there, named
    by their real path inside, as py_compile names them."""
    s = scenario
    stdlib = [d for d in s.dirs if d != DIST_PACKAGES][0]
    links = "/opt/pycq-links-%s" % ("chroot" if inside else "root")
    cases = []
    for link, real_dir in (("etc", "/etc"), ("stdlib", stdlib)):
        name = "pycq_link_%s_%s.py" % (link, "chroot" if inside else "root")
        real = os.path.join(real_dir, name)
        assert not os.path.lexists(real), "the machine has %s" % real
        s.target.write(real, "NAME = %r\n" % name)
        os.makedirs(s.target.host_path(links), exist_ok=True)
        if not os.path.lexists(s.target.host_path(links + "/" + link)):
            os.symlink(real_dir, s.target.host_path(links + "/" + link))
        cases.append((os.path.join(links, link, name), real))
    machine_before = host_pyc_snapshot()
    for via, real in cases:
        if inside:
            r = s.target.run(["pycqueue", "compile", via], check=False)
        else:
            r = s.daemon.client("compile", "--root=" + s.target.path, via)
        assert r.returncode == 0, "%s: %s" % (via, text_of(r))
        pyc = pyc_of(s, real)
        assert os.path.exists(s.target.host_path(pyc)), "%s: no %s in the target" % (via, pyc)
        with open(s.target.host_path(pyc), "rb") as f:
            ours = f.read()
        assert co_filename(s, pyc) == real
        assert ours == py_compile_inside(s, real)
    assert host_pyc_snapshot() == machine_before
    assert not os.path.exists("/etc/__pycache__/" + os.path.basename(pyc_of(s, cases[0][1])))


@pytest.mark.parametrize("inside", [False, True], ids=["--root", "chroot"])
def test_escapes_are_refused(scenario, inside):
    """A `..` above the root and a symlink that climbs out of it both
    reach, on the machine, a file beside the target; each is refused as
    leading out of the root (not clamped at it, as the kernel's chroot
    would), and nothing is written."""
    s = scenario
    outside = os.path.join(s.base, "outside-%s" % ("chroot" if inside else "root"))
    os.makedirs(outside)
    with open(os.path.join(outside, "escape.py"), "w") as f:
        f.write("ESCAPED = True\n")
    name = os.path.basename(outside)
    climb = "/opt/pycq-climb-%s" % ("chroot" if inside else "root")
    # /opt/X -> ../../NAME: from the target's /opt, two levels up is the
    # directory that holds the target, on the machine.
    os.symlink("../../" + name, s.target.host_path(climb))
    depth = len(s.target.path.strip("/").split("/"))
    paths = ["/../" + name + "/escape.py",
             "/usr/" + "../" * (depth + 2) + s.base.lstrip("/") + "/" + name + "/escape.py",
             climb + "/escape.py"]
    results = []
    for path in paths:
        if inside:
            r = s.target.run(["pycqueue", "compile", path], check=False)
        else:
            r = s.daemon.client("compile", "--root=" + s.target.path, path)
        results.append((path, r))
        print("escape %s: exit %d: %s" % (path, r.returncode, r.stderr.strip()))
    assert sorted(os.listdir(outside)) == ["escape.py"], "a .pyc was written outside the target"
    not_refused = [(p, text_of(r)) for p, r in results
                   if r.returncode != 1 or "leads out of the root" not in r.stderr]
    assert not_refused == [], not_refused


@pytest.mark.parametrize("inside", [False, True], ids=["--root", "chroot"])
def test_the_targets_interpreter_compiles(scenario, inside):
    """An interpreter that exists only in the target (a wrapper that leaves
    a mark in the target's /tmp, then runs its python3) is the one named
    by --python: it ran, inside, and the .pyc it made is the target's."""
    s = scenario
    how = "chroot" if inside else "root"
    wrapper = "/usr/local/bin/pycq-marker-python-" + how
    marks = "/tmp/pycq-marks-" + how
    assert not os.path.lexists(wrapper), "the machine has %s" % wrapper
    os.makedirs(s.target.host_path(marks))
    os.chmod(s.target.host_path(marks), 0o1777)
    real = s.target.resolve("/usr/bin/python3")
    # ": >>" makes the mark without writing a byte (workers may run with
    # RLIMIT_FSIZE 0).
    s.target.write(wrapper, "#!/bin/sh\n: >>%s/ran\nexec %s \"$@\"\n" % (marks, real), mode=0o755)
    src = "/opt/pycq-interp-%s/mod.py" % how
    s.target.write(src, "VALUE = 42\n")
    if inside:
        r = s.target.run(["pycqueue", "compile", "--python=" + wrapper, src], check=False)
    else:
        r = s.daemon.client("compile", "--root=" + s.target.path, "--python=" + wrapper, src)
    assert r.returncode == 0, text_of(r)
    assert os.path.exists(s.target.host_path(marks + "/ran")), "the target's wrapper did not run"
    assert not os.path.exists(marks), "a mark on the machine"
    pyc = pyc_of(s, src)
    with open(s.target.host_path(pyc), "rb") as f:
        ours = f.read()
    assert ours == py_compile_inside(s, src)
    jobs = [j for j in writes(s, s.jobs_now()) if j.inside == pyc]
    assert [(inside_root(j.interpreter, j.root), j.root) for j in jobs] == [(wrapper, s.target.path)], jobs
