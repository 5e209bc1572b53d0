// The `ip kumo` nftables table, through libnftables: observed (the kernel's
// JSON listing), diffed against the desired plane and repaired. Elastic IPs
// are map elements, so when only they differ the change is a few `add/delete
// element` commands; anything else replaces the whole table in one
// transaction. Internal to net/ (see dataplane.h).
//
// The listing costs tens of ms at 10,000 elements, so it is skipped while
// nftables' generation id (bumped by every commit to any table of the
// network namespace) is the one kumo's own last write left: kumo counts a
// write as its own only when the generation moved by exactly one across it.
// Any other commit means a listing and a diff; so does a pass 30 s after the
// last listing, as a safety net.
#pragma once

#include "net/desired_state.h"

#include <chrono>
#include <cstdint>
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

  // Makes the kernel's table what `desired` asks for. Differences the kernel
  // had from what kumo last applied (or, on the first call, from the log)
  // are drift and come back as repair sentences; plain updates do not.
  bool reconcile(const desired_plane& desired, std::vector<std::string>& repairs, std::string& error);

  // The longest time between two listings of the table.
  static constexpr std::chrono::seconds relist_every{30};

 private:
  explicit nft_table(nft_ctx* ctx) : ctx_(ctx) {}

  struct observed {
    bool exists = false;
    std::string skeleton;  // the listing without handles and map elements
    elastic_ip_maps eips;  // the elements, sorted by key as text
    bool unreadable = false;  // a map element kumo cannot have written
  };
  bool observe(nft_ctx* ctx, observed& out, std::string& error);
  // Runs kumo's transaction on a kernel whose state kumo knew at generation
  // `base` (0: unknown); `after` is the generation right after (0: unknown).
  // applied_generation_ becomes `after` when the write was provably the only
  // commit since `base` (the generation moved by exactly one), else 0.
  bool write(nft_ctx* ctx, const std::string& commands, uint32_t base, uint32_t& after, std::string& error);

  nft_ctx* ctx_;  // element updates only (see scratch_context in nft_table.cpp)
  bool applied_once_ = false;
  std::string applied_rules_;     // desired_plane::nft_rules of kumo's last replace
  std::string applied_skeleton_;  // the kernel's skeleton right after it
  elastic_ip_maps applied_;       // the elements kumo left
  uint32_t applied_generation_ = 0;  // nftables' generation right after kumo's last write; 0: unknown
  std::chrono::steady_clock::time_point listed_at_;
};

}  // namespace kumo::net
