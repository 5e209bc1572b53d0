#!/usr/bin/env bash
# Runs CMD on a private "host" for network tests with real guests: new
# network, mount and PID namespaces, with a private libvirtd and virtlogd
# whose state is on tmpfs, so guests, their taps, bridges, dnsmasq and nft
# tables all live in here and the machine's own network and its libvirtd
# are never touched.
#   tests/e2e/private_host.sh CMD [ARG...]      (as root)
# Inside: only lo (up), no route out; qemu:///system is the private libvirtd
# (empty /etc/libvirt/qemu, /var/lib/libvirt, /var/cache/libvirt/qemu,
# /var/log/libvirt, /run/libvirt; its own qemu.conf); /sys shows this
# namespace's links; /tmp and everything else are the machine's. CMD runs
# with KUMO_PRIVATE_HOST=1 and its exit status is ours. On any exit (also
# SIGINT/SIGTERM, or unshare killed) every private domain is destroyed and
# every process in the namespace (libvirtd, virtlogd, qemu, dnsmasq, ...) is
# killed: a daemon does not die with a network namespace. If this script is
# SIGKILLed, the kernel ends its PID namespace and everything in it.
# Domain names should be unique (libvirt names the guests' cgroups, which
# are the machine's, after them).
#   KUMO_PRIVATE_HOST_TIMEOUT  seconds to wait for libvirtd to answer (default 60)
set -euo pipefail

die() { echo "private_host: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: tests/e2e/private_host.sh CMD [ARG...]"
[ "$(id -u)" -eq 0 ] || die "run as root (namespaces, libvirtd)"

if [ -z "${KUMO_PRIVATE_HOST_INSIDE:-}" ]; then
  for b in unshare ip libvirtd virtlogd virsh; do
    command -v "$b" >/dev/null || die "$b not found; run tools/deps"
  done
  # Our qemu.conf is bind-mounted over this one (a mount needs a target).
  [ -f /etc/libvirt/qemu.conf ] || die "/etc/libvirt/qemu.conf missing; run tools/deps (libvirt-daemon-system)"
  # Re-run this script as PID 1 of new network, mount and PID namespaces.
  # The PID namespace is the backstop: when its PID 1 dies, even by
  # SIGKILL, the kernel kills every process in it. --kill-child: unshare
  # itself killed (say by ctest's timeout) sends us SIGTERM, so the trap runs.
  export KUMO_PRIVATE_HOST_INSIDE=1
  exec unshare --net --mount --propagation private --pid --fork --mount-proc \
    --kill-child=TERM -- "$0" "$@"
fi
unset KUMO_PRIVATE_HOST_INSIDE
[ $$ -eq 1 ] || die "not PID 1 of a private PID namespace"
self_netns=$(readlink /proc/self/ns/net)

# --- private state: everything libvirtd and virtlogd write, on tmpfs
state=/run/libvirt   # sockets, pid files, domain status
for d in /run/libvirt /etc/libvirt/qemu /var/lib/libvirt /var/cache/libvirt/qemu /var/log/libvirt; do
  mkdir -p "$d"
  mount -t tmpfs -o mode=0755 kumo-private-host "$d"
done
# sysfs shows the network namespace of whoever mounted it: remount it so
# /sys/class/net is ours (libvirt and ip read bridges there), carrying the
# cgroup mounts (libvirt puts guests into cgroups) over to the new /sys.
mkdir "$state/cgroup"
mount --rbind /sys/fs/cgroup "$state/cgroup"
mount --make-rprivate "$state/cgroup"
umount -l /sys
mount -t sysfs sysfs /sys
mount --move "$state/cgroup" /sys/fs/cgroup
# qemu.conf as tools/libvirtd writes it (guests run as root, no relabelling),
# bind-mounted over the machine's file for this namespace only.
cat >"$state/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
swtpm_user = "root"
swtpm_group = "root"
CONF
mount --bind "$state/qemu.conf" /etc/libvirt/qemu.conf
mkdir -p /var/lib/libvirt/qemu /var/log/libvirt/qemu
ip link set lo up

log=/var/log/libvirt/libvirtd.log
libvirtd_pid=$state/private-libvirtd.pid
virtlogd_pid=$state/private-virtlogd.pid

# The processes of this PID namespace other than this shell (all started in
# here); zombies have no namespace link and are skipped.
namespace_pids() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] || continue
    [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$self_netns" ] && echo "$p"
  done
  return 0
}

cleanup() {
  local rc=$? names n pids
  trap - EXIT INT TERM
  if [ -S /run/libvirt/libvirt-sock ]; then
    names=$(timeout 10 virsh -c qemu:///system list --all --name 2>/dev/null || true)
    for n in $names; do
      timeout 10 virsh -c qemu:///system destroy "$n" >/dev/null 2>&1 || true
      timeout 10 virsh -c qemu:///system undefine "$n" >/dev/null 2>&1 || true
    done
  fi
  # TERM everything left, then KILL what did not go within 5 s.
  pids=$(namespace_pids)
  [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 50); do
    pids=$(namespace_pids)
    [ -n "$pids" ] || break
    sleep 0.1
  done
  if [ -n "$pids" ]; then
    echo "private_host: killing leftovers: $(for p in $pids; do cat "/proc/$p/comm" 2>/dev/null; done | tr '\n' ' ')" >&2
    kill -KILL $pids 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$log" ]; then
    echo "private_host: exit $rc; the end of the private libvirtd's log:" >&2
    tail -n 20 "$log" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export LIBVIRT_LOG_OUTPUTS="3:file:$log"
virtlogd -d -p "$virtlogd_pid" || die "virtlogd -d failed"
libvirtd -d -p "$libvirtd_pid" || die "libvirtd -d failed (log: $log)"

answers() { timeout 5 virsh -c qemu:///system version >/dev/null 2>&1; }
deadline=$(($(date +%s) + ${KUMO_PRIVATE_HOST_TIMEOUT:-60}))
until [ -s "$virtlogd_pid" ] && [ -s "$libvirtd_pid" ] && [ -S /run/libvirt/libvirt-sock ] && answers; do
  if [ -s "$libvirtd_pid" ] && ! kill -0 "$(cat "$libvirtd_pid")" 2>/dev/null; then
    die "the private libvirtd exited during startup"
  fi
  [ "$(date +%s)" -lt "$deadline" ] || die "the private libvirtd did not answer within ${KUMO_PRIVATE_HOST_TIMEOUT:-60}s"
  sleep 0.2
done

export KUMO_PRIVATE_HOST=1
# Not exec: the trap must outlive CMD. In the background with `wait`,
# because bash runs a trap only after the foreground command returns, and a
# SIGTERM must clean up now. Explicit stdin: a background job's would be
# /dev/null.
"$@" <&0 &
set +e
wait $!
rc=$?
set -e
exit "$rc"
