"""A real OpenLDAP slapd for tests: config generated in a temp dir, listening
on 127.0.0.1 on a free port, loaded with ldapadd. Debian's slapd/ldap-utils."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

SUFFIX = "dc=kumo,dc=test"
ADMIN_DN = "cn=admin," + SUFFIX
ADMIN_PW = "admin-secret"
PEOPLE = "ou=people," + SUFFIX
GROUPS = "ou=groups," + SUFFIX


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_dn(name):
    return "uid=%s,%s" % (name, PEOPLE)


def user_ldif(name, password):
    return ("dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n"
            % (user_dn(name), name, name, name, password))


def group_ldif(name, members):
    lines = ["dn: cn=%s,%s" % (name, GROUPS), "objectClass: groupOfNames", "cn: " + name]
    lines += ["member: " + user_dn(m) for m in members] or ["member: " + ADMIN_DN]
    return "\n".join(lines) + "\n\n"


class Slapd:
    """`tls`: also a self-signed certificate for 127.0.0.1 (StartTLS on the
    ldap:// port, and an ldaps:// port); `self.ca` is its file."""

    def __init__(self, tls=False):
        self.dir = tempfile.mkdtemp(prefix="kumo-slapd-")
        os.makedirs(os.path.join(self.dir, "db"))
        self.port = free_port()
        self.uri = "ldap://127.0.0.1:%d" % self.port
        self.ldaps_uri = "ldaps://127.0.0.1:%d" % free_port() if tls else None
        self.conf = os.path.join(self.dir, "slapd.conf")
        tls_conf = ""
        if tls:
            self.ca = os.path.join(self.dir, "cert.pem")
            key = os.path.join(self.dir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", self.ca], check=True, capture_output=True)
            tls_conf = "TLSCertificateFile %s\nTLSCertificateKeyFile %s\n" % (self.ca, key)
        with open(self.conf, "w") as f:
            f.write("""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
sizelimit unlimited
{tls}database mdb
maxsize 104857600
suffix "{suffix}"
rootdn "{admin}"
rootpw {pw}
directory {dir}/db
access to attrs=userPassword by self read by anonymous auth by * none
access to * by * read
""".format(dir=self.dir, suffix=SUFFIX, admin=ADMIN_DN, pw=ADMIN_PW, tls=tls_conf))
        self.proc = None
        self.start()
        self.add("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: kumo\no: kumo\n\n"
                 "dn: %s\nobjectClass: organizationalUnit\nou: people\n\n"
                 "dn: %s\nobjectClass: organizationalUnit\nou: groups\n\n" % (SUFFIX, PEOPLE, GROUPS))

    def start(self):
        urls = self.uri + "/" + (" " + self.ldaps_uri + "/" if self.ldaps_uri else "")
        self.proc = subprocess.Popen(["/usr/sbin/slapd", "-f", self.conf, "-h", urls, "-d", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            r = subprocess.run(["ldapsearch", "-x", "-H", self.uri, "-b", "", "-s", "base", "-LLL", "dn"],
                               capture_output=True)
            if r.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("slapd exited with %d" % self.proc.returncode)
            time.sleep(0.05)
        raise RuntimeError("slapd did not answer on " + self.uri)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, tool, ldif, *extra):
        r = subprocess.run([tool, "-x", "-H", self.uri, "-D", ADMIN_DN, "-w", ADMIN_PW] + list(extra),
                           input=ldif, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (tool, r.stderr))

    def add(self, ldif):
        self._run("ldapadd", ldif)

    def modify(self, ldif):
        self._run("ldapmodify", ldif)

    def delete(self, dn):
        self._run("ldapdelete", "", dn)

    def kumod_flags(self, sync_seconds=0, uri=None):
        secret = os.path.join(self.dir, "bind-password")
        with open(secret, "w") as f:
            f.write(ADMIN_PW + "\n")
        return ["--ldap-uri=" + (uri or self.uri), "--ldap-bind-dn=" + ADMIN_DN, "--ldap-bind-password-file=" + secret,
                "--ldap-user-base=" + PEOPLE, "--ldap-group-base=" + GROUPS,
                "--ldap-sync-seconds=%d" % sync_seconds]
