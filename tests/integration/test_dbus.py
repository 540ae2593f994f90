# SPDX-License-Identifier: MIT
"""pycqueued on the system bus: a private dbus-daemon runs with a copy of the
system bus's default-deny policy plus the project's policy file, and the
daemon is pointed at it with DBUS_SYSTEM_BUS_ADDRESS. polkit is python3-
dbusmock's polkitd template. Callers are python3-dbus (and busctl), as root
in this process and as nobody through setpriv."""

import errno
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from pycqtest import (MSG_COMPILE, MSG_ERROR, MSG_HISTORY, MSG_WHY, PYCQUEUE, PYCQUEUED, SRCDIR, TAG_PATH,
                      TAG_PYTHON, cache_path, clean_env, field, frame, kill_pid, raw_request, run_client,
                      terminate, wait_until, write, write_daemon_config)

dbus = pytest.importorskip("dbus")

NAME = "org.pycqueue.PyCQueue1"
PATH = "/org/pycqueue/PyCQueue1"
MANAGER = NAME + ".Manager"
REQUEST = NAME + ".Request"
PROPS = "org.freedesktop.DBus.Properties"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
SYSTEM_PYTHON = "/usr/bin/python3"  # where python3-dbus is
USER_GROUPS = {"nobody": "nogroup"}

pytestmark = pytest.mark.skipif(not shutil.which("dbus-daemon"), reason="dbus-daemon missing")


def bus_config(socket, servicedir=None):
    """/usr/share/dbus-1/system.conf, adapted: our socket, no service
    helper, no user switch, and of the system.d snippets only ours, plus
    what the polkit mock and the test's own names need; with @servicedir,
    the activation files there (dbus-daemon runs their Exec= itself)."""
    text = open("/usr/share/dbus-1/system.conf").read()
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    for pat in (r"<user>.*?</user>", r"<fork/>", r"<pidfile>.*?</pidfile>", r"<syslog/>",
                r"<servicehelper>.*?</servicehelper>", r"<standard_system_servicedirs/>",
                r"<includedir>.*?</includedir>", r"<include\b[^>]*>.*?</include>"):
        text = re.sub(pat, "", text, flags=re.S)
    assert "<deny send_type=\"method_call\"/>" in text  # still default-deny
    text = re.sub(r"<listen>.*?</listen>", "<listen>unix:path=%s</listen>" % socket, text)
    extra = """
  <include>%s</include>
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
    <allow own="org.pycqueue.Test"/>
  </policy>
%s
</busconfig>""" % (os.path.join(SRCDIR, "dbus", "org.pycqueue.PyCQueue1.conf"),
                   "<servicedir>%s</servicedir>" % servicedir if servicedir else "")
    return text.replace("</busconfig>", extra)


class PrivateBus:
    def __init__(self, directory, servicedir=None):
        self.socket = os.path.join(directory, "bus")
        self.address = "unix:path=" + self.socket
        self.config = os.path.join(directory, "bus.conf")
        self.log = os.path.join(directory, "bus.log")
        with open(self.config, "w") as f:
            f.write(bus_config(self.socket, servicedir))
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + self.config, "--nofork"],
                                         stdout=log, stderr=log)
        assert wait_until(self.answers, 10), "the bus did not start"
        return self

    def answers(self):
        try:
            self.connect().close()
            return True
        except dbus.DBusException:
            return False

    def stop(self):
        if self.proc:
            terminate(self.proc)
            self.proc = None
        if os.path.exists(self.socket):
            os.unlink(self.socket)

    def connect(self):
        return dbus.bus.BusConnection(self.address)


