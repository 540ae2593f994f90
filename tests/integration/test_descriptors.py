# SPDX-License-Identifier: MIT
"""Running out of file descriptors (issue 6, finding 8): pycqueued raises its
soft RLIMIT_NOFILE to the hard limit at start, and when accept() fails with
EMFILE the listener pauses instead of spinning on the level-triggered
socket, logging once per pause; once descriptors are free again root is
served."""

import os
import resource
import shutil
import subprocess
import time

import pytest

from pycqtest import (PYCQUEUED, assert_tree_compiled, clean_env, describe, terminate, wait_for_socket,
                      wait_until, write)
from pycqtest import write_daemon_config

NOFILE_MAX = 524288  # the daemon's own bound (daemon/main.c)

# Opens N connections to a socket as whoever runs it, prints how many, and
# holds them until its stdin closes.
HOLDER = r"""
import socket, sys
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    socks.append(s)
print(len(socks), flush=True)
sys.stdin.read()
"""

EMFILE_TEXT = "Too many open files"  # strerror(EMFILE), as %m logs it
RESUME_LINE = "Accepting connections again"


def nofile_limits(pid):
    """(soft, hard) of "Max open files" in /proc/PID/limits, as ints."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return (resource.RLIM_INFINITY if soft == "unlimited" else int(soft),
                        resource.RLIM_INFINITY if hard == "unlimited" else int(hard))
    raise AssertionError("no Max open files line for pid %d" % pid)


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def start_with_nofile(tmp_path, sockdir, soft, hard):
    """A pycqueued started with RLIMIT_NOFILE (@soft, @hard); the fixtures
    cannot give a child limits of its own, and lowering our own hard limit
    would be for good."""
    sock = os.path.join(sockdir, "lim.sock")
    log = open(tmp_path / "lim.log", "wb")
    write_daemon_config(str(tmp_path / "lim.conf"))
    cmd = [PYCQUEUED, "--socket=" + sock, "--state-dir=" + str(tmp_path / "state-lim"),
           "--config=" + str(tmp_path / "lim.conf")]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env(), cwd="/",
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
    log.close()
    try:
        wait_for_socket(sock, proc, timeout=10)
    except Exception:
        terminate(proc)
        raise
    return proc


@pytest.fixture
def root_only():
    if os.geteuid() != 0:
        pytest.skip("needs root to lower and restore the hard limit and to run as nobody")
    if not shutil.which("setpriv", path="/usr/bin:/bin"):
        pytest.skip("setpriv missing")


@pytest.mark.parametrize("soft,hard", [(256, 4096), (64, 2 * NOFILE_MAX)])
def test_soft_limit_raised_to_hard_at_start(tmp_path, sockdir, soft, hard):
    hard = min(hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    proc = start_with_nofile(tmp_path, sockdir, soft, hard)
    try:
        got_soft, got_hard = nofile_limits(proc.pid)
        still_running = proc.poll() is None
    finally:
        status = terminate(proc)
    assert still_running
    assert got_hard == hard, "the daemon changed its hard limit"
    assert got_soft == min(hard, NOFILE_MAX), \
        "soft limit %s, hard %s: not raised at start" % (got_soft, got_hard)
    assert status == 0, (tmp_path / "lim.log").read_text()


def test_emfile_pauses_listener_and_logs_once(start_daemon, root_only, tmp_path):
    # A per-uid limit well above what the descriptors allow, so that
    # accept() runs out of descriptors before the daemon refuses anyone.
    d = start_daemon(workers=1, config="max_connections_per_uid = 1000\n")
    warm = write(tmp_path / "warm" / "w.py", "W = 1\n")
    p = d.pycq("compile", warm)
    assert p.returncode == 0, describe(p)

    # Leave room for a handful of connections (each costs a socket and a
    # pidfd), and hold many more than that as nobody.
    limit = open_fds(d.pid) + 16
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (limit, limit))
    holder = subprocess.Popen(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
         "/usr/bin/python3", "-I", "-c", HOLDER, d.socket, "40"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env(), cwd="/")
    try:
        assert holder.stdout.readline().strip() == b"40", "the holder could not connect"
        assert wait_until(lambda: EMFILE_TEXT in d.log_text(), timeout=20), \
            "accept never ran out of descriptors:\n" + d.log_text(5000)
        assert open_fds(d.pid) >= limit - 2, "the descriptors are not used up"

        # Saturated: a spinning loop would burn ~2 s of CPU here and log per
        # failure; a paused listener wakes a few times a second.
        lines_before = d.log_text().count("\n")
        cpu_before = cpu_seconds(d.pid)
        time.sleep(2.0)
        cpu_used = cpu_seconds(d.pid) - cpu_before
        new_lines = d.log_text().count("\n") - lines_before
        assert d.running()
        assert cpu_used < 0.5, "the daemon used %.2f s of CPU in 2 s while out of descriptors" % cpu_used
        assert new_lines <= 3, "%d log lines in 2 s while out of descriptors:\n%s" % (
            new_lines, d.log_text(3000))
        assert d.log_text().count(EMFILE_TEXT) <= 3, "logged per failed accept"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    # The descriptors come back: root is served again.
    src = write(tmp_path / "after" / "a.py", "A = 2\n")
    p = d.pycq("compile", src)
    assert p.returncode == 0, describe(p) + "\n" + d.log_text(3000)
    assert_tree_compiled(str(tmp_path / "after"))
    assert wait_until(lambda: RESUME_LINE in d.log_text(), timeout=10), d.log_text(3000)
