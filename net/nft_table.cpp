#include "net/nft_table.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <map>

namespace kumo::net {
namespace {

using json = nlohmann::json;

// Handles change with every replace; what a table means does not.
void drop_handles(json& j) {
  if (j.is_object()) {
    j.erase("handle");
    for (auto& [_, v] : j.items()) drop_handles(v);
  } else if (j.is_array()) {
    for (auto& v : j) drop_handles(v);
  }
}

std::string element_text(const std::string& map, const std::string& key, const std::string& value) {
  return map + " " + key + " -> " + value;
}

using elements = std::vector<std::pair<std::string, std::string>>;

// Map keys are addresses, and elastic_ip_maps are sorted by address.
uint32_t address(const std::string& ip) {
  in_addr a{};
  return inet_pton(AF_INET, ip.c_str(), &a) == 1 ? ntohl(a.s_addr) : 0;
}

// The value of `key` in elements sorted by address; nullptr when absent.
const std::string* value_of(const elements& e, const std::string& key) {
  const uint32_t k = address(key);
  auto it = std::lower_bound(e.begin(), e.end(), k, [](const auto& p, uint32_t k) { return address(p.first) < k; });
  return it != e.end() && it->first == key ? &it->second : nullptr;
}

// One map's part of the diff, in one walk over `kernel` and `desired` (both
// sorted by address; keys are compared as text first, since nearly all are
// equal): commands to make `kernel` equal `desired`, and the drift (what
// differs from what kumo last applied) as sentences.
void diff_map(const std::string& map, const std::string& what, const elements& kernel, const elements& desired,
              const elements& applied, std::string& commands, std::vector<std::string>& drift) {
  auto remove = [&](const std::string& key, const std::string& value) {
    commands += "delete element ip kumo " + map + " { " + key + " }\n";
    const std::string* was = value_of(applied, key);
    if (!was || *was != value) drift.push_back("removed " + element_text(what, key, value) + " nobody asked for");
  };
  auto add = [&](const std::string& key, const std::string& value) {
    commands += "add element ip kumo " + map + " { " + key + " : " + value + " }\n";
    const std::string* was = value_of(applied, key);
    if (was && *was == value) drift.push_back("restored " + element_text(what, key, value) + " (it was missing)");
  };
  auto k = kernel.begin();
  auto d = desired.begin();
  while (k != kernel.end() || d != desired.end()) {
    if (k != kernel.end() && d != desired.end() && k->first == d->first) {
      if (k->second != d->second) {
        remove(k->first, k->second);
        add(d->first, d->second);
      }
      ++k;
      ++d;
    } else if (d == desired.end() || (k != kernel.end() && address(k->first) < address(d->first))) {
      remove(k->first, k->second);
      ++k;
    } else {
      add(d->first, d->second);
      ++d;
    }
  }
}

// nftables' generation id: every commit to any table in this network
// namespace bumps it. Unchanged since kumo's own last write means nobody
// touched nftables, so the table need not be listed (which costs tens of ms
// with thousands of map elements).
bool nft_generation(uint32_t& out) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return false;
  struct {
    nlmsghdr nh;
    nfgenmsg nfg;
  } req{};
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.nfg.nfgen_family = AF_UNSPEC;
  req.nfg.version = NFNETLINK_V0;
  bool found = false;
  if (send(fd, &req, sizeof req, 0) == static_cast<ssize_t>(sizeof req)) {
    alignas(nlmsghdr) char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    auto* nh = reinterpret_cast<nlmsghdr*>(buf);
    if (n > 0 && NLMSG_OK(nh, static_cast<unsigned>(n)) && nh->nlmsg_type != NLMSG_ERROR) {
      size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
      while (off + sizeof(nlattr) <= nh->nlmsg_len) {
        auto* a = reinterpret_cast<nlattr*>(buf + off);
        if (a->nla_len < sizeof(nlattr)) break;
        if ((a->nla_type & NLA_TYPE_MASK) == NFTA_GEN_ID && a->nla_len >= NLA_HDRLEN + 4) {
          uint32_t be;
          std::memcpy(&be, buf + off + NLA_HDRLEN, 4);
          out = ntohl(be);
          found = true;
          break;
        }
        off += NLA_ALIGN(a->nla_len);
      }
    }
  }
  close(fd);
  return found;
}

// The generation after `g`'s commit (the kernel skips 0 when it wraps).
uint32_t next_generation(uint32_t g) { return g + 1 == 0 ? 1 : g + 1; }

nft_ctx* new_context() {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx) {
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
  }
  return ctx;
}