@pytest.fixture
def private_bus(sockdir, monkeypatch):
    b = PrivateBus(sockdir)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", b.address)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def polkit(private_bus):
    """The polkitd mock; returns its mock interface (SetAllowed...)."""
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=private_bus.address)
    p = subprocess.Popen([SYSTEM_PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = private_bus.connect()
    assert wait_until(lambda: conn.name_has_owner("org.freedesktop.PolicyKit1"), 20), "no polkit mock"
    yield dbus.Interface(conn.get_object("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority"),
                         "org.freedesktop.DBus.Mock")
    terminate(p)


def owns_name(bus):
    try:
        return bus.connect().name_has_owner(NAME)
    except dbus.DBusException:
        return False


@pytest.fixture
def bus_daemon(start_daemon, private_bus):
    d = start_daemon(workers=1)
    assert wait_until(lambda: owns_name(private_bus), 10), "pycqueued did not take its name:\n" + d.log_text()
    return d


def manager(bus):
    return dbus.Interface(bus.connect().get_object(NAME, PATH), MANAGER)


def paths_arg(*paths):
    return dbus.Array([dbus.ByteArray(os.fsencode(p)) for p in paths], signature="ay")


def error_name(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except dbus.DBusException as e:
        return e.get_dbus_name()
    return None


CALL_AS = r"""
import json, sys, dbus
addr, path, iface, method, sig, args = sys.argv[1:7]
args = json.loads(args)
def conv(a, s):
    if s == "aay":
        return dbus.Array([dbus.ByteArray(x.encode("utf-8", "surrogateescape")) for x in a], signature="ay")
    if s == "ay":
        return dbus.ByteArray(a.encode("utf-8", "surrogateescape"))
    if s == "a{sv}":
        # {"ay": text} is a byte array
        return dbus.Dictionary({k: dbus.ByteArray(v["ay"].encode("utf-8", "surrogateescape"))
                                if isinstance(v, dict) else v for k, v in a.items()}, signature="sv")
    if s == "t":
        return dbus.UInt64(a)
    if s == "u":
        return dbus.UInt32(a)
    return a
def plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Boolean):
        return bool(v)
    return v
sigs = {"aaya{sv}": ["aay", "a{sv}"], "s": ["s"], "": [], "aya{sv}tu": ["ay", "a{sv}", "t", "u"],
        "a{sv}tu": ["a{sv}", "t", "u"], "aaya{sv}tu": ["aay", "a{sv}", "t", "u"]}[sig]
c = dbus.bus.BusConnection(addr)
try:
    r = c.call_blocking("org.pycqueue.PyCQueue1", path, iface, method, sig,
                        [conv(a, s) for a, s in zip(args, sigs)], timeout=60, byte_arrays=True)
    print(json.dumps({"ok": plain(r)}, default=str))
except dbus.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
"""


def call_as(bus, user, method, signature="", args=(), path=PATH, iface=MANAGER, groups=()):
    """Calls @method as @user (setpriv) in a fresh process, with the
    supplementary @groups (gids) and no other; returns the parsed
    {"ok": result} or {"error": name}."""
    p = call_as_start(bus, user, method, signature, args, path, iface, groups)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    return json.loads(out)


def call_as_start(bus, user, method, signature="", args=(), path=PATH, iface=MANAGER, groups=()):
    """call_as(), started: its Popen (stdout and stderr piped)."""
    grp = ["--groups=" + ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
    cmd = ["setpriv", "--reuid=" + user, "--regid=" + USER_GROUPS.get(user, user)] + grp + [
           "--", SYSTEM_PYTHON, "-c", CALL_AS, bus.address, path, iface, method, signature,
           json.dumps(list(args))]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})


def public_tree(tmp_path):
    """A tree any user may read (tmp_path's parents are 0700 for root)."""
    d = os.path.join("/tmp", "pycq-dbus-%d-%s" % (os.getpid(), tmp_path.name))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    os.chmod(d, 0o755)
    return d


# --- the name, introspection, properties -------------------------------------------------


def interfaces_of(xml_text):
    out = {}
    for iface in ET.fromstring(xml_text).findall("interface"):
        members = set()
        for el in iface:
            args = tuple((a.get("name"), a.get("type"), a.get("direction")) for a in el.findall("arg"))
            members.add((el.tag, el.get("name"), el.get("type"), el.get("access"), args))
        out[iface.get("name")] = members
    return out


def test_introspection_matches_installed_xml(bus_daemon, private_bus):
    installed = interfaces_of(open(os.path.join(SRCDIR, "dbus", "org.pycqueue.PyCQueue1.xml")).read())
    conn = private_bus.connect()
    live = interfaces_of(conn.get_object(NAME, PATH).Introspect(
        dbus_interface="org.freedesktop.DBus.Introspectable"))
    assert live[MANAGER] == installed[MANAGER]
    assert "org.freedesktop.DBus.Properties" in live
    # A request object carries the other interface of the file.
    req = manager(private_bus).Compile(paths_arg("/nonexistent-pycq"), dbus.Dictionary({}, signature="sv"))
    live_req = interfaces_of(conn.get_object(NAME, req).Introspect(
        dbus_interface="org.freedesktop.DBus.Introspectable"))
    assert live_req[REQUEST] == installed[REQUEST]


def test_status_and_properties(bus_daemon, private_bus):
    conn = private_bus.connect()
    obj = conn.get_object(NAME, PATH)
    status = manager(private_bus).GetStatus()
    assert status["pid"] == bus_daemon.pid
    assert status["state"] == "running"
    assert "recent_errors" in status  # root is privileged
    props = obj.GetAll(MANAGER, dbus_interface=PROPS)
    assert set(props) == {"State", "Version", "QueueLength", "InFlight", "Workers", "Totals", "Recording",
                          "Degraded", "DegradedReason", "DroppedRecords", "Audit", "CacheHitRate"}
    assert props["Version"] == status["version"]
    assert obj.Get(MANAGER, "State", dbus_interface=PROPS) == "running"
    assert error_name(obj.Set, MANAGER, "State", "x", dbus_interface=PROPS) == \
        "org.freedesktop.DBus.Error.PropertyReadOnly"
    assert error_name(obj.Get, MANAGER, "Nope", dbus_interface=PROPS) == \
        "org.freedesktop.DBus.Error.UnknownProperty"
    # Everyone may read; only the privileged caller sees errors with paths.
    r = call_as(private_bus, "nobody", "GetStatus")
    assert r["ok"]["state"] == "running"
    assert "recent_errors" not in r["ok"]


# --- compile, signals, request objects -----------------------------------------------------


def listen(private_bus, subscribe=False):
    """A subprocess that prints the manager's signals as JSON lines."""
    script = r"""
import json, sys, dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
c = dbus.bus.BusConnection(sys.argv[1])
def on(*args, **kw):
    print(json.dumps([kw["member"]] + [bytes(a).decode("utf-8", "surrogateescape") if isinstance(a, dbus.Array)
          and a.signature == "y" else a for a in args], default=str), flush=True)
c.add_signal_receiver(on, dbus_interface=None, path="%s", member_keyword="member")
if sys.argv[2] == "1":
    c.call_blocking("%s", "%s", "%s", "Subscribe", "", [])
print(json.dumps(["ready"]), flush=True)
GLib.MainLoop().run()
""" % (PATH, NAME, PATH, MANAGER)
    p = subprocess.Popen([SYSTEM_PYTHON, "-c", script, private_bus.address, "1" if subscribe else "0"],
                         stdout=subprocess.PIPE, text=True)
    assert json.loads(p.stdout.readline()) == ["ready"]
    return p


def read_until(p, member, timeout=30):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        ev = json.loads(line)
        seen.append(ev)
        if ev[0] == member:
            return seen
    raise AssertionError("no %s signal; saw %r" % (member, seen))


def test_compile_as_root(bus_daemon, private_bus, tmp_path):
    src = tmp_path / "src"
    write(src / "good.py", b"x = 1\n")
    write(src / "bad.py", b"def (\n")
    write(tmp_path / "other.py", b"y = 2\n")
    # Nobody subscribed: RequestFinished, and no JobFinished.
    watcher = listen(private_bus, subscribe=False)
    try:
        manager(private_bus).Compile(paths_arg(tmp_path / "other.py"), dbus.Dictionary({}, signature="sv"))
        events = read_until(watcher, "RequestFinished")
        assert not [e for e in events if e[0] == "JobFinished"]
    finally:
        watcher.kill()
    listener = listen(private_bus, subscribe=True)
    try:
        req = manager(private_bus).Compile(paths_arg(src), dbus.Dictionary(
            {"package": "demo", "tool": "test-tool", "optimization_levels": dbus.Array([0], signature="u")},
            signature="sv"))
        assert req.startswith(PATH + "/request/")
        counts = dbus.Interface(private_bus.connect().get_object(NAME, req), REQUEST).Wait()
        assert dict(counts) == {"total": 2, "done": 2, "compiled": 1, "up_to_date": 0, "coalesced": 0,
                                "failed": 1}
        assert os.path.isfile(cache_path(str(src / "good.py")))
        events = read_until(listener, "RequestFinished")
        jobs = {e[1]: e[2] for e in events if e[0] == "JobFinished"}
        assert jobs[cache_path(str(src / "good.py"))] == "compiled"
        assert "failed" in jobs.values()
        finished = [e for e in events if e[0] == "RequestFinished"][0]
        assert finished[1] == req and finished[3]["compiled"] == 1
    finally:
        listener.kill()
    obj = private_bus.connect().get_object(NAME, req)
    props = obj.GetAll(REQUEST, dbus_interface=PROPS)
    assert props["State"] == "finished" and props["Package"] == "demo" and props["Uid"] == 0
    assert "test-tool" in props["Tool"] and "D-Bus :" in props["Tool"]
    assert req in manager(private_bus).ListRequests()
    # Provenance: the request came over the bus.
    p = bus_daemon.pycq("history", "--json", str(src / "good.py"))
    assert "D-Bus" in p.stdout.decode()


def test_request_object_goes_away_after_linger(start_daemon, private_bus, tmp_path):
    """A finished request's object stays bus_request_linger seconds for late
    readers, then goes: calls on it get UnknownObject."""
    d = start_daemon(workers=1, config="bus_request_linger = 1\n")
    assert wait_until(lambda: owns_name(private_bus), 10), d.log_text()
    write(tmp_path / "m.py", b"x = 1\n")
    req = manager(private_bus).Compile(paths_arg(tmp_path / "m.py"), dbus.Dictionary({}, signature="sv"))
    obj = private_bus.connect().get_object(NAME, req)
    assert dict(dbus.Interface(obj, REQUEST).Wait())["compiled"] == 1
    assert obj.Get(REQUEST, "State", dbus_interface=PROPS) == "finished"  # still there, finished
    assert wait_until(lambda: req not in manager(private_bus).ListRequests(), 10), "the object stayed"
    with pytest.raises(dbus.exceptions.DBusException) as e:
        obj.Get(REQUEST, "State", dbus_interface=PROPS)
    assert e.value.get_dbus_name() == "org.freedesktop.DBus.Error.UnknownObject"


def test_properties_changed(bus_daemon, private_bus, tmp_path):
    write(tmp_path / "a.py", b"a = 1\n")
    listener = listen(private_bus)
    try:
        manager(private_bus).Compile(paths_arg(tmp_path / "a.py"), dbus.Dictionary({}, signature="sv"))
        while True:
            ev = read_until(listener, "PropertiesChanged")[-1]
            if "Totals" in ev[2] and ev[2]["Totals"]["compiled"] == 1:
                break
    finally:
        listener.kill()


def test_wait(bus_daemon, private_bus):
    assert manager(private_bus).Wait("") is None
    assert call_as(private_bus, "nobody", "Wait", "s", ["somepackage"]) == {"ok": None}


# --- authorisation ---------------------------------------------------------------------


def test_compile_denied_to_others_without_polkit(bus_daemon, private_bus, tmp_path):
    d = public_tree(tmp_path)
    try:
        write(os.path.join(d, "m.py"), b"m = 1\n")
        os.chmod(os.path.join(d, "m.py"), 0o644)
        r = call_as(private_bus, "nobody", "Compile", "aaya{sv}", [[d], {}])
        assert r["error"] == ACCESS_DENIED
        assert not os.path.exists(os.path.join(d, "__pycache__"))
        assert bus_daemon.running()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_compile_with_polkit(bus_daemon, private_bus, polkit, tmp_path):
    d = public_tree(tmp_path)
    try:
        write(os.path.join(d, "m.py"), b"m = 1\n")
        # polkit says no: denied, nothing written.
        polkit.SetAllowed(dbus.Array([], signature="s"))
        assert call_as(private_bus, "nobody", "Compile", "aaya{sv}", [[d], {}])["error"] == ACCESS_DENIED
        assert not os.path.exists(os.path.join(d, "__pycache__"))
        # Another action allowed is not this one.
        polkit.SetAllowed(["org.pycqueue.clean"])
        assert call_as(private_bus, "nobody", "Compile", "aaya{sv}", [[d], {}])["error"] == ACCESS_DENIED
        # polkit consents: compiled, recorded as nobody's.
        polkit.SetAllowed(["org.pycqueue.compile"])
        r = call_as(private_bus, "nobody", "Compile", "aaya{sv}", [[d], {}])
        req = r["ok"]
        counts = call_as(private_bus, "nobody", "Wait", path=req, iface=REQUEST)["ok"]
        assert counts["compiled"] == 1
        assert os.path.isfile(cache_path(os.path.join(d, "m.py")))
        uid = private_bus.connect().get_object(NAME, req).Get(REQUEST, "Uid", dbus_interface=PROPS)
        assert uid == 65534
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_read_only_methods_open_to_all(bus_daemon, private_bus):
    for method in ("GetStatus", "ListRequests", "Subscribe", "Unsubscribe"):
        assert "ok" in call_as(private_bus, "nobody", method), method


# --- malformed input ----------------------------------------------------------------------


def test_malformed_arguments(start_daemon, private_bus, tmp_path):
    # The path limit is the socket's, from the configuration.
    d = start_daemon(workers=1, config="max_paths_per_request = 100\n")
    assert wait_until(lambda: owns_name(private_bus), 10)
    conn = private_bus.connect()

    def call(method, signature, args, path=PATH, iface=MANAGER):
        try:
            conn.call_blocking(NAME, path, iface, method, signature, args, timeout=30)
        except dbus.DBusException as e:
            return e.get_dbus_name()
        return None

    opts = lambda **kw: dbus.Dictionary(kw, signature="sv")  # noqa: E731
    bad = [
        ("Compile", "", []),
        ("Compile", "s", ["/tmp"]),
        ("Compile", "as", [["/tmp"]]),
        ("Compile", "aaya{sv}", [paths_arg("relative/path"), opts()]),
        ("Compile", "aaya{sv}", [paths_arg(""), opts()]),
        ("Compile", "aaya{sv}", [dbus.Array([dbus.ByteArray(b"/tmp/a\0b")], signature="ay"), opts()]),
        ("Compile", "aaya{sv}", [paths_arg("/" + "x" * 5000), opts()]),
        ("Compile", "aaya{sv}", [paths_arg(*["/tmp/f%d" % i for i in range(101)]), opts()]),
        ("Compile", "aaya{sv}", [paths_arg("/tmp"), opts(bogus=True)]),
        ("Compile", "aaya{sv}", [paths_arg("/tmp"), opts(force="yes")]),
        ("Compile", "aaya{sv}", [paths_arg("/tmp"), opts(invalidation_mode="sometimes")]),
        ("Compile", "aaya{sv}", [paths_arg("/tmp"), opts(optimization_levels=dbus.Array([7], signature="u"))]),
        ("Compile", "aaya{sv}", [paths_arg("/tmp"), opts(root=dbus.ByteArray(b"rel"))]),
        ("Compile", "aaya{sv}", [paths_arg("/tmp"), opts(pythons=dbus.Array([dbus.ByteArray(b"py")],
                                                                              signature="ay"))]),
        ("Compile", "aaya{sv}", [paths_arg("/tmp"), opts(excludes=dbus.Array(["("], signature="s"))]),
        ("Wait", "", []),
        ("Wait", "u", [1]),
        ("GetStatus", "s", ["x"]),
        ("ListRequests", "u", [3]),
        ("Subscribe", "b", [True]),
        ("Unsubscribe", "ay", [dbus.ByteArray(b"x")]),
        ("Nope", "", []),
    ]
    # (The reports name the case by its index: repr() of a python3-dbus
    # value can crash the interpreter.)
    for i, (method, sig, args) in enumerate(bad):
        name = call(method, sig, args)
        assert name in (INVALID_ARGS, "org.freedesktop.DBus.Error.UnknownMethod"), "case %d: %s" % (i, name)
    assert call("Wait", "", [], path=PATH + "/request/999999", iface=REQUEST) == \
        "org.freedesktop.DBus.Error.UnknownObject"
    assert call("Wait", "u", [1], path=PATH + "/request/1x", iface=REQUEST) == \
        "org.freedesktop.DBus.Error.UnknownObject"
    assert call("Get", "u", [1], iface=PROPS) == INVALID_ARGS
    assert call("GetAll", "", [], iface=PROPS) == INVALID_ARGS
    # The same as nobody, through polkit-less denial first for Compile.
    assert call_as(private_bus, "nobody", "Compile", "aaya{sv}", [["rel"], {}])["error"] in (INVALID_ARGS,
                                                                                           ACCESS_DENIED)
    assert d.running()
    assert manager(private_bus).GetStatus()["state"] == "running"


# --- the bus comes and goes ----------------------------------------------------------------


def test_no_bus_then_bus_appears(start_daemon, sockdir, monkeypatch, tmp_path):
    bus = PrivateBus(sockdir)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
    d = start_daemon(workers=1)
    write(tmp_path / "a.py", b"a = 1\n")
    p = d.pycq("compile", str(tmp_path / "a.py"))
    assert p.returncode == 0, p.err
    bus.start()
    try:
        assert wait_until(lambda: owns_name(bus), 15), d.log_text()
    finally:
        bus.stop()


def test_bus_restarts_mid_request(bus_daemon, private_bus, stdlib_tree):
    tree = stdlib_tree(subset=True)
    req = manager(private_bus).Compile(paths_arg(tree), dbus.Dictionary({}, signature="sv"))
    private_bus.stop()
    private_bus.start()
    assert wait_until(lambda: owns_name(private_bus), 15), bus_daemon.log_text()
    # The request went on without the bus; a wait on the socket sees it end.
    p = bus_daemon.pycq("wait")
    assert p.returncode == 0
    assert bus_daemon.running()
    # Its object survived on the daemon's side.
    state = private_bus.connect().get_object(NAME, req).Get(REQUEST, "State", dbus_interface=PROPS)
    assert state == "finished"


def test_name_already_owned(start_daemon, private_bus):
    other = private_bus.connect()
    assert other.request_name(NAME, dbus.bus.NAME_FLAG_DO_NOT_QUEUE) == dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER
    d = start_daemon(workers=1)
    assert d.pycq("status").returncode == 0
    assert wait_until(lambda: "owned by another process" in d.log_text(), 10), d.log_text()
    # The other owner leaves: pycqueued, queued behind it, takes the name.
    other.release_name(NAME)
    assert wait_until(lambda: "Owning " + NAME in d.log_text(), 10), d.log_text()
    assert manager(private_bus).GetStatus()["pid"] == d.pid


def test_direct_bus_activation_says_bus(sockdir, tmp_path, monkeypatch):
    """dbus-daemon activating pycqueued itself (no systemd) runs the shipped
    Exec= line; the daemon then says it was started by the bus."""
    services = tmp_path / "services"
    services.mkdir()
    conf = str(tmp_path / "activated.conf")
    write_daemon_config(conf)
    sock = os.path.join(sockdir, "activated.sock")
    with open(os.path.join(SRCDIR, "dbus", NAME + ".service.in")) as f:
        shipped = f.read()
    exec_line = [line for line in shipped.splitlines() if line.startswith("Exec=")]
    assert exec_line == ["Exec=/usr/bin/env PYCQUEUE_STARTED_BY=bus @sbindir@/pycqueued"], exec_line
    # The shipped line, with the built daemon and this test's socket, state and configuration.
    text = shipped.replace("@sbindir@/pycqueued", "%s --socket=%s --state-dir=%s --config=%s --workers=1" % (
        PYCQUEUED, sock, tmp_path / "state", conf))
    write(services / (NAME + ".service"), text)
    bus = PrivateBus(sockdir, servicedir=str(services))
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
    monkeypatch.delenv("PYCQUEUE_STARTED_BY", raising=False)
    bus.start()
    pid = None
    try:
        status = manager(bus).GetStatus(timeout=60)  # no daemon runs: the bus starts one
        pid = int(status["pid"])
        assert status["started_by"] == "bus", status
        st = json.loads(run_client("status", "--json", socket_path=sock).stdout)
        assert st["started_by"] == "bus" and st["pid"] == pid, st
    finally:
        if pid:
            kill_pid(pid)
        bus.stop()


def test_idle_exit_releases_name(start_daemon, private_bus):
    d = start_daemon(workers=1, idle_exit=1)
    assert wait_until(lambda: owns_name(private_bus), 10)
    d.expected_exit = True
    assert d.proc.wait(timeout=30) == 0
    assert not owns_name(private_bus)


# --- administration: Why, History, Verify, Audit, Repair, Clean ----------------------------

NOT_SUPPORTED = NAME + ".Error.NotSupported"
TOO_MANY_RECORDS = NAME + ".Error.TooManyRecords"


def plain(v):
    """A python3-dbus value as plain Python (byte arrays as str)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Boolean):
        return bool(v)
    return v


def admin_call(bus, method, signature, *args):
    """@method as root (this process); the reply as plain values."""
    conn = bus.connect()
    return plain(conn.call_blocking(NAME, PATH, MANAGER, method, signature, list(args), timeout=60,
                                    byte_arrays=True))


def opts(**kw):
    return dbus.Dictionary(kw, signature="sv")


def compiled_files(d, tree, n):
    """@n sources under @tree, compiled over the socket; their paths."""
    srcs = [os.path.join(tree, "m%d.py" % i) for i in range(n)]
    for i, src in enumerate(srcs):
        write(src, b"v = %d\n" % i)
    p = d.pycq("compile", tree)
    assert p.returncode == 0, p.err
    return srcs


def test_admin_queries_as_root(bus_daemon, private_bus, tmp_path):
    tree = str(tmp_path / "tree")
    srcs = compiled_files(bus_daemon, tree, 3)
    # History pages add up to the whole, in the same order.
    whole, summary, nxt = admin_call(private_bus, "History", "a{sv}tu", opts(path=dbus.ByteArray(
        os.fsencode(tree))), dbus.UInt64(0), dbus.UInt32(0))
    assert nxt == 0 and len(whole) == 3
    assert {r["source"] for r in whole} == set(srcs)
    assert all(isinstance(r["target"], str) and r["outcome"] == "compiled" for r in whole)
    first, _, nxt = admin_call(private_bus, "History", "a{sv}tu", opts(path=dbus.ByteArray(
        os.fsencode(tree))), dbus.UInt64(0), dbus.UInt32(2))
    assert len(first) == 2 and nxt == 2
    second, _, nxt = admin_call(private_bus, "History", "a{sv}tu", opts(path=dbus.ByteArray(
        os.fsencode(tree))), dbus.UInt64(2), dbus.UInt32(2))
    assert nxt == 0 and first + second == whole
    # Why: one file's record, the summary names its target.
    recs, summary, nxt = admin_call(private_bus, "Why", "aya{sv}tu", dbus.ByteArray(os.fsencode(srcs[0])),
                                    opts(), dbus.UInt64(0), dbus.UInt32(10))
    assert len(recs) == 1 and recs[0]["source"] == srcs[0] and nxt == 0
    assert summary["target"] == cache_path(srcs[0])
    # Verify: a damaged .pyc is a problem; pages of one record each.
    write(cache_path(srcs[1]), b"garbage")
    write(os.path.join(tree, "__pycache__", "ghost.cpython-311.pyc"), b"x")
    recs, summary, nxt = admin_call(private_bus, "Verify", "aaya{sv}tu", paths_arg(tree), opts(),
                                    dbus.UInt64(0), dbus.UInt32(0))
    problems = {r["path"]: r["problem"] for r in recs}
    assert problems[cache_path(srcs[1])] == "corrupt" and nxt == 0
    page1, _, nxt = admin_call(private_bus, "Verify", "aaya{sv}tu", paths_arg(tree), opts(),
                               dbus.UInt64(0), dbus.UInt32(1))
    assert len(page1) == 1 and nxt == 1
    page2, _, nxt2 = admin_call(private_bus, "Verify", "aaya{sv}tu", paths_arg(tree), opts(),
                                dbus.UInt64(nxt), dbus.UInt32(1))
    assert page1 + page2 == recs and nxt2 == 0
    # Audit is off: NotSupported.
    assert error_name(admin_call, private_bus, "Audit", "a{sv}tu", opts(), dbus.UInt64(0),
                      dbus.UInt32(0)) == NOT_SUPPORTED
    # Repair, then Clean, as root.
    recs, summary = admin_call(private_bus, "Repair", "aaya{sv}", paths_arg(tree), opts(tool="test-tool"))
    assert {r["path"]: r["action"] for r in recs}[cache_path(srcs[1])] == "recompiled"
    assert all(r["result"] == "ok" for r in recs), recs
    recs, summary = admin_call(private_bus, "Clean", "aaya{sv}", paths_arg(tree), opts())
    assert sorted(r["path"] for r in recs) == sorted(cache_path(s) for s in srcs)
    assert summary["removed"] == 3
    assert not [s for s in srcs if os.path.exists(cache_path(s))]
    # Provenance: the clean came over the bus, as root.
    hist = admin_call(private_bus, "History", "a{sv}tu", opts(path=dbus.ByteArray(os.fsencode(tree))),
                      dbus.UInt64(0), dbus.UInt32(1))[0]
    assert hist[0]["outcome"] == "removed" and "D-Bus :" in hist[0]["tool"] and hist[0]["uid"] == 0
    assert hist[0]["exe"] == os.path.realpath(sys.executable)


def test_clean_reply_is_bounded(bus_daemon, private_bus, tmp_path):
    cache = tmp_path / "tree" / "__pycache__"
    n = 1005
    for i in range(n):
        write(cache / ("m%d.cpython-311.pyc" % i), b"x")
    recs, summary = admin_call(private_bus, "Clean", "aaya{sv}", paths_arg(tmp_path / "tree"), opts())
    assert len(recs) == 1000 and summary["records_omitted"] == n - 1000 and summary["removed"] == n
    assert not os.listdir(cache) if os.path.isdir(cache) else True


def test_admin_as_nobody(bus_daemon, private_bus, polkit, tmp_path):
    d = public_tree(tmp_path)
    try:
        srcs = compiled_files(bus_daemon, d, 2)
        for dirpath, dirs, files in os.walk(d):
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o644)
            for name in dirs:
                os.chmod(os.path.join(dirpath, name), 0o755)
        # Read-only methods are open; root's requests are shown redacted.
        r = call_as(private_bus, "nobody", "History", "a{sv}tu", [{}, 0, 0])["ok"]
        mine = [x for x in r[0] if x["source"] in srcs]
        assert len(mine) == 2 and all("pid" not in x for x in mine), mine
        r = call_as(private_bus, "nobody", "Verify", "aaya{sv}tu", [[d], {}, 0, 0])["ok"]
        assert r[0] == [] and r[2] == 0
        # ... with the caller's own filesystem identity.
        # (a 0700 directory with an orphan whose name root alone may learn)
        secret = os.path.join(d, "secret")
        hidden = compiled_files(bus_daemon, secret, 1)[0]
        shutil.copy(cache_path(hidden), os.path.join(secret, "__pycache__", "secretname.cpython-311.pyc"))
        os.chmod(secret, 0o700)
        recs = admin_call(private_bus, "Verify", "aaya{sv}tu", paths_arg(secret), opts(), dbus.UInt64(0),
                          dbus.UInt32(0))[0]
        assert [r for r in recs if "secretname" in r["path"]]
        for method, sig, args in (("Verify", "aaya{sv}tu", [[secret], {}, 0, 0]),
                                  ("Why", "aya{sv}tu", [hidden, {}, 0, 0]),
                                  ("History", "a{sv}tu", [{"path": {"ay": secret}}, 0, 0])):
            r = call_as(private_bus, "nobody", method, sig, args)
            assert "secretname" not in json.dumps(r) and "m0.py" not in json.dumps(r.get("ok")), (method, r)
        # Repair and Clean need polkit's consent, each its own action.
        polkit.SetAllowed(dbus.Array([], signature="s"))
        for method in ("Repair", "Clean"):
            assert call_as(private_bus, "nobody", method, "aaya{sv}", [[d], {}])["error"] == ACCESS_DENIED
        assert all(os.path.exists(cache_path(s)) for s in srcs)
        polkit.SetAllowed(["org.pycqueue.repair"])
        assert call_as(private_bus, "nobody", "Clean", "aaya{sv}", [[d], {}])["error"] == ACCESS_DENIED
        assert all(os.path.exists(cache_path(s)) for s in srcs)
        r = call_as(private_bus, "nobody", "Repair", "aaya{sv}", [[d], {}])
        # With consent it runs as root's would: the orphan goes.
        assert [x["problem"] for x in r["ok"][0]] == ["orphan"] and r["ok"][1]["repaired"] == 1, r
        assert not os.path.exists(os.path.join(secret, "__pycache__", "secretname.cpython-311.pyc"))
        polkit.SetAllowed(["org.pycqueue.clean"])
        r = call_as(private_bus, "nobody", "Clean", "aaya{sv}", [[d], {}])
        assert r["ok"][1]["removed"] == 3, r
        assert not any(os.path.exists(cache_path(s)) for s in srcs)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_admin_denied_without_polkit(bus_daemon, private_bus, tmp_path):
    d = public_tree(tmp_path)
    try:
        srcs = compiled_files(bus_daemon, d, 1)
        for method in ("Repair", "Clean"):
            assert call_as(private_bus, "nobody", method, "aaya{sv}", [[d], {}])["error"] == ACCESS_DENIED
        assert os.path.exists(cache_path(srcs[0]))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_admin_errors(start_daemon, private_bus, tmp_path):
    d = start_daemon(workers=1, config="max_reply_rows = 2\n")
    assert wait_until(lambda: owns_name(private_bus), 10)
    tree = str(tmp_path / "tree")
    compiled_files(d, tree, 4)
    page = lambda cursor, limit: admin_call(private_bus, "History", "a{sv}tu", opts(),  # noqa: E731
                                            dbus.UInt64(cursor), dbus.UInt32(limit))
    recs, _, nxt = page(0, 1)
    assert len(recs) == 1 and nxt == 1
    # Beyond max_reply_rows a page cannot be filled: an error, not a silent cut.
    assert error_name(page, 2, 2) == TOO_MANY_RECORDS
    conn = private_bus.connect()

    def call(method, signature, args):
        try:
            conn.call_blocking(NAME, PATH, MANAGER, method, signature, args, timeout=30)
        except dbus.DBusException as e:
            return e.get_dbus_name()
        return None

    t0, u0 = dbus.UInt64(0), dbus.UInt32(0)
    bad = [
        ("Why", "aya{sv}tu", [dbus.ByteArray(b"relative.py"), opts(), t0, u0]),
        ("Why", "aya{sv}tu", [dbus.ByteArray(b"/tmp/a.py"), opts(package="x"), t0, u0]),
        ("Why", "ay", [dbus.ByteArray(b"/tmp/a.py")]),
        ("History", "a{sv}tu", [opts(since="yesterday"), t0, u0]),
        ("History", "a{sv}tu", [opts(bogus=True), t0, u0]),
        ("History", "a{sv}", [opts()]),
        ("Verify", "aaya{sv}tu", [paths_arg(), opts(), t0, u0]),
        ("Verify", "aaya{sv}tu", [paths_arg("/tmp"), opts(pythons=dbus.Array([dbus.ByteArray(b"py")],
                                                                           signature="ay")), t0, u0]),
        ("Audit", "a{sv}tu", [opts(path=dbus.ByteArray(b"/tmp")), t0, u0]),
        ("Repair", "aaya{sv}", [paths_arg("rel"), opts()]),
        ("Clean", "aaya{sv}", [paths_arg(), opts()]),
        ("Clean", "aaya{sv}tu", [paths_arg("/tmp"), opts(), t0, u0]),
    ]
    # Every administration method, with arguments of the wrong shape.
    for method in ("Why", "History", "Verify", "Audit", "Repair", "Clean"):
        for sig, args in (("", []), ("s", ["/tmp"]), ("aay", [paths_arg("/tmp")]),
                          ("a{sv}ut", [opts(), dbus.UInt32(0), dbus.UInt64(0)]),
                          ("aya{sv}", [dbus.ByteArray(b"/tmp"), opts()])):
            bad.append((method, sig, args))
    for i, (method, sig, args) in enumerate(bad):
        assert call(method, sig, args) == INVALID_ARGS, "case %d" % i
    assert d.running()
    assert page(0, 1)[2] == 1


def test_history_without_recording(start_daemon, private_bus):
    start_daemon(workers=1, config="recording = off\n")
    assert wait_until(lambda: owns_name(private_bus), 10)
    for method, sig, args in (("History", "a{sv}tu", [opts(), dbus.UInt64(0), dbus.UInt32(0)]),
                              ("Why", "aya{sv}tu", [dbus.ByteArray(b"/tmp/a.py"), opts(), dbus.UInt64(0),
                                                    dbus.UInt32(0)])):
        assert error_name(admin_call, private_bus, method, sig, *args) == NOT_SUPPORTED, method


def test_admin_read_with_callers_groups(bus_daemon, private_bus, tmp_path):
    """A read-only method sees what the caller's supplementary groups (as
    the bus reports them) let it see, and no more."""
    d = public_tree(tmp_path)
    gid = 4242  # a group nobody is not in by its passwd entry
    try:
        shared = os.path.join(d, "shared")
        src = compiled_files(bus_daemon, shared, 1)[0]
        shutil.copy(cache_path(src), os.path.join(shared, "__pycache__", "groupname.cpython-311.pyc"))
        for p in (shared, os.path.join(shared, "__pycache__")):
            os.chown(p, 0, gid)
            os.chmod(p, 0o750)
        args = [[shared], {}, 0, 0]
        without = call_as(private_bus, "nobody", "Verify", "aaya{sv}tu", args)
        assert "groupname" not in json.dumps(without), without
        with_group = call_as(private_bus, "nobody", "Verify", "aaya{sv}tu", args, groups=[gid])
        assert [r["problem"] for r in with_group["ok"][0] if "groupname" in r["path"]] == ["orphan"], with_group
        # The group of the caller's passwd entry counts too (nobody's: nogroup).
        for p in (shared, os.path.join(shared, "__pycache__")):
            os.chown(p, 0, 65534)
        primary = call_as(private_bus, "nobody", "Verify", "aaya{sv}tu", args)
        assert [r["problem"] for r in primary["ok"][0] if "groupname" in r["path"]] == ["orphan"], primary
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_audit_over_the_bus(start_daemon, private_bus, tmp_path):
    audited = tmp_path / "audited"
    rogue = write(audited / "rogue.py", b"Y = 2\n")
    d = start_daemon(workers=1, args=["--audit=" + str(audited)])
    assert wait_until(lambda: owns_name(private_bus), 10)
    p = subprocess.run([sys.executable, "-m", "py_compile", str(rogue)])
    assert p.returncode == 0 and os.path.exists(cache_path(rogue))

    def records():
        return admin_call(private_bus, "Audit", "a{sv}tu", opts(), dbus.UInt64(0), dbus.UInt32(0))[0]

    recs = wait_until(lambda: [r for r in records() if r["path"] == cache_path(rogue)], 15, 0.1)
    assert recs, records()
    r = recs[0]
    assert "py_compile" in r["cmdline"] and isinstance(r["exe"], str) and r["pid"] > 0, r
    # Another user sees the write, not who made it.
    r = call_as(private_bus, "nobody", "Audit", "a{sv}tu", [{}, 0, 0])
    assert "py_compile" not in json.dumps(r), r


def test_clean_while_stopping_is_shutting_down(bus_daemon, private_bus, polkit, tmp_path, trusted_bindir):
    """A Clean that polkit approves only after SIGTERM finds the daemon
    draining: ShuttingDown, nothing removed. The daemon drains because a
    compile waits for an interpreter that starts only when told to."""
    flag = os.path.join(trusted_bindir, "go")
    slow = os.path.join(trusted_bindir, "slow-python")
    write(slow, "#!/bin/sh\nwhile [ ! -e '%s' ]; do sleep 0.05; done\nexec /usr/bin/python3.11 \"$@\"\n" % flag,
          mode=0o755)
    d = public_tree(tmp_path)
    try:
        src = compiled_files(bus_daemon, d, 1)[0]
        write(os.path.join(d, "late.py"), b"x = 1\n")
        compile_ = bus_daemon.pycq_popen("compile", "--python=" + slow, os.path.join(d, "late.py"))
        assert wait_until(lambda: any(bytes(w[0]).decode() == slow for w in manager(private_bus).GetStatus()
                                      ["workers"]), 10)
        polkit.SetAllowed(["org.pycqueue.clean"])
        polkit.SimulateHang(True)
        clean = call_as_start(private_bus, "nobody", "Clean", "aaya{sv}", [[d], {}])
        assert wait_until(lambda: polkit.HaveHangingCalls(), 20)
        bus_daemon.expected_exit = True
        bus_daemon.proc.send_signal(signal.SIGTERM)
        assert wait_until(lambda: not owns_name(private_bus), 10)
        polkit.ReleaseHangingCalls()
        out, err = clean.communicate(timeout=60)
        assert json.loads(out)["error"] == NAME + ".Error.ShuttingDown", (out, err)
        assert os.path.exists(cache_path(src))
        write(flag, b"")
        compile_.communicate(timeout=60)
        assert bus_daemon.proc.wait(timeout=60) == 0
    finally:
        write(flag, b"")
        shutil.rmtree(d, ignore_errors=True)



# --- errors: what the daemon returns on the socket, and its name on the bus -----------------

INTERPRETER_FAILED = NAME + ".Error.InterpreterFailed"
DATABASE_FAILED = NAME + ".Error.DatabaseFailed"


def socket_errno(d, msg_type, *fields):
    """The errno of the MSG_ERROR that ends a raw request as root."""
    r = raw_request(d.socket, frame(msg_type, *fields), user="root", timeout=60)
    last = r["frames"][-1] if r["frames"] else None
    assert last is not None and last.type == MSG_ERROR, r
    return last.errno


def bus_compile_error(bus, src, interp):
    """Compile() naming @interp: the error it ends with, at once or from
    the request's Wait(), and its message."""
    try:
        req = manager(bus).Compile(paths_arg(src), opts(pythons=dbus.Array([dbus.ByteArray(os.fsencode(interp))],
                                                                           signature="ay")))
        bus.connect().get_object(NAME, req).Wait(dbus_interface=REQUEST, timeout=60)
    except dbus.DBusException as e:
        return e.get_dbus_name(), e.get_dbus_message()
    return None, None


def test_interpreter_errors(bus_daemon, private_bus, tmp_path, trusted_bindir):
    src = write(tmp_path / "m.py", b"x = 1\n")
    not_executable = write(os.path.join(trusted_bindir, "not-executable"), b"x\n")
    os.chmod(not_executable, 0o644)
    # Starts, and exits before the worker's handshake.
    exits = write(os.path.join(trusted_bindir, "exits"), b"#!/bin/sh\nexit 1\n")
    os.chmod(exits, 0o755)
    missing = os.path.join(trusted_bindir, "missing")
    cases = [  # interpreter, the socket's errno, the bus's error
        (not_executable, errno.ENOEXEC, INTERPRETER_FAILED),  # refused when resolved: Compile fails
        (exits, errno.ENOEXEC, INTERPRETER_FAILED),  # fails once started: the request's Wait() does
        (missing, errno.ENOENT, INVALID_ARGS),  # the argument names nothing: not UnknownObject
    ]
    for interp, code, name in cases:
        assert socket_errno(bus_daemon, MSG_COMPILE, field(TAG_PATH, src), field(TAG_PYTHON, interp)) == code, interp
        got, message = bus_compile_error(private_bus, src, interp)
        assert got == name, (interp, got, message)
        assert interp in message, message
    assert not os.path.exists(cache_path(src))
    assert bus_daemon.running()


@pytest.mark.parametrize("how", ["garbage", "removed"])
def test_database_errors(bus_daemon, private_bus, tmp_path, how):
    src = write(tmp_path / "t" / "m.py", b"x = 1\n")
    assert bus_daemon.pycq("compile", src).returncode == 0
    db = os.path.join(bus_daemon.state_dir, "provenance.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    if how == "garbage":  # a file that is no database: every query fails
        write(db, b"not a database\n" * 1000)
    t0, u0 = dbus.UInt64(0), dbus.UInt32(0)
    for method, sig, args, msg_type, fields in [
            ("History", "a{sv}tu", [opts(), t0, u0], MSG_HISTORY, [field(TAG_PATH, str(tmp_path))]),
            ("Why", "aya{sv}tu", [dbus.ByteArray(os.fsencode(src)), opts(), t0, u0], MSG_WHY,
             [field(TAG_PATH, src)])]:
        assert socket_errno(bus_daemon, msg_type, *fields) == errno.EIO, method
        assert error_name(admin_call, private_bus, method, sig, *args) == DATABASE_FAILED, method
    # Compiles go on without the database.
    other = write(tmp_path / "t" / "n.py", b"y = 2\n")
    assert bus_daemon.pycq("compile", other).returncode == 0
    assert bus_daemon.running()


# --- pycqueue status --watch through the bus -------------------------------------------------

class PtyWatch:
    """`pycqueue status --watch` with a terminal as its stdin, stdout and
    stderr; each refresh is a frame drawn after ESC[H ESC[J."""
    CLEAR = b"\x1b[H\x1b[J"
    ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")

    def __init__(self, d, interval, bus_address):
        import pty
        env = clean_env({"TERM": "xterm", "DBUS_SYSTEM_BUS_ADDRESS": bus_address}, drop=("NO_COLOR",))
        args = [PYCQUEUE, "--socket=" + d.socket, "--no-autostart", "status", "--watch",
                "--interval=" + str(interval)]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(PYCQUEUE, args, env)
            finally:
                os._exit(127)
        self.buf = b""

    def frames(self):
        """The complete frames so far, without escapes."""
        parts = self.buf.split(self.CLEAR)[1:]
        if parts and not (b"since start" in parts[-1] or re.search(rb"Socket: .*\n", parts[-1])):
            parts.pop()  # still being read
        return [self.ANSI.sub(b"", p).replace(b"\r\n", b"\n").decode("utf-8", "replace") for p in parts]

    def read_until(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while not pred(self.frames()) and time.monotonic() < deadline:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    break
                self.buf += data
        assert pred(self.frames()), "the condition never held; frames: %r" % self.frames()
        return self.frames()

    def alive(self):
        return os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def stop(self):
        """SIGINT; returns the exit status."""
        os.kill(self.pid, signal.SIGINT)
        _, st = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(st)


@pytest.fixture
def pty_watch():
    watches = []

    def start(*args):
        w = PtyWatch(*args)
        watches.append(w)
        return w
    yield start
    for w in watches:
        try:
            os.kill(w.pid, signal.SIGKILL)
            os.waitpid(w.pid, 0)
            os.close(w.fd)
        except (ProcessLookupError, ChildProcessError, OSError):
            pass


def frame_field(frame, label):
    m = re.search(r"^ *%s: (.*)$" % label, frame, re.M)
    return m.group(1) if m else None


def test_watch_refreshes_on_the_bus_signals(bus_daemon, private_bus, pty_watch, tmp_path):
    # An hour between polls: each refresh below comes from a signal.
    w = pty_watch(bus_daemon, 3600, private_bus.address)
    frames = w.read_until(lambda f: len(f) >= 1)
    assert frame_field(frames[0], "PID") == str(bus_daemon.pid), frames[0]
    assert frame_field(frames[0], "Totals").startswith("0 requests"), frames[0]
    src = write(tmp_path / "m.py", b"x = 1\n")
    assert bus_daemon.pycq("compile", src).returncode == 0
    w.read_until(lambda f: any((frame_field(x, "Totals") or "").startswith("1 request; 1 compiled")
                               for x in f))
    # The daemon stops (its name goes) and starts again (it comes back):
    # both are drawn without a poll.
    bus_daemon.stop()
    w.read_until(lambda f: frame_field(f[-1], "State").startswith("not running"))
    bus_daemon.start()
    w.read_until(lambda f: frame_field(f[-1], "PID") == str(bus_daemon.pid))
    assert w.stop() == 0


def test_watch_survives_the_bus_going_away(bus_daemon, private_bus, pty_watch, tmp_path):
    w = pty_watch(bus_daemon, 0.2, private_bus.address)
    w.read_until(lambda f: len(f) >= 1)
    private_bus.stop()
    # libdbus must not end the process; the watch polls on.
    n = len(w.read_until(lambda f: len(f) >= 1))
    w.read_until(lambda f: len(f) >= n + 3)
    assert w.alive()
    assert w.stop() == 0


def test_watch_without_a_bus_polls(daemon, sockdir, pty_watch):
    # An address where nothing listens: status_bus_open() fails, the watch polls.
    w = pty_watch(daemon, 0.1, "unix:path=" + os.path.join(sockdir, "no-bus"))
    frames = w.read_until(lambda f: len(f) >= 3)
    assert all(frame_field(f, "PID") == str(daemon.pid) for f in frames[:3]), frames
    assert w.stop() == 0
