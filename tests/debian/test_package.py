# SPDX-License-Identifier: MIT
"""The Debian package (issue 7, section 1): it builds with dpkg-buildpackage
from a copy of the tree, lintian finds no error and no warning, and the
.deb holds what it must: the binaries, the systemd units, the man pages, a
conffile that lists every configuration key the daemon accepts, a working
bash completion and maintainer scripts that make the worker user and the
directories and start nothing but the socket.

Installing the package (and running its maintainer scripts for real) is the
chroot test's part."""

import os
import re
import subprocess
import time

import pytest

from conftest import CLEAN_PATH, SRCDIR

PACKAGE_FILES = [
    "usr/sbin/pycqueued",
    "usr/bin/pycqueue",
    "lib/systemd/system/pycqueued.socket",
    "lib/systemd/system/pycqueued.service",
    "usr/share/man/man1/pycqueue.1.gz",
    "usr/share/man/man8/pycqueued.8.gz",
    "usr/share/man/man1/pycqueue-py3compile.1.gz",
    "etc/pycqueue/pycqueued.conf",
    "usr/share/bash-completion/completions/pycqueue",
    "usr/share/doc/pycqueue/copyright",
    "usr/share/doc/pycqueue/changelog.gz",
    "usr/share/doc/pycqueue/README.Debian",
    "usr/bin/py3compile",
    "usr/bin/py3clean",
]
# Debian's tools the package diverts (debian/pycqueue.preinst) and ships its
# front-ends in place of.
DIVERTED = ["py3compile", "py3clean"]
CONFFILE = "/etc/pycqueue/pycqueued.conf"
VERBS = ["compile", "wait", "status", "why", "history", "verify", "repair", "clean", "audit"]


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs).stdout


# --- the build ------------------------------------------------------------------

def test_build_leaves_source_tree_alone(debian_build):
    assert debian_build.source_state_after == debian_build.source_state_before


def test_build_makes_the_packages(debian_build):
    assert "pycqueue" in debian_build.debs
    version = run(["dpkg-deb", "-f", debian_build.deb(), "Version"]).strip()
    changelog = run(["dpkg-parsechangelog", "-S", "Version"], cwd=os.path.join(SRCDIR))
    assert version == changelog.strip()


def test_lintian_finds_no_error_or_warning(debian_build):
    r = subprocess.run(["lintian", "--display-level", ">=warning", debian_build.changes],
                       capture_output=True, text=True)
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert tags == [], "lintian:\n%s%s" % (r.stdout, r.stderr)
    # Nothing else stopped lintian (an unreadable .changes, a crash).
    assert r.returncode == 0, r.stdout + r.stderr


# --- the contents -----------------------------------------------------------------

def test_package_ships_its_files(debian_build):
    listing = run(["dpkg-deb", "-c", debian_build.deb()])
    paths = {line.split()[5].lstrip(".").lstrip("/") for line in listing.splitlines()}
    # dh_compress compresses a document over 4 KiB (README.Debian).
    missing = [p for p in PACKAGE_FILES if p not in paths and p + ".gz" not in paths]
    assert missing == []


PYTHON_PACKAGE_FILES = [
    "usr/lib/python3/dist-packages/pycqueue/__init__.py",
    "usr/lib/python3/dist-packages/pycqueue/_client.py",
    "usr/lib/python3/dist-packages/pycqueue/_engine.py",
    "usr/lib/python3/dist-packages/pycqueue/py_compile.py",
    "usr/lib/python3/dist-packages/pycqueue/compileall.py",
    "usr/share/man/man7/pycqueue-python.7.gz",
]


def test_python_package_ships_the_module(debian_build):
    """python3-pycqueue: the pure-Python module, for every architecture,
    and nothing of the daemon's."""
    deb = debian_build.deb("python3-pycqueue")
    assert run(["dpkg-deb", "-f", deb, "Architecture"]).strip() == "all"
    assert "python3" in run(["dpkg-deb", "-f", deb, "Depends"])
    listing = run(["dpkg-deb", "-c", deb])
    paths = {line.split()[5].lstrip(".").lstrip("/") for line in listing.splitlines()}
    assert [p for p in PYTHON_PACKAGE_FILES if p not in paths] == []
    assert not any(p.startswith(("usr/sbin", "usr/bin")) for p in paths)
    ours = {line.split()[5].lstrip(".").lstrip("/") for line in run(["dpkg-deb", "-c", debian_build.deb()]).splitlines()}
    assert not any("dist-packages" in p for p in ours)


