"""Proves tests/e2e/private_host.sh: a real guest on a bridge inside a private
host namespace gets its DHCP lease, answers ping, reads its metadata from
kumo's metadata server and runs its user-data script; and nothing of it
leaks to the machine.

Two halves in one file:
  - outside (ctest runs this): builds the demo guest (tools/mkimage needs
    apt, so before entering), runs the inside half under private_host.sh,
    then checks the machine: no kbr1, no private libvirtd/virtlogd/qemu/
    dnsmasq process left, the system libvirtd does not know the domain;
  - inside (KUMO_PRIVATE_HOST=1): bridge kbr1 10.99.0.1/24 with dnsmasq
    (DHCP only, a fixed lease for the guest's MAC), the real metadata
    server (kumo_imds_serve: net/metadata_server.cpp) on 169.254.169.254:80
    with a user-data script for the guest's address, and the demo guest
    defined and started with virsh on the private libvirtd.

Needs root. Run: KUMO_BIN_DIR=build/bin /usr/bin/python3 tests/e2e/test_private_host.py -v
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(os.environ.get("KUMO_BIN_DIR", os.path.join(ROOT, "build", "bin")))
GUEST_DIR = os.path.join(BIN, "guest")
DOMAIN = os.environ.get("KUMO_PH_DOMAIN", "kumo-ph-%d" % os.getpid())
BRIDGE = "kbr1"
HOST_IP = "10.99.0.1"
GUEST_IP = "10.99.0.10"
GUEST_MAC = "52:54:00:99:00:10"
INSTANCE_ID = "i-0123456789abcdef0"
USER_DATA = """#!/bin/sh
mkdir -p /tmp/www
echo "hello from $(cat /proc/sys/kernel/hostname)" >/tmp/www/index.html
exec httpd -f -p 8080 -h /tmp/www
"""


def eventually(fn, timeout, what):
    """Polls fn() until it returns something truthy (no fixed sleeps)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def virsh(*args, check=False):
    return run("virsh", "-c", "qemu:///system", *args, check=check)


def domain_xml(console):
    # As hypervisor/libvirt_driver.cpp writes it (TCG, q35, direct kernel
    # boot, file console), with one NIC on the bridge.
    ports = "<controller type='pci' model='pcie-root-port'/>" * 3
    return f"""<domain type='qemu'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{GUEST_DIR}/vmlinuz</kernel><initrd>{GUEST_DIR}/initrd.img</initrd>
    <cmdline>console=ttyS0 panic=-1 kumo.instance_id={INSTANCE_ID}</cmdline></os>
  <features><acpi/><apic/></features><clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <interface type='bridge'><source bridge='{BRIDGE}'/><mac address='{GUEST_MAC}'/><model type='virtio'/></interface>
    <serial type='file'><source path='{console}' append='on'/><target port='0'/></serial>
    <console type='file'><source path='{console}' append='on'/><target type='serial' port='0'/></console>
    <controller type='usb' model='none'/><memballoon model='none'/>
    <controller type='pci' index='0' model='pcie-root'/>{ports}
  </devices>
</domain>"""