bool run(nft_ctx* ctx, const std::string& commands, std::string& output, std::string& error) {
  const int rc = nft_run_cmd_from_buffer(ctx, commands.c_str());
  output = nft_ctx_get_output_buffer(ctx);
  error = nft_ctx_get_error_buffer(ctx);
  while (!error.empty() && error.back() == '\n') error.pop_back();
  return rc == 0;
}

// A libnftables context caches what its commands touched: after a listing
// or a whole-table load, 20,000 elements, which the next command on it pays
// tens of ms to drop. So those run on a context of the pass, made when first
// needed (a listing and then a load share its cache) and freed at its end;
// the long-lived one only ever sees `add/delete element`.
struct scratch_context {
  nft_ctx* ctx = nullptr;
  nft_ctx* get() {
    if (!ctx) ctx = new_context();
    return ctx;
  }
  ~scratch_context() {
    if (ctx) nft_ctx_free(ctx);
  }
};

}  // namespace

std::unique_ptr<nft_table> nft_table::open(std::string& error) {
  nft_ctx* ctx = new_context();
  if (!ctx) {
    error = "libnftables: cannot create a context";
    return nullptr;
  }
  std::unique_ptr<nft_table> t(new nft_table(ctx));
  // Proves we may talk to nftables here (CAP_NET_ADMIN in this namespace).
  std::string out;
  if (!run(ctx, "list tables", out, error)) {
    error = "nftables is not usable here (needs CAP_NET_ADMIN): " + error;
    return nullptr;
  }
  return t;
}

nft_table::~nft_table() { nft_ctx_free(ctx_); }

bool nft_table::observe(nft_ctx* ctx, observed& out, std::string& error) {
  out = {};
  listed_at_ = std::chrono::steady_clock::now();
  if (!ctx) {
    error = "libnftables: cannot create a context";
    return false;
  }
  nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
  std::string text, why;
  const bool listed = run(ctx, "list table ip kumo", text, why);
  nft_ctx_output_set_flags(ctx, 0);
  if (!listed) {
    if (why.find("No such file or directory") != std::string::npos) return true;  // no table: observed empty
    error = "nft list table ip kumo: " + why;
    return false;
  }
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("nftables")) {
    error = "nft returned a listing that is not JSON";
    return false;
  }
  out.exists = true;
  auto& items = j["nftables"];
  std::map<std::string, std::string> dnat, snat;
  for (auto& item : items) {
    if (!item.contains("map")) continue;
    auto& m = item["map"];
    const auto name = m.value("name", "");
    auto& into = name == "eip_dnat" ? dnat : snat;
    if ((name == "eip_dnat" || name == "eip_snat") && m.contains("elem")) {
      for (const auto& e : m["elem"])
        if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string())
          into[e[0].get<std::string>()] = e[1].get<std::string>();
        else
          out.unreadable = true;  // e.g. an element with a comment added by hand: replace the table
      m.erase("elem");
    }
  }
  auto by_address = [](const auto& a, const auto& b) { return address(a.first) < address(b.first); };
  out.eips.dnat.assign(dnat.begin(), dnat.end());
  out.eips.snat.assign(snat.begin(), snat.end());
  std::sort(out.eips.dnat.begin(), out.eips.dnat.end(), by_address);
  std::sort(out.eips.snat.begin(), out.eips.snat.end(), by_address);
  drop_handles(items);
  out.skeleton = items.dump();
  return true;
}

