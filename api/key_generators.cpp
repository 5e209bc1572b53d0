#include "api/key_generators.h"

#include <caf/all.hpp>

namespace kumo::api {
namespace {

caf::behavior key_generator(caf::event_based_actor*) {
  return {
      [](generate_key_atom, const std::string& type) -> caf::result<generated_key> {
        auto key = generate_key(type);
        if (!key) return caf::make_error(caf::sec::runtime_error, "libcrypto could not generate a " + type + " key");
        return std::move(*key);
      },
  };
}

}  // namespace

caf::actor spawn_key_generators(caf::actor_system& sys, size_t workers) {
  return caf::actor_pool::make(
      sys.dummy_execution_unit(), std::max<size_t>(workers, 1),
      [&sys] { return sys.spawn<caf::detached>(key_generator); }, caf::actor_pool::round_robin());
}

}  // namespace kumo::api
