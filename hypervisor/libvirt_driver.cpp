// The libvirt driver: one connection behind a mutex, a process-wide libvirt
// event loop thread delivering lifecycle events, and domain XML generated from
// a domain_spec (kumo metadata included, so list() can tell ours apart).
#include "hypervisor/driver.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace kumo::hypervisor {
namespace {

constexpr const char* kMetadataUri = "https://kumo.dev/xmlns/instance/1";
constexpr const char* kMetadataPrefix = "kumo";
// Free PCIe root ports left in every domain so disks and NICs can be
// hot-plugged on q35 (libvirt only adds as many ports as defined devices need).
constexpr int kSpareRootPorts = 8;

// ---------------------------------------------------------------- XML helpers

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string xml_unescape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    auto semi = s.find(';', i);
    if (semi == std::string::npos) {
      out += s.substr(i);
      break;
    }
    auto ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      // Numeric references: only ASCII matters for ids and paths we write.
      long code = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X') ? std::strtol(ent.c_str() + 2, nullptr, 16)
                                                                     : std::strtol(ent.c_str() + 1, nullptr, 10);
      if (code > 0 && code < 128) out += static_cast<char>(code);
    } else {
      out += s.substr(i, semi - i + 1);
    }
    i = semi;
  }
  return out;
}

// The text of the first element whose local name is `local` (any prefix):
// enough for the flat metadata element libvirt hands back.
std::string element_text(const std::string& xml, const std::string& local) {
  for (size_t pos = 0; (pos = xml.find('<', pos)) != std::string::npos; ++pos) {
    auto end = xml.find('>', pos);
    if (end == std::string::npos) break;
    std::string tag = xml.substr(pos + 1, end - pos - 1);
    if (tag.empty() || tag[0] == '/' || tag.back() == '/') continue;
    auto name = tag.substr(0, tag.find_first_of(" \t\r\n"));
    auto colon = name.find(':');
    if ((colon == std::string::npos ? name : name.substr(colon + 1)) != local) continue;
    auto close = xml.find("</", end);
    if (close == std::string::npos) break;
    return xml_unescape(xml.substr(end + 1, close - end - 1));
  }
  return {};
}

// The value of attribute `attr` in the first `<element ...>` whose opening tag
// contains `marker` (libvirt formats attributes with single quotes).
std::string attribute_after(const std::string& xml, const std::string& marker, const std::string& attr) {
  auto at = xml.find(marker);
  if (at == std::string::npos) return {};
  auto key = attr + "='";
  auto v = xml.find(key, at);
  if (v == std::string::npos) return {};
  v += key.size();
  auto q = xml.find('\'', v);
  return q == std::string::npos ? std::string{} : xml_unescape(xml.substr(v, q - v));
}

// The <interface> element with this MAC (libvirt writes MACs in lower case),
// without its <address/>: a hot-plugged device's live PCI address can differ
// from the one in the definition, and libvirt would then not match it.
std::string interface_element(const std::string& xml, std::string mac) {
  for (auto& c : mac) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto at = xml.find("<mac address='" + xml_escape(mac) + "'/>");
  if (at == std::string::npos) return {};
  auto open = xml.rfind("<interface ", at);
  auto close = xml.find("</interface>", at);
  if (open == std::string::npos || close == std::string::npos) return {};
  auto block = xml.substr(open, close + std::strlen("</interface>") - open);
  for (size_t a; (a = block.find("<address ")) != std::string::npos;) {
    auto e = block.find("/>", a);
    if (e == std::string::npos) break;
    block.erase(a, e + 2 - a);
  }
  return block;
}

std::string disk_xml(const disk_spec& d) {
  std::ostringstream x;
  x << "<disk type='file' device='disk'>"
    // Default cache (writeback): cache='none' needs O_DIRECT, which tmpfs and
    // some overlay file systems refuse.
    << "<driver name='qemu' type='" << xml_escape(d.format.empty() ? "raw" : d.format) << "' discard='unmap'/>"
    << "<source file='" << xml_escape(d.path) << "'/>"
    << "<target dev='" << xml_escape(d.target_dev) << "' bus='virtio'/>";
  if (d.read_only) x << "<readonly/>";
  x << "</disk>";
  return x.str();
}

