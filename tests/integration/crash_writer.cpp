// The process the crash test SIGKILLs: the real cloud core (data dir lock,
// event store, journal, Account aggregates, accounts view) with concurrent
// clients creating accounts and rotating keys. A line "ACK ..." is printed
// only after the reply, i.e. after the events are durable, in one write(2),
// so a killed writer never leaves a half line that looks acknowledged.
//
// usage: kumo_crash_writer <data dir> <clients>
#include "actors/account/account_actors.h"
#include "actors/cloud.h"
#include "persistence/data_dir.h"

#include <caf/all.hpp>

#include <iostream>
#include <thread>
#include <unistd.h>

using namespace kumo;
using namespace kumo::actors::account;

namespace {

void say(const std::string& line) {
  auto s = line + "\n";
  if (::write(1, s.data(), s.size()) < 0) _exit(3);
}

void client_loop(client& accounts, int n) {
  actors::request_meta meta{"crash-test-client-" + std::to_string(n), ""};
  for (int i = 0;; ++i) {
    meta.request_id = "c" + std::to_string(n) + "-" + std::to_string(i);
    auto created = accounts.create("acct-" + meta.request_id, false, meta);
    if (created.error) {
      say("ERR create " + created.error->code + " " + created.error->message);
      return;
    }
    const auto& id = created.state.account_id;
    const auto first = created.state.keys.at(0).access_key_id;
    say("ACK account " + id + " " + first);
    auto k = new_access_key();
    if (auto r = accounts.send(id, create_access_key{k}, meta); r.error) {
      say("ERR key " + r.error->code + " " + r.error->message);
      return;
    }
    say("ACK key " + id + " " + k.access_key_id);
    if (auto r = accounts.send(id, delete_access_key{first}, meta); r.error) {
      say("ERR delete " + r.error->code + " " + r.error->message);
      return;
    }
    say("ACK delete " + id + " " + first);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: kumo_crash_writer <data dir> <clients>\n";
    return 2;
  }
  std::string dir = argv[1];
  int clients = std::stoi(argv[2]);
  persistence::status st;
  auto lock = persistence::data_dir_lock::acquire(dir, st);
  if (!lock) {
    say("ERR lock " + st.message);
    return 1;
  }
  auto store = persistence::event_store::open(persistence::events_path(dir),
                                              persistence::open_mode::read_write, st);
  if (!store) {
    say("ERR open " + st.message);
    return 1;
  }
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto cloud = actors::cloud_actors::spawn(sys, *store);
  say("READY");
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<client>> handles;
  for (int i = 0; i < clients; ++i) handles.push_back(std::make_unique<client>(sys, cloud.accounts, cloud.accounts_view));
  for (int i = 0; i < clients; ++i) threads.emplace_back(client_loop, std::ref(*handles[i]), i);
  for (auto& t : threads) t.join();  // only on error: the test kills us
  return 1;
}
