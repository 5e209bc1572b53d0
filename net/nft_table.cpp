#include "net/nft_table.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstring>

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

// One map's part of the diff: commands to make `kernel` equal `desired`, and
// the drift (what differs from what kumo last applied) as sentences.
void diff_map(const std::string& map, const std::string& what, const std::map<std::string, std::string>& kernel,
              const std::map<std::string, std::string>& desired, const std::map<std::string, std::string>& applied,
              std::string& commands, std::vector<std::string>& drift) {
  auto applied_value = [&](const std::string& key) {
    auto it = applied.find(key);
    return it == applied.end() ? std::string{} : it->second;
  };
  for (const auto& [key, value] : kernel) {
    auto want = desired.find(key);
    if (want != desired.end() && want->second == value) continue;
    commands += "delete element ip kumo " + map + " { " + key + " }\n";
    if (applied_value(key) != value)
      drift.push_back("removed " + element_text(what, key, value) + " nobody asked for");
  }
  for (const auto& [key, value] : desired) {
    auto have = kernel.find(key);
    if (have != kernel.end() && have->second == value) continue;
    commands += "add element ip kumo " + map + " { " + key + " : " + value + " }\n";
    if (applied_value(key) == value) drift.push_back("restored " + element_text(what, key, value) + " (it was missing)");
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

std::map<std::string, std::string> as_map(const std::vector<std::pair<std::string, std::string>>& v) {
  return {v.begin(), v.end()};
}

}  // namespace

std::unique_ptr<nft_table> nft_table::open(std::string& error) {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) {
    error = "libnftables: cannot create a context";
    return nullptr;
  }
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  std::unique_ptr<nft_table> t(new nft_table(ctx));
  // Proves we may talk to nftables here (CAP_NET_ADMIN in this namespace).
  std::string out;
  if (!t->run("list tables", out, error)) {
    error = "nftables is not usable here (needs CAP_NET_ADMIN): " + error;
    return nullptr;
  }
  return t;
}

nft_table::~nft_table() { nft_ctx_free(ctx_); }

bool nft_table::run(const std::string& commands, std::string& output, std::string& error) {
  const int rc = nft_run_cmd_from_buffer(ctx_, commands.c_str());
  output = nft_ctx_get_output_buffer(ctx_);
  error = nft_ctx_get_error_buffer(ctx_);
  while (!error.empty() && error.back() == '\n') error.pop_back();
  return rc == 0;
}

bool nft_table::observe(observed& out, std::string& error) {
  out = {};
  nft_ctx_output_set_flags(ctx_, NFT_CTX_OUTPUT_JSON);
  std::string text, why;
  const bool ok = run("list table ip kumo", text, why);
  nft_ctx_output_set_flags(ctx_, 0);
  if (!ok) {
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
  for (auto& item : items) {
    if (!item.contains("map")) continue;
    auto& m = item["map"];
    const auto name = m.value("name", "");
    auto& into = name == "eip_dnat" ? out.dnat : out.snat;
    if ((name == "eip_dnat" || name == "eip_snat") && m.contains("elem")) {
      for (const auto& e : m["elem"])
        if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string())
          into[e[0].get<std::string>()] = e[1].get<std::string>();
        else
          out.unreadable = true;  // e.g. an element with a comment added by hand: replace the table
      m.erase("elem");
    }
  }
  drop_handles(items);
  out.skeleton = items.dump();
  return true;
}

bool nft_table::reconcile(const network_view& view, std::vector<std::string>& repairs, std::string& error) {
  const auto desired = eip_maps(view);
  const auto dnat = as_map(desired.dnat), snat = as_map(desired.snat);
  network_view bare = view;
  for (auto& n : bare.nics) n.public_ip.clear();
  const auto skeleton_text = nft_ruleset(bare);

  observed now;
  uint32_t generation = 0;
  // Every tenth pass lists anyway: a change made between kumo's write and its
  // reading of the generation would otherwise go unseen.
  if (applied_once_ && ++passes_since_listing_ < 10 && nft_generation(generation) &&
      generation == applied_generation_) {
    now = {true, applied_skeleton_, applied_dnat_, applied_snat_};  // exactly what kumo left
  } else {
    passes_since_listing_ = 0;
    if (!observe(now, error)) return false;
  }
  // Until kumo has applied once in this process, the log is what the kernel should have had.
  const auto& was_dnat = applied_once_ ? applied_dnat_ : dnat;
  const auto& was_snat = applied_once_ ? applied_snat_ : snat;

  if (applied_once_ && now.exists && !now.unreadable && skeleton_text == applied_ruleset_skeleton_ &&
      now.skeleton == applied_skeleton_) {
    std::string commands;
    std::vector<std::string> drift;
    diff_map("eip_dnat", "DNAT", now.dnat, dnat, was_dnat, commands, drift);
    diff_map("eip_snat", "SNAT", now.snat, snat, was_snat, commands, drift);
    if (!commands.empty()) {
      std::string out;
      if (!run(commands, out, error)) {
        error = "nft could not update the elastic IP maps: " + error;
        return false;
      }
    }
    applied_dnat_ = dnat;
    applied_snat_ = snat;
    remember_generation();
    for (auto& d : drift) repairs.push_back("nft: " + d);
    return true;
  }

  // Replace the whole table in one transaction ("table" first, so the
  // delete never fails on a missing table).
  std::string out;
  if (!run("table ip kumo\ndelete table ip kumo\n" + nft_ruleset(view), out, error)) {
    error = "nft could not load table ip kumo: " + error;
    return false;
  }
  observed after;
  if (!observe(after, error)) return false;
  std::vector<std::string> drift;
  if (!now.exists) {
    if (!view.segments.empty() || !dnat.empty()) drift.push_back("table ip kumo was missing; rebuilt it from the log");
  } else {
    std::string ignored;
    diff_map("eip_dnat", "DNAT", now.dnat, dnat, was_dnat, ignored, drift);
    diff_map("eip_snat", "SNAT", now.snat, snat, was_snat, ignored, drift);
    const bool rules_expected_to_change = applied_once_ && skeleton_text != applied_ruleset_skeleton_;
    const auto& reference = applied_once_ ? applied_skeleton_ : after.skeleton;
    if ((!rules_expected_to_change && now.skeleton != reference) || now.unreadable)
      drift.push_back("the chains, rules or map elements of table ip kumo differed from the log; replaced them");
  }
  applied_once_ = true;
  applied_ruleset_skeleton_ = skeleton_text;
  applied_skeleton_ = after.skeleton;
  applied_dnat_ = dnat;
  applied_snat_ = snat;
  remember_generation();
  for (auto& d : drift) repairs.push_back("nft: " + d);
  return true;
}

void nft_table::remember_generation() {
  // Unknown (0 never matches a real id after a write) makes the next pass list the table.
  if (!nft_generation(applied_generation_)) applied_generation_ = 0;
}

}  // namespace kumo::net