// The file-backed disks of a domain's XML (the inverse of disk_xml).
std::vector<disk_spec> disks_in(const std::string& xml) {
  std::vector<disk_spec> out;
  for (size_t at = 0; (at = xml.find("<disk ", at)) != std::string::npos;) {
    auto end = xml.find("</disk>", at);
    if (end == std::string::npos) break;
    auto block = xml.substr(at, end - at);
    at = end;
    disk_spec d;
    d.path = attribute_after(block, "<source ", "file");
    d.target_dev = attribute_after(block, "<target ", "dev");
    d.format = attribute_after(block, "<driver ", "type");
    d.read_only = block.find("<readonly/>") != std::string::npos;
    if (!d.path.empty()) out.push_back(std::move(d));
  }
  return out;
}

std::string nic_xml(const nic_spec& n) {
  std::ostringstream x;
  // No bridge: the guest still gets its NIC, on a tap plugged into nothing.
  if (n.bridge.empty()) {
    x << "<interface type='ethernet'>";
  } else {
    x << "<interface type='bridge'><source bridge='" << xml_escape(n.bridge) << "'/>";
  }
  if (!n.tap.empty()) x << "<target dev='" << xml_escape(n.tap) << "'/>";
  if (!n.mac.empty()) x << "<mac address='" << xml_escape(n.mac) << "'/>";
  x << "<model type='virtio'/></interface>";
  return x.str();
}

std::string domain_xml(const domain_spec& s, const std::string& domain_type, const std::string& uuid) {
  std::ostringstream x;
  x << "<domain type='" << domain_type << "'>"
    << "<name>" << xml_escape(s.name) << "</name>";
  if (!uuid.empty()) x << "<uuid>" << xml_escape(uuid) << "</uuid>";
  x << "<metadata><" << kMetadataPrefix << ":instance xmlns:" << kMetadataPrefix << "=\"" << kMetadataUri << "\">"
    << "<kumo:account>" << xml_escape(s.account_id) << "</kumo:account>"
    << "<kumo:type>" << xml_escape(s.instance_type) << "</kumo:type>"
    << "</kumo:instance></metadata>"
    << "<memory unit='MiB'>" << s.memory_mib << "</memory>"
    << "<vcpu>" << (s.vcpus ? s.vcpus : 1) << "</vcpu>"
    << "<os><type arch='x86_64' machine='q35'>hvm</type>";
  if (!s.kernel.empty()) {
    x << "<kernel>" << xml_escape(s.kernel) << "</kernel>";
    if (!s.initrd.empty()) x << "<initrd>" << xml_escape(s.initrd) << "</initrd>";
    if (!s.cmdline.empty()) x << "<cmdline>" << xml_escape(s.cmdline) << "</cmdline>";
  } else {
    x << "<boot dev='hd'/>";
  }
  x << "</os>"
    // ACPI: shutdown() is a power-button press the guest must see.
    << "<features><acpi/><apic/></features>"
    << "<clock offset='utc'/>"
    << "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>"
    << "<devices>";
  for (const auto& d : s.disks) x << disk_xml(d);
  for (const auto& n : s.nics) x << nic_xml(n);
  if (!s.console_log.empty()) {
    auto path = xml_escape(s.console_log);
    // append: a restarted guest adds to the log instead of truncating it.
    x << "<serial type='file'><source path='" << path << "' append='on'/><target port='0'/></serial>"
      << "<console type='file'><source path='" << path << "' append='on'/><target type='serial' port='0'/></console>";
  }
  // No USB, no balloon: nothing uses them and each would take a PCIe port.
  x << "<controller type='usb' model='none'/><memballoon model='none'/>";
  // Index 0 must be the root complex before any port can be added.
  x << "<controller type='pci' index='0' model='pcie-root'/>";
  int ports = static_cast<int>(s.disks.size() + s.nics.size()) + kSpareRootPorts;
  for (int i = 0; i < ports; ++i) x << "<controller type='pci' model='pcie-root-port'/>";
  x << "</devices></domain>";
  return x.str();
}

// ---------------------------------------------------------------- libvirt glue

