// The hypervisor driver: what a node does to virtual machines. Two
// implementations: libvirt (real QEMU/KVM guests) and fake (in-process,
// instant; unit and scale tests). Calls are synchronous and may block (libvirt
// does I/O); the node actor calls them from a detached actor.
//
// Domains are named after instance ids and carry kumo metadata in their
// definition, so a restarted node recognises its own domains and leaves
// everything else on the host alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kumo::hypervisor {

// Success, or what failed with enough context to act on.
struct result {
  bool ok = true;
  std::string message;
  static result success() { return {}; }
  static result failure(std::string why) { return {false, std::move(why)}; }
  explicit operator bool() const { return ok; }
};

enum class domain_state { absent, running, paused, shutting_down, shut_off, crashed, other };
const char* to_string(domain_state s);

struct disk_spec {
  std::string path;        // backing file on the node
  std::string target_dev;  // "vda", "vdb", ... (virtio)
  std::string format = "raw";  // raw | qcow2
  bool read_only = false;
};

struct nic_spec {
  std::string mac;     // "02:..." chosen by the control plane
  std::string bridge;  // Linux bridge to plug the tap into; empty = no network
  std::string tap;     // tap device name on the host (<= 15 chars)
};

// Everything needed to (re)create a domain. Deterministic from the log, so a
// node can always rebuild it.
struct domain_spec {
  std::string name;        // the instance id, e.g. i-0123456789abcdef0
  std::string account_id;  // kumo metadata
  std::string instance_type;
  unsigned vcpus = 1;
  uint64_t memory_mib = 256;
  // Direct kernel boot when `kernel` is set (the demo guest); else boot from disks[0].
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::vector<disk_spec> disks;
  std::vector<nic_spec> nics;
  std::string console_log;  // the serial console is written to this file
};

struct domain_info {
  std::string name;
  domain_state state = domain_state::absent;
  bool kumo = false;        // carries kumo metadata (ours)
  std::string account_id;   // from the metadata
};

// A lifecycle change the hypervisor noticed (guest shut itself down, crashed...).
struct lifecycle_event {
  std::string name;
  domain_state state = domain_state::other;
  std::string reason;  // e.g. "shutdown", "destroyed", "crashed", "started"
};

class driver {
 public:
  virtual ~driver() = default;

  // What this driver is, for logs: "libvirt qemu:///system, accel=tcg".
  virtual std::string describe() const = 0;

  // Persistent definition (survives stop; replaced if it exists and is shut off).
  virtual result define(const domain_spec& spec) = 0;
  virtual result start(const std::string& name) = 0;
  // Asks the guest to power off (ACPI). The caller destroys after a grace period.
  virtual result shutdown(const std::string& name) = 0;
  // Reboot: graceful (ACPI) or a hard reset.
  virtual result reboot(const std::string& name, bool hard) = 0;
  // Pulls the plug. Destroying a domain that is not running is not an error.
  virtual result destroy(const std::string& name) = 0;
  // Removes the definition. Undefining an unknown domain is not an error.
  virtual result undefine(const std::string& name) = 0;

  virtual domain_state state(const std::string& name) = 0;
  virtual std::vector<domain_info> list() = 0;
  // The last `max_bytes` of the serial console.
  virtual std::string console_output(const std::string& name, size_t max_bytes = 64 * 1024) = 0;

  // Hot-plug on a running domain (and in its persistent definition).
  virtual result attach_disk(const std::string& name, const disk_spec& disk) = 0;
  virtual result detach_disk(const std::string& name, const std::string& target_dev) = 0;
  // The disks the domain has now (live when running, else its definition);
  // empty when there is no such domain, nullopt when the hypervisor could not say.
  virtual std::optional<std::vector<disk_spec>> disks(const std::string& name) = 0;
  virtual result attach_nic(const std::string& name, const nic_spec& nic) = 0;
  virtual result detach_nic(const std::string& name, const std::string& mac) = 0;

  // Called from the driver's own thread on every lifecycle change of any
  // domain. Set once, before the first call that changes a domain.
  virtual void on_lifecycle(std::function<void(const lifecycle_event&)> callback) = 0;
};

// The fake driver: domains in memory, transitions instant. `console_line` is
// written to a domain's console when it starts (tests look for it).
struct fake_options {
  std::string console_line = "kumo-guest: booted";
  bool guest_honours_shutdown = true;  // false: ACPI shutdown is ignored
};
std::unique_ptr<driver> make_fake_driver(fake_options options = {});

// The libvirt driver on `uri` (e.g. qemu:///system). QEMU TCG by default
// (nested KVM hangs on many hosts); KUMO_ACCEL=kvm uses KVM when /dev/kvm
// works. describe() says which, and why. nullptr + `error` when the
// hypervisor cannot be reached.
std::unique_ptr<driver> make_libvirt_driver(const std::string& uri, std::string& error);

}  // namespace kumo::hypervisor