@unittest.skipUnless(os.environ.get("KUMO_PRIVATE_HOST") == "1", "runs inside tests/e2e/private_host.sh")
class PrivateHostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kumo-private-host-")
        cls.console = os.path.join(cls.tmp, "console.log")
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", HOST_IP + "/24", "dev", BRIDGE)
        run("ip", "addr", "add", "169.254.169.254/32", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        # The real metadata server; the guest is known by its address.
        table = os.path.join(cls.tmp, "imds.json")
        with open(table, "w") as f:
            json.dump({GUEST_IP: {"instance_id": INSTANCE_ID, "user_data": USER_DATA}}, f)
        cls.imds = subprocess.Popen([os.path.join(BIN, "kumo_imds_serve"), "169.254.169.254", "80", table],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = cls.imds.stdout.readline()
        assert line.startswith("listening 169.254.169.254:80"), "kumo_imds_serve: %r" % line
        cls.dnsmasq = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root",
             "--interface=" + BRIDGE, "--bind-interfaces", "--except-interface=lo",
             "--dhcp-range=10.99.0.100,10.99.0.200,255.255.255.0,1h",
             "--dhcp-host=%s,%s" % (GUEST_MAC, GUEST_IP),
             "--dhcp-leasefile=" + os.path.join(cls.tmp, "leases"),
             "--pid-file=" + os.path.join(cls.tmp, "dnsmasq.pid"),
             "--log-dhcp", "--log-facility=" + os.path.join(cls.tmp, "dnsmasq.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # it logs to the file
        xml = os.path.join(cls.tmp, "domain.xml")
        with open(xml, "w") as f:
            f.write(domain_xml(cls.console))
        virsh("define", xml, check=True)
        virsh("start", DOMAIN, check=True)

    @classmethod
    def tearDownClass(cls):
        virsh("destroy", DOMAIN)
        virsh("undefine", DOMAIN)
        cls.dnsmasq.terminate()
        cls.dnsmasq.wait(10)
        cls.imds.stdin.close()
        cls.imds.wait(10)
        cls.imds.stdout.close()
        run("ip", "link", "del", BRIDGE, check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def read_console(self):
        try:
            with open(self.console, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def console_lines(self):
        return [l.strip() for l in self.read_console().splitlines()]

    def wait_console(self, line, timeout=90):
        """Waits for a whole console line ("ip 10.99.0.10" must not match "ip 10.99.0.100")."""
        try:
            eventually(lambda: line in self.console_lines(), timeout, repr(line) + " on the console")
        except AssertionError:
            log = os.path.join(self.tmp, "dnsmasq.log")
            extra = open(log).read() if os.path.exists(log) else ""
            raise AssertionError("no %r; console:\n%s\ndnsmasq:\n%s" % (line, self.read_console()[-3000:], extra))

    def test_guest_on_the_private_bridge(self):
        self.assertEqual(os.environ.get("KUMO_PRIVATE_HOST"), "1")
        self.assertEqual(virsh("domstate", DOMAIN).stdout.strip(), "running")
        # The tap libvirt made is on our bridge, in this namespace.
        ifaces = virsh("domiflist", DOMAIN, check=True).stdout
        self.assertIn(BRIDGE, ifaces)
        self.assertIn(GUEST_MAC, ifaces)

        self.wait_console("kumo-guest: ip " + GUEST_IP)
        # Ping from the host side of the bridge.
        eventually(lambda: run("busybox", "ping", "-c", "1", "-W", "1", GUEST_IP, check=False).returncode == 0,
                   30, "ping " + GUEST_IP)
        # Metadata through the bridge; the user-data script starts a listener.
        self.wait_console("kumo-guest: metadata instance-id " + INSTANCE_ID, 60)
        self.wait_console("kumo-guest: user-data #!/bin/sh", 30)
        self.wait_console("kumo-guest: user-data ran", 30)

        def fetch():
            try:
                return urllib.request.urlopen("http://%s:8080/" % GUEST_IP, timeout=3).read().decode()
            except OSError:
                return None
        self.assertEqual(eventually(fetch, 60, "the guest's httpd").strip(), "hello from " + INSTANCE_ID)
        # Once only, even though DHCP renewals may fetch metadata again.
        self.assertEqual(self.console_lines().count("kumo-guest: user-data ran"), 1)


def host_leftovers(markers):
    """Processes on the machine whose command line holds one of `markers`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in markers) and "test_private_host.py" not in cmd:
            found.append("%s: %s" % (pid, cmd))
    return found


def outside():
    """Runs the inside half on a private host, then checks the machine."""
    r = run(os.path.join(ROOT, "tools", "mkimage"), GUEST_DIR, check=False)
    if r.returncode != 0:
        print("tools/mkimage failed:\n" + r.stdout + r.stderr, file=sys.stderr)
        return 1
    links_before = run("ip", "-o", "link").stdout
    assert BRIDGE + ":" not in links_before, "%s already exists on the machine; refusing to run" % BRIDGE
    env = dict(os.environ, KUMO_PH_DOMAIN=DOMAIN, KUMO_BIN_DIR=BIN)
    inner = subprocess.run([os.path.join(HERE, "private_host.sh"), sys.executable, os.path.abspath(__file__)]
                           + sys.argv[1:], env=env)

    problems = []
    links_after = run("ip", "-o", "link").stdout
    if BRIDGE + ":" in links_after:
        problems.append("%s appeared in the machine's namespace" % BRIDGE)
    new_links = {l.split(":")[1].strip() for l in links_after.splitlines()} - \
        {l.split(":")[1].strip() for l in links_before.splitlines()}
    if new_links:
        problems.append("new links on the machine: %s" % sorted(new_links))
    leftovers = host_leftovers(["private-libvirtd.pid", "private-virtlogd.pid", "guest=" + DOMAIN,
                                "dhcp-host=" + GUEST_MAC])
    if leftovers:
        problems.append("processes left running:\n  " + "\n  ".join(leftovers))
    with open("/proc/mounts") as f:
        if "kumo-private-host" in f.read():
            problems.append("a private tmpfs is mounted on the machine")
    # The system libvirtd, if one runs, never heard of the domain.
    listed = virsh("list", "--all", "--name")
    if listed.returncode == 0 and DOMAIN in listed.stdout.split():
        problems.append("the system libvirtd lists %s" % DOMAIN)
    for p in problems:
        print("LEAK: " + p, file=sys.stderr)
    if inner.returncode != 0:
        print("the test inside private_host.sh failed (exit %d)" % inner.returncode, file=sys.stderr)
    return 1 if problems or inner.returncode != 0 else 0


if __name__ == "__main__":
    if os.environ.get("KUMO_PRIVATE_HOST") == "1":
        unittest.main()
    else:
        sys.exit(outside())
