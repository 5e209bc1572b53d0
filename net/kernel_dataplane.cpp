// The kernel data plane: links (libnl), the `ip kumo` table (libnftables)
// and dnsmasq, each observed, diffed against one desired_plane per pass and
// repaired.
#include "net/dataplane.h"
#include "net/dnsmasq.h"
#include "net/link_table.h"
#include "net/nft_table.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <mutex>

namespace kumo::net {
namespace {

class kernel_dataplane : public dataplane {
 public:
  kernel_dataplane(dataplane_config cfg, std::unique_ptr<link_table> links, std::unique_ptr<nft_table> nft)
      : cfg_(std::move(cfg)), links_(std::move(links)), nft_(std::move(nft)), dnsmasq_(cfg_.state_dir) {}

  std::string describe() const override {
    return "kernel data plane (bridges and VXLAN/VLAN through libnl, nftables table ip kumo, dnsmasq in " +
           cfg_.state_dir + ")";
  }

  reconcile_result reconcile(const network_view& view) override {
    reconcile_result r;
    std::lock_guard lock(mutex_);
    if (stopped_) {
      r.ok = false;
      r.error = "the data plane is stopped (kumod is shutting down)";
      return r;
    }
    // One validation of the view for the whole pass, into last pass's buffers.
    desired(view, cfg_.state_dir, want_);
    for (const auto& p : want_.problems) spdlog::warn("net: left out of the data plane: {}", p);
    if (cfg_.manage_sysctls) forward_packets(r);
    // Bridges first: dnsmasq binds to them, and the table names them.
    bool ok = links_->reconcile(want_, r.repairs, r.error) && nft_->reconcile(want_, r.repairs, r.error) &&
              dnsmasq_.reconcile(want_, r.repairs, r.error);
    r.ok = ok;
    return r;
  }

  // From kumod's main thread at shutdown, while the worker may still be in
  // a pass: waits for it, and no pass runs (or starts dnsmasq) after it.
  void stop() override {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    dnsmasq_.stop();
  }

 private:
  void forward_packets(reconcile_result& r) {
    const char* path = "/proc/sys/net/ipv4/ip_forward";
    std::string now;
    std::ifstream(path) >> now;
    if (now == "1") return;
    std::ofstream(path) << "1\n";
    r.repairs.push_back("turned on IPv4 forwarding (net.ipv4.ip_forward was " + now + ")");
  }

  dataplane_config cfg_;
  std::unique_ptr<link_table> links_;
  std::unique_ptr<nft_table> nft_;
  dnsmasq_process dnsmasq_;
  desired_plane want_;  // this pass's; kept for its buffers
  std::mutex mutex_;    // one of reconcile() and stop() at a time
  bool stopped_ = false;
};

// A node host's: the links of its guests' segments, nothing else.
class node_dataplane : public dataplane {
 public:
  explicit node_dataplane(std::unique_ptr<link_table> links) : links_(std::move(links)) {}

  std::string describe() const override { return "node data plane (bridges and VXLAN/VLAN through libnl)"; }

  reconcile_result reconcile(const network_view& view) override {
    reconcile_result r;
    desired(view, {}, want_);
    for (const auto& p : want_.problems) spdlog::warn("net: left out of the data plane: {}", p);
    r.ok = links_->reconcile(want_, r.repairs, r.error);
    return r;
  }

  void stop() override {}

 private:
  std::unique_ptr<link_table> links_;
  desired_plane want_;
};

}  // namespace

std::unique_ptr<dataplane> make_node_dataplane(std::string& error) {
  auto links = link_table::open(error);
  if (!links) return nullptr;
  return std::make_unique<node_dataplane>(std::move(links));
}

std::unique_ptr<dataplane> make_kernel_dataplane(dataplane_config cfg, std::string& error) {
  auto links = link_table::open(error);
  if (!links) return nullptr;
  auto nft = nft_table::open(error);
  if (!nft) return nullptr;
  return std::make_unique<kernel_dataplane>(std::move(cfg), std::move(links), std::move(nft));
}

}  // namespace kumo::net
