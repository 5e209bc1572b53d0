// Collects a driver's lifecycle events for tests. libvirt calls back on its
// event thread, so waits take a deadline; the fake calls back synchronously.
// The callback owns what it writes to: libvirt may still deliver an event
// (say "undefined") after the test that made the recorder has returned.
#pragma once

#include "hypervisor/driver.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kumo::hypervisor::test {

struct lifecycle_recorder {
  struct log {
    std::mutex m;
    std::condition_variable cv;
    std::vector<lifecycle_event> events;
  };
  std::shared_ptr<log> shared = std::make_shared<log>();

  void attach(driver& d) {
    d.on_lifecycle([log = shared](const lifecycle_event& e) {
      std::lock_guard l(log->m);
      log->events.push_back(e);
      log->cv.notify_all();
    });
  }
  // Waits for the `nth` (1-based) event of `name` with this reason and state.
  bool wait_for(const std::string& name, const std::string& reason, domain_state st, int nth = 1,
                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock l(shared->m);
    return shared->cv.wait_for(l, timeout, [&] {
      int seen = 0;
      for (auto& e : shared->events)
        if (e.name == name && e.reason == reason && e.state == st) ++seen;
      return seen >= nth;
    });
  }
  int count(const std::string& name, const std::string& reason) {
    std::lock_guard l(shared->m);
    int n = 0;
    for (auto& e : shared->events) n += e.name == name && e.reason == reason;
    return n;
  }
  // "name:reason:state" per event, in order.
  std::vector<std::string> reasons() {
    std::lock_guard l(shared->m);
    std::vector<std::string> r;
    for (auto& e : shared->events) r.push_back(e.name + ":" + e.reason + ":" + to_string(e.state));
    return r;
  }
  std::string dump() {
    std::string s;
    for (const auto& r : reasons()) s += r + " ";
    return s;
  }
};

}  // namespace kumo::hypervisor::test
