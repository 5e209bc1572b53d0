#include "commands.h"

#include "actors/account/accounts_view.h"
#include "actors/codecs.h"
#include "actors/keypair/keypair.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/securitygroup/security_group.h"
#include "persistence/time_format.h"

#include <nlohmann/json.hpp>

#include <csignal>
#include <iostream>
#include <thread>

namespace kumo::ctl {
namespace {

using json = nlohmann::json;
using persistence::event_record;

volatile std::sig_atomic_t interrupted = 0;

// Secrets live in the log (SigV4 needs them) but never leave it through kumoctl.
void redact(json& j) {
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) {
      if (k.find("secret") != std::string::npos && v.is_string())
        v = "***";
      else
        redact(v);
    }
  } else if (j.is_array()) {
    for (auto& v : j) redact(v);
  }
}

json payload_of(const event_record& r) {
  auto j = json::parse(r.payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return json{{"undecodable_payload_bytes", r.payload.size()}};
  redact(j);
  return j;
}

json to_json(const event_record& r) {
  return {{"global_seq", r.global_seq},       {"stream", r.stream},
          {"stream_seq", r.stream_seq},       {"type", r.type},
          {"schema_version", r.schema_version}, {"time", persistence::format_time(r.time_ms)},
          {"time_ms", r.time_ms},             {"principal", r.principal},
          {"request_id", r.request_id},       {"payload", payload_of(r)}};
}

void print_event(const event_record& r, bool as_json, std::ostream& out) {
  if (as_json) {
    out << to_json(r).dump() << "\n";
    return;
  }
  out << "#" << r.global_seq << " " << persistence::format_time(r.time_ms) << " " << r.stream
      << "@" << r.stream_seq << " " << r.type << "/v" << r.schema_version << " by "
      << r.principal << " rid=" << r.request_id << " " << payload_of(r).dump() << "\n";
}

bool matches(const event_record& r, const options& o) {
  if (!o.stream.empty()) {
    bool prefix = o.stream.back() == '/';
    if (prefix ? r.stream.compare(0, o.stream.size(), o.stream) != 0 : r.stream != o.stream)
      return false;
  }
  if (!o.type.empty() && r.type != o.type) return false;
  if (o.since_ms && r.time_ms < *o.since_ms) return false;
  return true;
}

bool mentions(const event_record& r, const std::string& id) {
  // The resource's own stream: <kind>/<id>, or <kind>/<account>/<id> for
  // resources named within an account (instances, images, key pairs, ...).
  auto slash = r.stream.find('/');
  if (slash != std::string::npos && r.stream.compare(slash + 1, std::string::npos, id) == 0)
    return true;
  auto last = r.stream.rfind('/');
  if (last != slash && r.stream.compare(last + 1, std::string::npos, id) == 0) return true;
  return r.payload.find("\"" + id + "\"") != std::string::npos;
}

// The detail an audit line needs: group membership events name the user who
// joined or left ("  user=alice"); repairs say what was repaired.
std::string detail_of(const event_record& r) {
  const char* field = r.type == "member_added" || r.type == "member_removed" ? "user_name"
                      : r.type == "repaired"                                 ? "what"
                                                                             : nullptr;
  if (!field) return "";
  auto j = json::parse(r.payload, nullptr, false);
  if (!j.is_object() || !j.contains(field) || !j[field].is_string()) return "";
  return std::string("  ") + (r.type == "repaired" ? "what" : "user") + "=" + j[field].get<std::string>();
}

int report_read_error(const persistence::status& s) {
  std::cerr << "kumoctl: " << s.message << "\n";
  return 1;
}

}  // namespace

int events(persistence::event_store& store, const options& o, std::ostream& out) {
  uint64_t next = 1;
  auto visit = [&](const event_record& r) {
    if (matches(r, o)) print_event(r, o.json, out);
    next = r.global_seq + 1;
    return true;
  };
  if (auto s = store.read_all(next, visit); !s.ok()) return report_read_error(s);
  if (!o.follow) return 0;
  std::signal(SIGINT, [](int) { interrupted = 1; });
  std::signal(SIGTERM, [](int) { interrupted = 1; });
  out.flush();
  while (!interrupted) {
    // Polling is how a RocksDB secondary learns of the primary's writes.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (auto s = store.catch_up_with_primary(); !s.ok()) return report_read_error(s);
    if (auto s = store.read_all(next, visit); !s.ok()) return report_read_error(s);
    out.flush();
  }
  return 0;
}

