// The `ip kumo` nftables table, through libnftables: observed (the kernel's
// JSON listing), diffed against nft_ruleset(view) and repaired. Elastic IPs
// are map elements, so when only they differ the change is a few `add/delete
// element` commands; anything else replaces the whole table in one
// transaction. Internal to net/ (see dataplane.h).
#pragma once

#include "net/desired_state.h"
#include "net/network_view.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct nft_ctx;

namespace kumo::net {

class nft_table {
 public:
  // nullptr + error when libnftables cannot be used here.
  static std::unique_ptr<nft_table> open(std::string& error);
  ~nft_table();
  nft_table(const nft_table&) = delete;
  nft_table& operator=(const nft_table&) = delete;

  // Makes the kernel's table what the view asks for. Differences the kernel
  // had from what kumo last applied (or, on the first call, from the log)
  // are drift and come back as repair sentences; plain updates do not.
  bool reconcile(const network_view& view, std::vector<std::string>& repairs, std::string& error);

 private:
  explicit nft_table(nft_ctx* ctx) : ctx_(ctx) {}

  struct observed {
    bool exists = false;
    std::string skeleton;  // the listing without handles and map elements
    std::map<std::string, std::string> dnat, snat;
    bool unreadable = false;  // a map element kumo cannot have written
  };
  bool run(const std::string& commands, std::string& output, std::string& error);
  bool observe(observed& out, std::string& error);
  void remember_generation();

  nft_ctx* ctx_;
  bool applied_once_ = false;
  std::string applied_ruleset_skeleton_;  // nft_ruleset() of the view without public IPs
  std::string applied_skeleton_;          // the kernel's skeleton right after that apply
  std::map<std::string, std::string> applied_dnat_, applied_snat_;
  uint32_t applied_generation_ = 0;  // nftables' generation right after kumo's last write
  int passes_since_listing_ = 0;
};

}  // namespace kumo::net
