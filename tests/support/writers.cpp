#include "writers.h"

#include "actors/protocol/messages.h"

#include <caf/all.hpp>

#include <chrono>

namespace kumo::test {
namespace {

using done_atom = caf::atom_constant<caf::atom("done")>;

struct writer_state {
  uint64_t version = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
};

void append_next(caf::stateful_actor<writer_state>* self, caf::actor journal, std::string stream,
                 int left, std::string payload, caf::actor report_to) {
  if (left == 0) {
    self->send(report_to, done_atom::value, self->state.ok, self->state.failed);
    self->quit();
    return;
  }
  persistence::append_request req{stream, self->state.version, "bench", "rid", {{"bench_event", 1, payload}}};
  self->request(journal, caf::infinite, actors::append_atom::value, std::move(req))
      .then([=](actors::append_reply& r) {
        if (r.result.ok()) {
          self->state.ok++;
          self->state.version = r.stream_version;
        } else {
          self->state.failed++;
        }
        append_next(self, journal, stream, left - 1, payload, report_to);
      });
}

caf::behavior writer(caf::stateful_actor<writer_state>* self, caf::actor journal,
                     std::string stream, int count, std::string payload, caf::actor report_to) {
  append_next(self, journal, stream, count, payload, report_to);
  return {[](int) {}};  // replies arrive through the request handles
}

}  // namespace

writers_result run_writers(caf::actor_system& sys, const caf::actor& journal, int writers,
                           int appends_each, const std::string& stream_prefix,
                           const std::string& payload) {
  caf::scoped_actor self{sys};
  auto start = std::chrono::steady_clock::now();
  for (int w = 0; w < writers; ++w)
    sys.spawn(writer, journal, stream_prefix + std::to_string(w), appends_each, payload,
              caf::actor_cast<caf::actor>(self));
  writers_result res;
  for (int w = 0; w < writers; ++w)
    self->receive([&](done_atom, uint64_t ok, uint64_t failed) {
      res.acknowledged += ok;
      res.failed += failed;
    });
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return res;
}

}  // namespace kumo::test