bool nft_table::write(nft_ctx* ctx, const std::string& commands, uint32_t base, uint32_t& after,
                      std::string& error) {
  std::string out;
  bool ok = false;
  if (ctx)
    ok = run(ctx, commands, out, error);
  else
    error = "libnftables: cannot create a context";
  if (!nft_generation(after)) after = 0;
  applied_generation_ = ok && base != 0 && after == next_generation(base) ? after : 0;
  return ok;
}

bool nft_table::reconcile(const desired_plane& desired, std::vector<std::string>& repairs, std::string& error) {
  const auto& want = desired.eips;
  uint32_t generation = 0;
  if (!nft_generation(generation)) generation = 0;
  // Nobody committed to nftables since kumo's own last write: the kernel has
  // exactly what kumo left, no listing needed.
  const bool known = applied_once_ && applied_generation_ != 0 && generation == applied_generation_ &&
                     std::chrono::steady_clock::now() - listed_at_ < relist_every;
  scratch_context scratch;
  observed listed;
  if (!known && !observe(scratch.get(), listed, error)) return false;
  const bool exists = known || listed.exists;
  const bool unreadable = !known && listed.unreadable;
  const std::string& skeleton = known ? applied_skeleton_ : listed.skeleton;
  const elastic_ip_maps& kernel = known ? applied_ : listed.eips;
  // Until kumo has applied once in this process, the log is what the kernel should have had.
  const elastic_ip_maps& was = applied_once_ ? applied_ : want;

  if (applied_once_ && exists && !unreadable && desired.nft_rules == applied_rules_ && skeleton == applied_skeleton_) {
    std::string commands;
    std::vector<std::string> drift;
    diff_map("eip_dnat", "DNAT", kernel.dnat, want.dnat, was.dnat, commands, drift);
    diff_map("eip_snat", "SNAT", kernel.snat, want.snat, was.snat, commands, drift);
    if (known && commands.empty()) return true;  // the common periodic pass
    uint32_t written = 0;
    if (commands.empty())
      applied_generation_ = generation;  // listed (at this generation or later) and it matched
    else if (!write(ctx_, commands, generation, written, error)) {
      error = "nft could not update the elastic IP maps: " + error;
      return false;
    }
    applied_ = want;
    for (auto& d : drift) repairs.push_back("nft: " + d);
    return true;
  }

  // Replace the whole table in one transaction ("table" first, so the
  // delete never fails on a missing table).
  uint32_t written = 0;
  if (!write(scratch.get(), "table ip kumo\ndelete table ip kumo\n" + nft_ruleset(desired), generation, written, error)) {
    error = "nft could not load table ip kumo: " + error;
    return false;
  }
  observed after;
  if (!observe(scratch.get(), after, error)) return false;
  std::vector<std::string> drift;
  if (!exists) {
    if (desired.segments != 0 || !want.dnat.empty()) drift.push_back("table ip kumo was missing; rebuilt it from the log");
  } else {
    std::string ignored;
    diff_map("eip_dnat", "DNAT", kernel.dnat, want.dnat, was.dnat, ignored, drift);
    diff_map("eip_snat", "SNAT", kernel.snat, want.snat, was.snat, ignored, drift);
    const bool rules_expected_to_change = applied_once_ && desired.nft_rules != applied_rules_;
    const auto& reference = applied_once_ ? applied_skeleton_ : after.skeleton;
    if ((!rules_expected_to_change && skeleton != reference) || unreadable)
      drift.push_back("the chains, rules or map elements of table ip kumo differed from the log; replaced them");
  }
  applied_once_ = true;
  applied_rules_ = desired.nft_rules;
  applied_skeleton_ = after.skeleton;
  applied_ = want;
  // That listing is the reference for later passes only if nothing else
  // committed between kumo's write and it; otherwise the next pass replaces
  // the table again (as a planned change: a race, not drift to report).
  // Without generation ids at all every pass lists, and this never holds.
  uint32_t now = 0;
  if (written == 0 || !nft_generation(now) || now != written) {
    applied_generation_ = 0;
    if (written != 0) applied_rules_.clear();
  }
  for (auto& d : drift) repairs.push_back("nft: " + d);
  return true;
}

}  // namespace kumo::net
