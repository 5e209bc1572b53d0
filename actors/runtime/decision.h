// What an aggregate's pure decide() returns. No CAF here: aggregates'
// business logic is tested without actors.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kumo::actors {

// An AWS-shaped error: `code` is what EC2/IAM clients switch on.
struct api_error {
  std::string code;
  std::string message;
};

// The events to persist, or why the command is refused (then nothing changes).
template <class A>
struct decision {
  std::vector<typename A::event> events;
  std::optional<api_error> error;

  static decision refuse(std::string code, std::string message) {
    return {{}, api_error{std::move(code), std::move(message)}};
  }
};

// Events applied to a working copy of the state as they are decided, so
// later ones see earlier ones (several instances of one request, an address
// freed and given out again in one decision).
template <class A>
struct working_decision {
  typename A::state work;
  decision<A> out;
  void emit(typename A::event e) {
    work = A::apply(std::move(work), e);
    out.events.push_back(std::move(e));
  }
};

// The answer to a command: the events that now are durable and the state
// after them, or an error (in which case nothing changed).
template <class A>
struct command_reply {
  std::optional<api_error> error;
  std::vector<typename A::event> events;
  typename A::state state;
  uint64_t version = 0;          // stream version after the command
  uint64_t global_seq = 0;       // pass to projection queries to read your own write
};

// std::visit with one lambda per alternative: how decide/apply/encode switch
// on commands and events.
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

// Every aggregate's events live in the stream "<kind>/<id>".
template <class A>
std::string stream_of(const std::string& id) {
  return std::string(A::kind) + "/" + id;
}

}  // namespace kumo::actors