struct domain_handle {
  virDomainPtr p = nullptr;
  domain_handle() = default;
  explicit domain_handle(virDomainPtr d) : p(d) {}
  domain_handle(const domain_handle&) = delete;
  domain_handle& operator=(const domain_handle&) = delete;
  domain_handle(domain_handle&& o) noexcept : p(o.p) { o.p = nullptr; }
  ~domain_handle() {
    if (p) virDomainFree(p);
  }
  explicit operator bool() const { return p != nullptr; }
};

std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m && *m ? m : "unknown libvirt error";
}

int last_error_code() {
  virErrorPtr e = virGetLastError();
  return e ? e->code : VIR_ERR_OK;
}

// libvirt prints every error to stderr by default; ours are returned to the
// caller with context, so only keep them in the debug log.
void libvirt_error_sink(void*, virErrorPtr err) {
  if (err && err->message) spdlog::debug("libvirt: {} (code {})", err->message, err->code);
}

domain_state map_state(int st) {
  switch (st) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED: return domain_state::running;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED: return domain_state::paused;
    case VIR_DOMAIN_SHUTDOWN: return domain_state::shutting_down;
    case VIR_DOMAIN_SHUTOFF: return domain_state::shut_off;
    case VIR_DOMAIN_CRASHED: return domain_state::crashed;
    default: return domain_state::other;
  }
}

// Lifecycle event → (state, reason). nullopt-like: reason empty = not reported.
lifecycle_event map_event(const std::string& name, int event, int detail) {
  lifecycle_event e{name, domain_state::other, {}};
  switch (event) {
    case VIR_DOMAIN_EVENT_UNDEFINED:
      e.state = domain_state::absent;
      e.reason = "undefined";
      break;
    case VIR_DOMAIN_EVENT_STARTED:
      e.state = domain_state::running;
      e.reason = detail == VIR_DOMAIN_EVENT_STARTED_RESTORED ? "restored"
                 : detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? "migrated"
                 : detail == VIR_DOMAIN_EVENT_STARTED_WAKEUP   ? "woken"
                                                               : "started";
      break;
    case VIR_DOMAIN_EVENT_SUSPENDED:
      e.state = domain_state::paused;
      e.reason = detail == VIR_DOMAIN_EVENT_SUSPENDED_IOERROR    ? "io-error"
                 : detail == VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG ? "watchdog"
                                                                 : "paused";
      break;
    case VIR_DOMAIN_EVENT_RESUMED:
      e.state = domain_state::running;
      e.reason = "resumed";
      break;
    case VIR_DOMAIN_EVENT_STOPPED:
      e.state = domain_state::shut_off;
      switch (detail) {
        case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: e.reason = "shutdown"; break;
        case VIR_DOMAIN_EVENT_STOPPED_DESTROYED: e.reason = "destroyed"; break;
        case VIR_DOMAIN_EVENT_STOPPED_CRASHED: e.reason = "crashed"; break;
        case VIR_DOMAIN_EVENT_STOPPED_MIGRATED: e.reason = "migrated"; break;
        case VIR_DOMAIN_EVENT_STOPPED_SAVED: e.reason = "saved"; break;
        case VIR_DOMAIN_EVENT_STOPPED_FAILED: e.reason = "failed"; break;
        default: e.reason = "stopped";
      }
      break;
    case VIR_DOMAIN_EVENT_SHUTDOWN:
      // The guest finished its shutdown sequence; STOPPED follows.
      e.state = domain_state::shutting_down;
      e.reason = "guest-shutdown";
      break;
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
      e.state = domain_state::paused;
      e.reason = "pm-suspended";
      break;
    case VIR_DOMAIN_EVENT_CRASHED:
      e.state = domain_state::crashed;
      e.reason = "crashed";
      break;
    default:
      // DEFINED is a configuration change, not a state change.
      break;
  }
  return e;
}

// ---------------------------------------------------------------- event loop

// libvirt's default event loop is process-wide: one thread runs it for all
// drivers; the last driver to go stops and joins it.
class event_loop {
 public:
  static event_loop& instance() {
    // Never destroyed: a driver outliving static destruction must not meet a
    // destroyed loop (or a joinable std::thread at exit).
    static auto* loop = new event_loop;
    return *loop;
  }