int audit(persistence::event_store& store, const options& o, std::ostream& out) {
  uint64_t found = 0;
  auto s = store.read_all(1, [&](const event_record& r) {
    if (!mentions(r, o.resource_id)) return true;
    ++found;
    if (o.json)
      out << to_json(r).dump() << "\n";
    else
      out << persistence::format_time(r.time_ms) << "  " << r.principal << "  " << r.type
          << "  on " << r.stream << detail_of(r) << "  (request " << r.request_id << ", event #" << r.global_seq
          << ")\n";
    return true;
  });
  if (!s.ok()) return report_read_error(s);
  if (found == 0) {
    std::cerr << "kumoctl: no event mentions " << o.resource_id << "\n";
    return 1;
  }
  return 0;
}

int replay(persistence::event_store& store, const options& o, std::ostream& out) {
  actors::account::accounts_model accounts;
  actors::aggregate_view<actors::keypair::aggregate> key_pairs;
  actors::aggregate_view<actors::security_group::aggregate> groups;
  uint64_t applied = 0, last = 0;
  int64_t last_time = 0;
  auto s = store.read_all(1, [&](const event_record& r) {
    if (r.time_ms > *o.at_ms) return false;  // the log's clock never runs backwards
    accounts.apply(r);
    key_pairs.apply(r);
    groups.apply(r);
    ++applied;
    last = r.global_seq;
    last_time = r.time_ms;
    return true;
  });
  if (!s.ok()) return report_read_error(s);
  auto list = accounts.list();
  if (o.json) {
    json j{{"at", persistence::format_time(*o.at_ms)},
           {"events_applied", applied},
           {"last_global_seq", last},
           {"accounts", json::array()}};
    for (const auto& a : list) {
      json keys = json::array(), sgs = json::array();
      for (const auto& k : key_pairs.list(a.account_id))
        keys.push_back({{"key_pair_id", k.key.key_pair_id}, {"key_name", k.key_name}, {"fingerprint", k.key.fingerprint}});
      for (const auto& g : groups.list(a.account_id))
        sgs.push_back({{"group_id", g.group_id}, {"group_name", g.group_name},
                       {"ingress_rules", g.ingress.size()}, {"egress_rules", g.egress.size()}});
      j["accounts"].push_back({{"account_id", a.account_id},
                               {"name", a.name},
                               {"admin", a.admin},
                               {"created", persistence::format_time(a.created_ms)},
                               {"access_key_ids", a.access_key_ids},
                               {"key_pairs", keys},
                               {"security_groups", sgs}});
    }
    out << j.dump(2) << "\n";
    return 0;
  }
  out << "state as of " << persistence::format_time(*o.at_ms) << ": " << applied
      << " events applied";
  if (last) out << " (last #" << last << " at " << persistence::format_time(last_time) << ")";
  out << "\naccounts (" << list.size() << "):\n";
  for (const auto& a : list) {
    out << "  " << a.account_id << "  " << a.name << (a.admin ? "  [admin]" : "") << "  created "
        << persistence::format_time(a.created_ms) << "  keys:";
    for (const auto& k : a.access_key_ids) out << " " << k;
    out << "\n";
    for (const auto& k : key_pairs.list(a.account_id))
      out << "    key pair " << k.key.key_pair_id << "  " << k.key_name << "  " << k.key.key_type << "\n";
    for (const auto& g : groups.list(a.account_id))
      out << "    security group " << g.group_id << "  " << g.group_name << "  " << g.ingress.size()
          << " ingress / " << g.egress.size() << " egress rules\n";
  }
  return 0;
}

int verify(persistence::event_store& store, std::ostream& out) {
  auto rep = store.verify();
  uint64_t undecodable = 0;
  auto scan = store.read_all(1, [&](const event_record& r) {
    if (auto s = actors::decode_any(r); !s.ok()) {
      if (++undecodable <= 100)
        rep.problems.push_back("event #" + std::to_string(r.global_seq) + " (" + r.stream +
                               "): " + s.message);
    }
    return true;
  });
  if (!scan.ok() && rep.problems.empty()) rep.problems.push_back(scan.message);
  if (rep.problems.empty()) {
    out << "verify: ok: " << rep.events << " events in " << rep.streams
        << " streams; sequences contiguous, index consistent, every event decodes\n";
    return 0;
  }
  out << "verify: " << rep.problems.size() << " problem(s) in " << rep.events << " events:\n";
  for (const auto& p : rep.problems) out << "  " << p << "\n";
  return 1;
}

}  // namespace kumo::ctl