def test_no_file_belongs_to_another_package(debian_build):
    """Unpacking must not overwrite another package's file (dpkg refuses it):
    none of ours may be one that an installed package owns already, like
    python3-minimal's py3compile(1) — except the tools the preinst diverts
    first (dpkg then unpacks ours beside the renamed original)."""
    listing = run(["dpkg-deb", "-c", debian_build.deb()])
    paths = [line.split()[5].lstrip(".") for line in listing.splitlines() if not line.startswith("d")]
    diverted = {"/usr/bin/" + name for name in DIVERTED}
    owned = []
    for path in paths:
        if path in diverted:
            continue
        p = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
        if p.returncode == 0:
            owned.append(p.stdout.strip())
    assert owned == [], "files another package owns:\n%s" % "\n".join(owned)


def test_binaries_are_executable(unpacked):
    for path in ("usr/sbin/pycqueued", "usr/bin/pycqueue"):
        out = subprocess.run([os.path.join(unpacked, path), "--version"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "0.1.0" in out.stdout


def test_daemon_paths_are_debians(unpacked):
    # The paths configure compiles in: /etc, /var/lib and the units' sbin.
    daemon = open(os.path.join(unpacked, "usr/sbin/pycqueued"), "rb").read()
    assert b"/etc/pycqueue/pycqueued.conf" in daemon
    assert b"/var/lib/pycqueue" in daemon
    unit = open(os.path.join(unpacked, "lib/systemd/system/pycqueued.service")).read()
    assert "ExecStart=/usr/sbin/pycqueued " in unit
    assert "StateDirectory=pycqueue" in unit and "CacheDirectory=pycqueue" in unit


def test_conffile_is_registered(unpacked):
    conffiles = open(os.path.join(unpacked, "DEBIAN", "conffiles")).read().split()
    assert conffiles == [CONFFILE]


def test_depends_on_what_the_scripts_use(debian_build):
    depends = run(["dpkg-deb", "-f", debian_build.deb(), "Depends"])
    names = {d.strip().split()[0] for d in depends.split(",")}
    assert {"adduser", "python3", "libsystemd0", "libsqlite3-0"} <= names


# --- the configuration file -------------------------------------------------------

def config_keys():
    """Every key daemon/config.c's config_set() accepts."""
    source = open(os.path.join(SRCDIR, "daemon", "config.c")).read()
    body = source[source.index("int config_set("):]
    body = body[:body.index("\n}\n")]
    return set(re.findall(r'strcmp\(key, "([A-Za-z_]+)"\) == 0', body))


def conffile_entries(text):
    """{key: value} of the commented-out "#key = value" lines."""
    return dict(re.findall(r"^#([A-Za-z_]+) = ?(.*)$", text, re.M))


def test_conffile_lists_every_key_commented_out(unpacked):
    text = open(os.path.join(unpacked, CONFFILE.lstrip("/"))).read()
    entries = conffile_entries(text)
    keys = config_keys()
    assert len(keys) > 20, keys  # the parse of config.c found them
    # audit_roots is the other spelling of AuditRoots, named in its comment.
    assert set(entries) | {"audit_roots"} == keys
    assert "Also spelled audit_roots" in text
    # Nothing is set: every line is a comment or blank.
    assert all(not line.strip() or line.lstrip()[0] in "#;" for line in text.splitlines())
    # Each entry has a one-line explanation right above it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^#[A-Za-z_]+ = ?", line):
            assert lines[i - 1].startswith("# "), "no explanation above %r" % line


def man_items(section):
    """{key: text} of the .TP items of a man page section, roff macros and
    line breaks flattened to plain words."""
    items = {}
    for item in section.split(".TP\n")[1:]:
        m = re.match(r"^\.B[IR]? \"?([A-Za-z_]+)", item)
        if m:
            text = re.sub(r"^\.[A-Z]+ ", "", item, flags=re.M).replace("\\-", "-").replace('"', "")
            items[m.group(1)] = " ".join(text.split())
    return items


def test_conffile_defaults_match_the_man_page(unpacked):
    text = open(os.path.join(unpacked, CONFFILE.lstrip("/"))).read()
    man = open(os.path.join(SRCDIR, "doc", "pycqueued.8")).read()
    items = man_items(man[man.index(".SH CONFIGURATION"):man.index(".SH AUTHORISATION")])
    for key, value in conffile_entries(text).items():
        assert key in items, "%s is not in pycqueued(8), CONFIGURATION" % key
        if key in ("workers", "AuditRoots", "interpreters"):
            continue  # no literal default: computed, or off when absent
        assert re.search(r"default:? %s\b|%s \(the default\)" % (re.escape(value), re.escape(value)),
                         items[key]), "%s = %s, but pycqueued(8) says: %s" % (key, value, items[key])


def test_daemon_accepts_every_key_uncommented(unpacked, tmp_path):
    text = open(os.path.join(unpacked, CONFFILE.lstrip("/"))).read()
    conf = tmp_path / "pycqueued.conf"
    text = re.sub(r"^#([A-Za-z_]+ =)", r"\1", text, flags=re.M)
    # Every key stays; the cache is the test's own, not the machine's.
    assert re.search(r"^cache_directory = ", text, flags=re.M)
    text = re.sub(r"^cache_directory = .*$", "cache_directory = %s" % (tmp_path / "cache"), text, flags=re.M)
    conf.write_text(text)
    # The audit would mark /usr with fanotify; whether that works depends on
    # the machine, not on the file. Its value is parsed all the same.
    sock = tmp_path / "socket"
    proc = subprocess.Popen([os.path.join(unpacked, "usr/sbin/pycqueued"), "--config=%s" % conf,
                             "--socket=%s" % sock, "--state-dir=%s" % (tmp_path / "state")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(200):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "pycqueued refused the configuration:\n" + proc.stdout.read()
        assert sock.exists()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


# --- bash completion --------------------------------------------------------------

# Stand-ins for the bash-completion functions the script uses, so that the
# test needs no bash-completion package: the same variables, the same
# --opt=value split.
COMPLETION_HARNESS = r'''
_init_completion() {
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
        cur=${words[cword]}; prev=${words[cword-1]}; split=false
        if [[ $cur == --*=* ]]; then prev=${cur%%=*}; cur=${cur#*=}; split=true; fi
}
_filedir() { COMPREPLY=("<files${1:+ $1}>"); }
compopt() { :; }
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_pycqueue
printf '%s\n' "${COMPREPLY[@]}"
'''


def complete(unpacked, *words):
    script = os.path.join(unpacked, "usr/share/bash-completion/completions/pycqueue")
    out = run(["bash", "-c", COMPLETION_HARNESS, "harness", script, "pycqueue", *words])
    return sorted(line for line in out.splitlines() if line)


def test_completion_is_valid_bash(unpacked):
    run(["bash", "-n", os.path.join(unpacked, "usr/share/bash-completion/completions/pycqueue")])


def test_completion_offers_verbs_and_global_options(unpacked):
    assert complete(unpacked, "") == sorted(VERBS)
    assert complete(unpacked, "ve") == ["verify"]
    assert "--no-autostart" in complete(unpacked, "--")
    assert "--socket=" in complete(unpacked, "--")
    # The verb is found after a global option that takes a value.
    assert complete(unpacked, "--socket", "/run/x", "status", "--") == \
        sorted(set(complete(unpacked, "status", "--")))


def test_completion_offers_each_verbs_options(unpacked):
    client = os.path.join(unpacked, "usr/bin/pycqueue")
    for verb in VERBS:
        help_text = run([client, verb, "--help"])
        # Options as the help lists them: "  -f, --force", "      --python=INTERP".
        options = set()
        for line in help_text.splitlines():
            m = re.match(r"^\s+(?:-\w(?:,| |$)\s*)?(--[a-z-]+=?)", line)
            if m:
                options.add(m.group(1))
        assert options, verb
        offered = set(complete(unpacked, verb, "--"))
        assert options - offered == set(), "%s: not completed" % verb


def test_completion_offers_option_values(unpacked):
    modes = ["checked-hash", "timestamp", "unchecked-hash"]
    assert complete(unpacked, "compile", "--invalidation-mode=") == modes
    assert complete(unpacked, "compile", "--invalidation-mode", "un") == ["unchecked-hash"]
    assert complete(unpacked, "compile", "-O", "") == ["0", "1", "2"]
    assert complete(unpacked, "compile", "--root=") == ["<files -d>"]
    assert complete(unpacked, "compile", "-f", "") == ["<files>"]
    assert complete(unpacked, "status", "") == []
    assert complete(unpacked, "history", "--since", "") == []


# --- maintainer scripts -----------------------------------------------------------

def script(unpacked, name):
    return open(os.path.join(unpacked, "DEBIAN", name)).read()


def test_maintainer_scripts_are_valid_sh(unpacked):
    for name in ("preinst", "postinst", "postrm", "prerm"):
        run(["sh", "-n", os.path.join(unpacked, "DEBIAN", name)])


def test_postinst_makes_worker_user_and_directories(unpacked):
    postinst = script(unpacked, "postinst")
    assert re.search(r"adduser --system --group --no-create-home --home /nonexistent\b.*_pycqueue",
                     postinst.replace("\\\n", " "))
    assert "install -d -m 0700 /var/lib/pycqueue /var/cache/pycqueue" in postinst
    # The user the package makes is the one the daemon takes by default.
    header = open(os.path.join(SRCDIR, "daemon", "sandbox", "workeruser.h")).read()
    assert '#define WORKER_USER_DEFAULT "_pycqueue"' in header


def test_postinst_starts_only_the_socket_and_only_under_systemd(unpacked):
    postinst = script(unpacked, "postinst")
    assert "deb-systemd-helper enable 'pycqueued.socket'" in postinst
    assert "deb-systemd-invoke start 'pycqueued.socket'" in postinst
    # The service is only ever restarted if it runs, after an upgrade.
    assert re.findall(r"deb-systemd-invoke \S+ 'pycqueued.service'", postinst) == \
        ["deb-systemd-invoke try-restart 'pycqueued.service'"]
    assert "enable 'pycqueued.service'" not in postinst
    # Every start goes through deb-systemd-invoke (policy-rc.d) and only
    # where systemd runs.
    assert "systemctl start" not in postinst and "systemctl restart" not in postinst
    for block in re.findall(r"if .*\n(?:.*\n)*?.*deb-systemd-invoke.*\n", postinst):
        assert "/run/systemd/system" in block


def test_purge_removes_state_and_cache(unpacked):
    postrm = script(unpacked, "postrm")
    purge = postrm[postrm.index("purge)"):]
    assert "rm -rf /var/lib/pycqueue /var/cache/pycqueue" in purge[:purge.index(";;")]
    assert "deb-systemd-helper purge 'pycqueued.socket'" in postrm


# --- diversions and triggers (issue 7, sections 2 and 3) -------------------------

def test_frontends_shipped_in_place_of_debians(unpacked):
    """/usr/bin/py3compile and py3clean are the front-ends, installed in
    $(pkglibexecdir); pycompile is not taken over (bookworm ships none)."""
    for name in DIVERTED:
        link = os.path.join(unpacked, "usr/bin", name)
        assert os.path.islink(link), name
        assert os.path.normpath(os.path.join(os.path.dirname("/usr/bin/x"), os.readlink(link))) == \
            "/usr/libexec/pycqueue/" + name
        assert os.path.exists(os.path.join(unpacked, "usr/libexec/pycqueue", name))
    assert not os.path.lexists(os.path.join(unpacked, "usr/bin/pycompile"))


def test_divert_names_agree_with_the_frontend(unpacked):
    """The preinst diverts NAME to NAME.real, the postrm removes exactly
    that, and the front-end falls back on /usr/bin/NAME.real."""
    preinst, postrm = script(unpacked, "preinst"), script(unpacked, "postrm")
    add = 'dpkg-divert --package pycqueue --rename --divert "/usr/bin/$1.real" --add "/usr/bin/$1"'
    remove = 'dpkg-divert --package pycqueue --rename --divert "/usr/bin/$1.real" --remove "/usr/bin/$1"'
    assert add in preinst and remove in postrm
    for name in DIVERTED:
        assert "divert %s\n" % name in preinst
        assert "undivert %s\n" % name in postrm
    frontend = open(os.path.join(SRCDIR, "client", "frontend", "frontend.c")).read()
    assert '"/usr/bin/%s.real"' in frontend


def fake_root(tmp_path):
    """A root for dpkg-divert ($DPKG_ROOT) with Debian's two tools in it."""
    root = tmp_path / "root"
    admin = root / "var/lib/dpkg"
    (admin / "info").mkdir(parents=True)
    (admin / "updates").mkdir()
    (admin / "status").write_text("")
    (admin / "diversions").write_text("")
    (root / "usr/bin").mkdir(parents=True)
    originals = {}
    for name in DIVERTED:
        data = ("#! /usr/bin/python3\n# Debian's %s\n" % name).encode() + bytes(range(256))
        (root / "usr/bin" / name).write_bytes(data)
        (root / "usr/bin" / name).chmod(0o755)
        originals[name] = data
    env = dict(os.environ, DPKG_ROOT=str(root), DPKG_ADMINDIR=str(admin), PATH=CLEAN_PATH)
    return root, env, originals


def run_script(name, args, env):
    """The source tree's maintainer script (its #DEBHELPER# is a comment:
    the debhelper parts are not run on the build machine)."""
    return subprocess.run(["sh", "-e", os.path.join(SRCDIR, "debian", "pycqueue." + name), *args],
                          capture_output=True, text=True, env=env)


def test_diversion_round_trip_restores_the_originals(tmp_path):
    """preinst install renames Debian's tools to NAME.real; postrm remove
    (after dpkg removed our links) brings them back byte for byte, and no
    diversion is left."""
    root, env, originals = fake_root(tmp_path)
    p = run_script("preinst", ["install"], env)
    assert p.returncode == 0, p.stdout + p.stderr
    for name, data in originals.items():
        assert not os.path.lexists(root / "usr/bin" / name)
        assert (root / "usr/bin" / (name + ".real")).read_bytes() == data
    listed = run(["dpkg-divert", "--list", "*"], env=env)
    assert sorted(listed.splitlines()) == sorted(
        "diversion of /usr/bin/%s to /usr/bin/%s.real by pycqueue" % (n, n) for n in DIVERTED)
    # An upgrade adds nothing twice.
    assert run_script("preinst", ["upgrade", "0.1.0"], env).returncode == 0
    assert len(run(["dpkg-divert", "--list", "*"], env=env).splitlines()) == len(DIVERTED)
    # An upgrade's postrm keeps them.
    assert run_script("postrm", ["upgrade", "0.1.0"], env).returncode == 0
    assert len(run(["dpkg-divert", "--list", "*"], env=env).splitlines()) == len(DIVERTED)

    p = run_script("postrm", ["remove"], env)
    assert p.returncode == 0, p.stdout + p.stderr
    for name, data in originals.items():
        assert (root / "usr/bin" / name).read_bytes() == data
        assert os.stat(root / "usr/bin" / name).st_mode & 0o777 == 0o755
        assert not os.path.lexists(root / "usr/bin" / (name + ".real"))
    assert run(["dpkg-divert", "--list", "*"], env=env) == ""


def test_aborted_install_and_old_upgrade_undivert(tmp_path):
    root, env, originals = fake_root(tmp_path)
    for args in (["abort-install"], ["abort-upgrade", "0.0.9"]):
        assert run_script("preinst", ["install"], env).returncode == 0
        p = run_script("postrm", args, env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert run(["dpkg-divert", "--list", "*"], env=env) == "", args
        for name, data in originals.items():
            assert (root / "usr/bin" / name).read_bytes() == data
    # Back to a version that diverts itself: the diversions stay.
    assert run_script("preinst", ["install"], env).returncode == 0
    assert run_script("postrm", ["abort-upgrade", "0.1.0"], env).returncode == 0
    assert len(run(["dpkg-divert", "--list", "*"], env=env).splitlines()) == len(DIVERTED)


def test_triggers_file(unpacked):
    lines = [line.split("#")[0].strip() for line in script(unpacked, "triggers").splitlines()]
    directives = [line for line in lines if line]
    # Only noawait interests: no package ever waits for pycqueue's trigger.
    assert all(d.startswith("interest-noawait ") for d in directives), directives
    names = [d.split()[1] for d in directives]
    assert names[0] == "pycqueue"
    assert "/usr/lib/python3/dist-packages" in names and "/usr/lib/python3.11" in names
    assert all(n == "pycqueue" or re.fullmatch(r"/usr/lib/python3(/dist-packages|\.\d+)", n) for n in names)


FAKE_PYCQUEUE = """#!/bin/sh
echo "$*" >> "$PYCQ_CALLS"
case "$*" in
*"wait --failures"*) echo "/srv/x.py:3: SyntaxError: bad" >&2; exit "${WAIT_EXIT:-0}" ;;
*repair*) exit "${REPAIR_EXIT:-0}" ;;
esac
"""


def triggered(tmp_path, names, **exits):
    """Runs the source tree's postinst `triggered NAMES` with a fake pycqueue
    that records its calls; returns (process, calls)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "pycqueue"
    fake.write_text(FAKE_PYCQUEUE)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    if calls.exists():
        calls.unlink()
    env = dict(os.environ, PATH=str(bindir) + ":" + CLEAN_PATH, PYCQ_CALLS=str(calls))
    env.update({k: str(v) for k, v in exits.items()})
    p = subprocess.run(["sh", os.path.join(SRCDIR, "debian", "pycqueue.postinst"), "triggered", names],
                       capture_output=True, text=True, env=env, timeout=60)
    return p, calls.read_text().splitlines() if calls.exists() else []


def test_triggered_flushes_and_reports(tmp_path):
    p, calls = triggered(tmp_path, "pycqueue", WAIT_EXIT=1)
    assert calls == ["wait --failures"]
    assert p.returncode == 1
    assert "/srv/x.py:3: SyntaxError: bad" in p.stderr
    p, calls = triggered(tmp_path, "pycqueue", WAIT_EXIT=0)
    assert p.returncode == 0 and calls == ["wait --failures"]


def test_triggered_never_fails_for_an_unreachable_daemon(tmp_path):
    p, _ = triggered(tmp_path, "pycqueue", WAIT_EXIT=3)
    assert p.returncode == 0 and "cannot be reached or started" in p.stderr
    p, _ = triggered(tmp_path, "/usr/lib/python3/dist-packages", REPAIR_EXIT=3)
    assert p.returncode == 0 and "cannot be reached or started" in p.stderr
    p, _ = triggered(tmp_path, "/usr/lib/python3/dist-packages", REPAIR_EXIT=1)
    assert p.returncode == 0 and "could not be repaired" in p.stderr


def test_triggered_repairs_the_directories(tmp_path):
    existing = [d for d in ("/usr/lib/python3/dist-packages", "/usr/lib/python3.11") if os.path.isdir(d)]
    names = " ".join(["pycqueue", *existing, "/usr/lib/python3.99"])
    p, calls = triggered(tmp_path, names)
    assert p.returncode == 0, p.stderr
    # The flush first, then one repair of the directories that exist.
    assert calls == ["wait --failures", "--quiet repair " + " ".join(existing)]
    # A file trigger alone does not flush.
    p, calls = triggered(tmp_path, existing[0])
    assert calls == ["--quiet repair " + existing[0]]


def test_configure_flushes_only_a_running_daemon(unpacked):
    postinst = script(unpacked, "postinst")
    configure = postinst[postinst.index("\nconfigure)"):]
    assert "flush_queued --no-autostart" in configure[:configure.index(";;")]