  // Returns false + error when libvirt's event implementation cannot be set up.
  bool acquire(std::string& error) {
    std::lock_guard lock(mutex_);
    static std::once_flag once;
    static int init_rc = 0;
    std::call_once(once, [] {
      virSetErrorFunc(nullptr, libvirt_error_sink);
      if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) init_rc = -1;
    });
    if (init_rc < 0) {
      error = "cannot initialise libvirt's event loop: " + last_error();
      return false;
    }
    if (refs_++ == 0) {
      stop_ = false;
      thread_ = std::thread([this] { run(); });
    }
    return true;
  }

  void release() {
    std::lock_guard lock(mutex_);
    if (--refs_ > 0) return;
    stop_ = true;
    // A zero-delay timer makes the blocked iteration return so the thread
    // sees stop_; the timer removes itself when it fires.
    int timer = virEventAddTimeout(0, &event_loop::wake, nullptr, nullptr);
    if (timer < 0) spdlog::warn("libvirt event loop: cannot add wake-up timer: {}", last_error());
    thread_.join();
  }

 private:
  static void wake(int timer, void*) { virEventRemoveTimeout(timer); }

  void run() {
    while (!stop_) {
      if (virEventRunDefaultImpl() < 0) spdlog::warn("libvirt event loop: {}", last_error());
    }
  }

  std::mutex mutex_;
  int refs_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------- the driver

// What libvirt's callbacks (on the event loop thread) reach; shared so a late
// callback never touches a destroyed driver.
struct callback_state {
  std::mutex mutex;
  std::function<void(const lifecycle_event&)> on_lifecycle;
  std::atomic<bool> connection_closed{false};
  std::string uri;

  void deliver(const lifecycle_event& e) {
    std::lock_guard lock(mutex);  // held while calling: the destructor waits for a running callback
    if (on_lifecycle) on_lifecycle(e);
  }

  // QEMU reports several resets for one reboot (the firmware resets again
  // while starting): one "rebooted" per burst, like the fake driver.
  void deliver_reboot(const std::string& name) {
    {
      std::lock_guard lock(mutex);
      auto now = std::chrono::steady_clock::now();
      auto [it, fresh] = last_reboot.try_emplace(name, now);
      if (!fresh && now - it->second < std::chrono::seconds(2)) return;
      it->second = now;
      if (last_reboot.size() > 4096) last_reboot.clear();  // bounded; a lost entry costs one extra event
    }
    deliver({name, domain_state::running, "rebooted"});
  }

 private:
  std::map<std::string, std::chrono::steady_clock::time_point> last_reboot;
};
using callback_ref = std::shared_ptr<callback_state>;

void free_callback_ref(void* opaque) { delete static_cast<callback_ref*>(opaque); }

int on_lifecycle_event(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  auto& state = *static_cast<callback_ref*>(opaque);
  const char* name = virDomainGetName(dom);
  auto e = map_event(name ? name : "", event, detail);
  spdlog::debug("libvirt event: domain {} event {} detail {} -> {} ({})", e.name, event, detail,
                to_string(e.state), e.reason);
  if (!e.reason.empty()) state->deliver(e);
  return 0;
}

void on_reboot_event(virConnectPtr, virDomainPtr dom, void* opaque) {
  auto& state = *static_cast<callback_ref*>(opaque);
  const char* name = virDomainGetName(dom);
  state->deliver_reboot(name ? name : "");
}

void on_connection_closed(virConnectPtr, int reason, void* opaque) {
  auto* state = static_cast<callback_state*>(opaque);
  static const char* reasons[] = {"error", "end of file", "keepalive timeout", "closed by client"};
  const char* why = reason >= 0 && reason < 4 ? reasons[reason] : "unknown reason";
  // A close we asked for is no news; anything else means the next call reconnects.
  if (reason != VIR_CONNECT_CLOSE_REASON_CLIENT)
    spdlog::warn("libvirt connection to {} closed: {}; will reconnect on next use", state->uri, why);
  state->connection_closed = true;
}

class libvirt_driver final : public driver {
 public:
  explicit libvirt_driver(std::string uri) : uri_(std::move(uri)), callbacks_(std::make_shared<callback_state>()) {
    callbacks_->uri = uri_;
  }

  ~libvirt_driver() override {
    {
      // No user callback runs after this block (a running one is waited for).
      std::lock_guard lock(callbacks_->mutex);
      callbacks_->on_lifecycle = nullptr;
    }
    {
      std::lock_guard lock(mutex_);
      disconnect_locked();
    }
    if (loop_acquired_) event_loop::instance().release();
  }

