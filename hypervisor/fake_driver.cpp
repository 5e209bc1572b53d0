// The fake driver: a map of domains behind a mutex. Every transition is
// instant and reported through the lifecycle callback like libvirt would.
#include "hypervisor/driver.h"

#include <map>
#include <mutex>

namespace kumo::hypervisor {
namespace {

class fake_driver final : public driver {
 public:
  explicit fake_driver(fake_options o) : options_(std::move(o)) {}

  std::string describe() const override { return "fake (in-process)"; }

  result define(const domain_spec& spec) override {
    std::lock_guard lock(mutex_);
    auto& d = domains_[spec.name];
    if (d.state == domain_state::running) return result::failure("domain " + spec.name + " is running");
    d.spec = spec;
    d.state = domain_state::shut_off;
    return result::success();
  }

  result start(const std::string& name) override {
    return change(name, [&](domain& d) -> result {
      if (d.state == domain_state::running) return result::failure("domain " + name + " is already running");
      d.state = domain_state::running;
      d.console += options_.console_line + "\n";
      return result::success();
    }, "started");
  }

  result shutdown(const std::string& name) override {
    return change(name, [&](domain& d) -> result {
      if (d.state != domain_state::running) return result::failure("domain " + name + " is not running");
      if (options_.guest_honours_shutdown) d.state = domain_state::shut_off;
      return result::success();
    }, "shutdown");
  }

  result reboot(const std::string& name, bool) override {
    return change(name, [&](domain& d) -> result {
      if (d.state != domain_state::running) return result::failure("domain " + name + " is not running");
      d.console += options_.console_line + "\n";
      return result::success();
    }, "rebooted");
  }

  result destroy(const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(name);
    if (it == domains_.end() || it->second.state != domain_state::running) return result::success();
    it->second.state = domain_state::shut_off;
    notify_locked(name, domain_state::shut_off, "destroyed");
    return result::success();
  }

  result undefine(const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(name);
    if (it == domains_.end()) return result::success();
    if (it->second.state == domain_state::running) return result::failure("domain " + name + " is running");
    domains_.erase(it);
    return result::success();
  }

  domain_state state(const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(name);
    return it == domains_.end() ? domain_state::absent : it->second.state;
  }

  std::vector<domain_info> list() override {
    std::lock_guard lock(mutex_);
    std::vector<domain_info> out;
    for (const auto& [name, d] : domains_) out.push_back({name, d.state, true, d.spec.account_id});
    return out;
  }

  std::string console_output(const std::string& name, size_t max_bytes) override {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(name);
    if (it == domains_.end()) return {};
    const auto& c = it->second.console;
    return c.size() > max_bytes ? c.substr(c.size() - max_bytes) : c;
  }

  result attach_disk(const std::string& name, const disk_spec& disk) override {
    return change(name, [&](domain& d) -> result {
      for (const auto& x : d.spec.disks)
        if (x.target_dev == disk.target_dev) return result::failure("target " + disk.target_dev + " is in use");
      d.spec.disks.push_back(disk);
      return result::success();
    }, "");
  }

  result detach_disk(const std::string& name, const std::string& target_dev) override {
    return change(name, [&](domain& d) -> result {
      return erase_if_found(d.spec.disks, [&](const disk_spec& x) { return x.target_dev == target_dev; },
                            "no disk " + target_dev + " on " + name);
    }, "");
  }

  std::optional<std::vector<disk_spec>> disks(const std::string& name) override {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(name);
    if (it == domains_.end()) return std::vector<disk_spec>{};
    return it->second.spec.disks;
  }

  result attach_nic(const std::string& name, const nic_spec& nic) override {
    return change(name, [&](domain& d) -> result {
      d.spec.nics.push_back(nic);
      return result::success();
    }, "");
  }

  result detach_nic(const std::string& name, const std::string& mac) override {
    return change(name, [&](domain& d) -> result {
      return erase_if_found(d.spec.nics, [&](const nic_spec& x) { return x.mac == mac; },
                            "no interface " + mac + " on " + name);
    }, "");
  }

  void on_lifecycle(std::function<void(const lifecycle_event&)> callback) override {
    std::lock_guard lock(mutex_);
    callback_ = std::move(callback);
  }

 private:
  struct domain {
    domain_spec spec;
    domain_state state = domain_state::shut_off;
    std::string console;
  };

  template <class T, class Pred>
  static result erase_if_found(std::vector<T>& v, Pred pred, const std::string& missing) {
    auto n = std::erase_if(v, pred);
    return n ? result::success() : result::failure(missing);
  }

  // Runs `f` on a defined domain; reports a state change when `reason` is set.
  template <class F>
  result change(const std::string& name, F f, const char* reason) {
    std::lock_guard lock(mutex_);
    auto it = domains_.find(name);
    if (it == domains_.end()) return result::failure("domain " + name + " is not defined");
    auto before = it->second.state;
    auto r = f(it->second);
    if (r && *reason && (it->second.state != before || std::string(reason) == "rebooted"))
      notify_locked(name, it->second.state, reason);
    return r;
  }

  void notify_locked(const std::string& name, domain_state s, const std::string& reason) {
    if (callback_) callback_({name, s, reason});
  }

  fake_options options_;
  std::mutex mutex_;
  std::map<std::string, domain> domains_;
  std::function<void(const lifecycle_event&)> callback_;
};

}  // namespace

std::unique_ptr<driver> make_fake_driver(fake_options options) {
  return std::make_unique<fake_driver>(std::move(options));
}

}  // namespace kumo::hypervisor