  // Opens the connection and chooses the accelerator; false + error if not.
  bool init(std::string& error) {
    if (!event_loop::instance().acquire(error)) return false;
    loop_acquired_ = true;
    std::lock_guard lock(mutex_);
    if (!connect_locked(error)) return false;
    choose_accelerator_locked();
    return true;
  }

  std::string describe() const override { return "libvirt " + uri_ + ", accel=" + accel_note_; }

  result define(const domain_spec& spec) override {
    if (spec.name.empty()) return result::failure("define: the domain needs a name");
    std::lock_guard lock(mutex_);
    if (auto r = ensure_connected_locked(); !r) return context(r, "define", spec.name);
    std::string uuid;
    if (domain_handle d{virDomainLookupByName(conn_, spec.name.c_str())}) {
      // Redefining keeps the UUID (libvirt refuses a second UUID for a name);
      // a running domain would only get a pending config, which we refuse.
      if (virDomainIsActive(d.p) == 1) return result::failure("define " + spec.name + ": domain is running");
      char buf[VIR_UUID_STRING_BUFLEN];
      if (virDomainGetUUIDString(d.p, buf) == 0) uuid = buf;
    }
    auto xml = domain_xml(spec, domain_type_, uuid);
    domain_handle d{virDomainDefineXML(conn_, xml.c_str())};
    if (!d) return fail("define", spec.name);
    spdlog::info("libvirt: defined domain {} ({} vcpu, {} MiB, {} disk(s), {} nic(s))", spec.name, spec.vcpus,
                 spec.memory_mib, spec.disks.size(), spec.nics.size());
    return result::success();
  }

  result start(const std::string& name) override {
    return with_domain("start", name, [&](virDomainPtr d) {
      return virDomainCreate(d) == 0 ? result::success() : fail("start", name);
    });
  }

  result shutdown(const std::string& name) override {
    return with_domain("shutdown", name, [&](virDomainPtr d) {
      return virDomainShutdown(d) == 0 ? result::success() : fail("shutdown", name);
    });
  }

  result reboot(const std::string& name, bool hard) override {
    return with_domain("reboot", name, [&](virDomainPtr d) {
      if (hard) return virDomainReset(d, 0) == 0 ? result::success() : fail("reset", name);
      return virDomainReboot(d, 0) == 0 ? result::success() : fail("reboot", name);
    });
  }

  result destroy(const std::string& name) override {
    std::lock_guard lock(mutex_);
    if (auto r = ensure_connected_locked(); !r) return context(r, "destroy", name);
    domain_handle d{virDomainLookupByName(conn_, name.c_str())};
    if (!d) return last_error_code() == VIR_ERR_NO_DOMAIN ? result::success() : fail("destroy", name);
    if (virDomainIsActive(d.p) == 0) return result::success();
    if (virDomainDestroy(d.p) == 0) return result::success();
    auto r = fail("destroy", name);
    // It may have stopped by itself between the check and the call.
    return virDomainIsActive(d.p) == 0 ? result::success() : r;
  }

  result undefine(const std::string& name) override {
    std::lock_guard lock(mutex_);
    if (auto r = ensure_connected_locked(); !r) return context(r, "undefine", name);
    domain_handle d{virDomainLookupByName(conn_, name.c_str())};
    if (!d) return last_error_code() == VIR_ERR_NO_DOMAIN ? result::success() : fail("undefine", name);
    // libvirt would leave a running domain behind as a transient one that no
    // definition describes; make the caller destroy it first.
    if (virDomainIsActive(d.p) == 1) return result::failure("undefine " + name + ": domain is running");
    unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
    if (virDomainUndefineFlags(d.p, flags) == 0) return result::success();
    return last_error_code() == VIR_ERR_NO_DOMAIN ? result::success() : fail("undefine", name);
  }

  domain_state state(const std::string& name) override {
    std::lock_guard lock(mutex_);
    if (auto r = ensure_connected_locked(); !r) {
      spdlog::warn("libvirt: state of {}: {}", name, r.message);
      return domain_state::other;
    }
    domain_handle d{virDomainLookupByName(conn_, name.c_str())};
    if (!d) {
      if (last_error_code() == VIR_ERR_NO_DOMAIN) return domain_state::absent;
      spdlog::warn("libvirt: state of {}: {}", name, last_error());
      return domain_state::other;
    }
    int st = 0, reason = 0;
    if (virDomainGetState(d.p, &st, &reason, 0) < 0) {
      if (last_error_code() == VIR_ERR_NO_DOMAIN) return domain_state::absent;  // undefined meanwhile
      spdlog::warn("libvirt: state of {}: {}", name, last_error());
      return domain_state::other;
    }
    return map_state(st);
  }

  std::vector<domain_info> list() override {
    std::vector<domain_info> out;
    std::lock_guard lock(mutex_);
    if (auto r = ensure_connected_locked(); !r) {
      spdlog::warn("libvirt: list: {}", r.message);
      return out;
    }
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, 0);
    if (n < 0) {
      spdlog::warn("libvirt: list domains on {}: {}", uri_, last_error());
      return out;
    }
    for (int i = 0; i < n; ++i) {
      domain_handle d{doms[i]};
      domain_info info;
      const char* name = virDomainGetName(d.p);
      info.name = name ? name : "";
      int st = 0, reason = 0;
      if (virDomainGetState(d.p, &st, &reason, 0) < 0) continue;  // vanished meanwhile
      info.state = map_state(st);
      // Ours carry the kumo metadata element; anything else on the host is not.
      if (char* meta = virDomainGetMetadata(d.p, VIR_DOMAIN_METADATA_ELEMENT, kMetadataUri, 0)) {
        info.kumo = true;
        info.account_id = element_text(meta, "account");
        free(meta);
      } else if (last_error_code() != VIR_ERR_NO_DOMAIN_METADATA) {
        spdlog::warn("libvirt: metadata of {}: {}", info.name, last_error());
      }
      out.push_back(std::move(info));
    }
    free(doms);
    return out;
  }

  std::string console_output(const std::string& name, size_t max_bytes) override {
    std::string path;
    {
      std::lock_guard lock(mutex_);
      if (auto r = ensure_connected_locked(); !r) {
        spdlog::warn("libvirt: console of {}: {}", name, r.message);
        return {};
      }
      domain_handle d{virDomainLookupByName(conn_, name.c_str())};
      if (!d) return {};
      // The persistent definition names the file even while shut off.
      char* xml = virDomainGetXMLDesc(d.p, VIR_DOMAIN_XML_INACTIVE);
      if (!xml) {
        spdlog::warn("libvirt: console of {}: {}", name, last_error());
        return {};
      }
      path = attribute_after(xml, "<serial type='file'>", "path");
      free(xml);
    }
    if (path.empty()) return {};
    // virtlogd rotates console files (to <path>.0); take the older part
    // from there when the current file is shorter than asked for.
    auto tail = read_tail(path, max_bytes);
    if (tail.size() < max_bytes) tail = read_tail(path + ".0", max_bytes - tail.size()) + tail;
    return tail;
  }

  result attach_disk(const std::string& name, const disk_spec& disk) override {
    return change_device("attach disk " + disk.target_dev + " to", name, disk_xml(disk), true);
  }

  result detach_disk(const std::string& name, const std::string& target_dev) override {
    // libvirt finds a disk by its target alone.
    auto xml = "<disk type='file' device='disk'><target dev='" + xml_escape(target_dev) + "' bus='virtio'/></disk>";
    return change_device("detach disk " + target_dev + " from", name, xml, false);
  }

  std::optional<std::vector<disk_spec>> disks(const std::string& name) override {
    std::string xml;
    {
      std::lock_guard lock(mutex_);
      if (auto r = ensure_connected_locked(); !r) {
        spdlog::warn("libvirt: disks of {}: {}", name, r.message);
        return std::nullopt;
      }
      domain_handle d{virDomainLookupByName(conn_, name.c_str())};
      if (!d) {
        if (last_error_code() == VIR_ERR_NO_DOMAIN) return std::vector<disk_spec>{};
        spdlog::warn("libvirt: disks of {}: {}", name, last_error());
        return std::nullopt;
      }
      char* raw = virDomainGetXMLDesc(d.p, 0);  // live when running, else the definition
      if (!raw) {
        spdlog::warn("libvirt: disks of {}: {}", name, last_error());
        return std::nullopt;
      }
      xml = raw;
      free(raw);
    }
    return disks_in(xml);
  }

  result attach_nic(const std::string& name, const nic_spec& nic) override {
    return change_device("attach nic " + nic.mac + " to", name, nic_xml(nic), true);
  }

  result detach_nic(const std::string& name, const std::string& mac) override {
    const std::string what = "detach nic " + mac + " from";
    return with_domain(what.c_str(), name, [&](virDomainPtr d) {
      // libvirt needs a whole, valid <interface> to find one by its MAC: use
      // the definition's own element.
      char* raw = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
      if (!raw) return fail(what, name);
      auto block = interface_element(raw, mac);
      free(raw);
      if (block.empty()) return result::failure(what + " " + name + ": no interface with that MAC");
      return change_device_locked(d, block, false) ? result::success() : fail(what, name);
    });
  }

  void on_lifecycle(std::function<void(const lifecycle_event&)> callback) override {
    std::lock_guard lock(callbacks_->mutex);
    callbacks_->on_lifecycle = std::move(callback);
  }

 private:
  static std::string read_tail(const std::string& path, size_t max_bytes) {
    if (max_bytes == 0) return {};
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string out;
    struct stat st {};
    if (fstat(fd, &st) == 0) {
      auto size = static_cast<size_t>(st.st_size);
      auto from = size > max_bytes ? size - max_bytes : 0;
      out.resize(size - from);
      auto n = pread(fd, out.data(), out.size(), static_cast<off_t>(from));
      out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
    ::close(fd);
    return out;
  }

  result fail(const std::string& what, const std::string& name) const {
    return result::failure(what + " " + name + ": " + last_error());
  }

  static result context(const result& r, const std::string& what, const std::string& name) {
    return result::failure(what + " " + name + ": " + r.message);
  }

  template <class F>
  result with_domain(const char* what, const std::string& name, F f) {
    std::lock_guard lock(mutex_);
    if (auto r = ensure_connected_locked(); !r) return context(r, what, name);
    domain_handle d{virDomainLookupByName(conn_, name.c_str())};
    if (!d) return fail(what, name);
    return f(d.p);
  }

  result change_device(const std::string& what, const std::string& name, const std::string& xml, bool attach) {
    return with_domain(what.c_str(), name, [&](virDomainPtr d) {
      return change_device_locked(d, xml, attach) ? result::success() : fail(what, name);
    });
  }

  // Live and persistent when running, persistent only when not.
  static bool change_device_locked(virDomainPtr d, const std::string& xml, bool attach) {
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainIsActive(d) == 1) flags |= VIR_DOMAIN_AFFECT_LIVE;
    int rc = attach ? virDomainAttachDeviceFlags(d, xml.c_str(), flags)
                    : virDomainDetachDeviceFlags(d, xml.c_str(), flags);
    return rc == 0;
  }

  bool connect_locked(std::string& error) {
    callbacks_->connection_closed = false;
    conn_ = virConnectOpen(uri_.c_str());
    if (!conn_) {
      error = "cannot connect to libvirt at " + uri_ + ": " + last_error();
      return false;
    }
    // Keepalive lets a dead daemon be noticed (and the close callback fire)
    // even while idle; drivers without it (test://) just say so.
    if (virConnectSetKeepAlive(conn_, 5, 3) < 0) virResetLastError();
    // The close callback gets the state itself, no free function: drivers
    // without close callbacks (test://) accept one and never free it. It
    // cannot outlive us: disconnect_locked() unregisters it.
    if (virConnectRegisterCloseCallback(conn_, on_connection_closed, callbacks_.get(), nullptr) < 0) {
      spdlog::warn("libvirt: no close callback on {}: {}", uri_, last_error());
      virResetLastError();
    }
    // Each event registration owns a reference to the state; libvirt frees it
    // on deregistration, we do when registering fails.
    auto* lifecycle_ref = new callback_ref(callbacks_);
    lifecycle_id_ = virConnectDomainEventRegisterAny(conn_, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                     VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle_event), lifecycle_ref,
                                                     free_callback_ref);
    if (lifecycle_id_ < 0) {
      delete lifecycle_ref;
      error = "cannot subscribe to lifecycle events on " + uri_ + ": " + last_error();
      disconnect_locked();
      return false;
    }
    auto* reboot_ref = new callback_ref(callbacks_);
    reboot_id_ = virConnectDomainEventRegisterAny(conn_, nullptr, VIR_DOMAIN_EVENT_ID_REBOOT,
                                                  VIR_DOMAIN_EVENT_CALLBACK(on_reboot_event), reboot_ref,
                                                  free_callback_ref);
    if (reboot_id_ < 0) {
      delete reboot_ref;
      spdlog::warn("libvirt: no reboot events on {}: {}", uri_, last_error());
      virResetLastError();
    }
    return true;
  }

  void disconnect_locked() {
    if (!conn_) return;
    if (lifecycle_id_ >= 0) virConnectDomainEventDeregisterAny(conn_, lifecycle_id_);
    if (reboot_id_ >= 0) virConnectDomainEventDeregisterAny(conn_, reboot_id_);
    lifecycle_id_ = reboot_id_ = -1;
    virConnectUnregisterCloseCallback(conn_, on_connection_closed);
    virConnectClose(conn_);
    virResetLastError();  // errors from a dead connection's teardown are expected
    conn_ = nullptr;
  }

  // Reconnects once when the connection dropped (daemon restarted...).
  result ensure_connected_locked() {
    if (conn_ && !callbacks_->connection_closed && virConnectIsAlive(conn_) == 1) return result::success();
    spdlog::warn("libvirt: connection to {} lost, reconnecting", uri_);
    disconnect_locked();
    std::string error;
    if (!connect_locked(error)) return result::failure("libvirt connection lost, reconnect failed: " + error);
    spdlog::info("libvirt: reconnected to {} (lifecycle events during the gap were missed)", uri_);
    return result::success();
  }

  // TCG unless KVM is asked for (KUMO_ACCEL=kvm) and usable: nested KVM hangs
  // on the machines we know, so it must be an explicit choice.
  void choose_accelerator_locked() {
    const char* type = virConnectGetType(conn_);
    std::string driver_type = type ? type : "";
    if (driver_type == "Test" || driver_type == "TEST") {
      domain_type_ = "qemu";
      accel_note_ = "none (libvirt test driver)";
      return;
    }
    const char* want = std::getenv("KUMO_ACCEL");
    std::string wanted = want ? want : "";
    domain_type_ = "qemu";
    accel_note_ = "tcg";
    if (wanted != "kvm") {
      if (!wanted.empty() && wanted != "tcg")
        spdlog::warn("libvirt: KUMO_ACCEL={} not understood (kvm|tcg); using tcg", wanted);
      return;
    }
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      accel_note_ = "tcg (KUMO_ACCEL=kvm, but /dev/kvm: " + std::string(std::strerror(errno)) + ")";
      spdlog::warn("libvirt: KUMO_ACCEL=kvm but /dev/kvm cannot be opened ({}); using tcg", std::strerror(errno));
      return;
    }
    ::close(fd);
    char* caps = virConnectGetCapabilities(conn_);
    bool kvm = caps && std::strstr(caps, "<domain type='kvm'") != nullptr;
    free(caps);
    if (!kvm) {
      accel_note_ = "tcg (KUMO_ACCEL=kvm, but libvirt offers no kvm domains)";
      spdlog::warn("libvirt: KUMO_ACCEL=kvm but {} offers no kvm domain type; using tcg", uri_);
      return;
    }
    domain_type_ = "kvm";
    accel_note_ = "kvm";
  }

  const std::string uri_;
  callback_ref callbacks_;
  bool loop_acquired_ = false;

  std::mutex mutex_;  // guards everything below
  virConnectPtr conn_ = nullptr;
  int lifecycle_id_ = -1;
  int reboot_id_ = -1;
  std::string domain_type_ = "qemu";
  std::string accel_note_ = "tcg";
};

}  // namespace

std::unique_ptr<driver> make_libvirt_driver(const std::string& uri, std::string& error) {
  auto d = std::make_unique<libvirt_driver>(uri);
  if (!d->init(error)) return nullptr;
  spdlog::info("hypervisor: {}", d->describe());
  return d;
}

}  // namespace kumo::hypervisor
