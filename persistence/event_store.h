// The event store: kumo's only source of truth, an append-only log on RocksDB.
//
// RocksDB layout (one column family; the first bytes name the keyspace):
//   e/<stream>\0<stream seq BE64>  -> global seq BE64      (per-stream index)
//   g/<global seq BE64>            -> encoded event record (the global order)
//   s/<stream>                     -> snapshot (stream version + state JSON)
//   p/<projection>                 -> projection checkpoint (global seq + state JSON)
// Stream ids never contain '\0', so "e/a\0" can never be a prefix of "e/ab\0".
// Records live once, under g/, so replaying the whole log is one sequential scan.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kumo::persistence {

// One stored event. Everything but the payload is fixed-shape metadata.
struct event_record {
  std::string stream;        // e.g. "account/123456789012"
  uint64_t stream_seq = 0;   // 1-based, contiguous within the stream
  uint64_t global_seq = 0;   // 1-based, contiguous across the whole log
  std::string type;          // e.g. "account_created"; never renamed once stored
  uint32_t schema_version = 1;
  int64_t time_ms = 0;       // unix epoch milliseconds, assigned by the journal
  std::string principal;     // who caused it (an ARN, or "kumo:bootstrap")
  std::string request_id;    // the API request (or internal job) that caused it
  std::string payload;       // JSON text
};

// An event as an aggregate proposes it; the store assigns sequences and time.
struct new_event {
  std::string type;
  uint32_t schema_version = 1;
  std::string payload;
};

// Append `events` to `stream`, which must currently be at `expected_version`
// (0 = the stream must not exist yet). All events of one request are atomic.
struct append_request {
  std::string stream;
  uint64_t expected_version = 0;
  std::string principal;
  std::string request_id;
  std::vector<new_event> events;
};

enum class status_code { ok, conflict, not_found, corrupt, invalid_argument, io_error };

// Error values carry their context instead of throwing across the library boundary.
struct status {
  status_code code = status_code::ok;
  std::string message;

  bool ok() const { return code == status_code::ok; }
  static status success() { return {}; }
  static status error(status_code c, std::string msg) { return {c, std::move(msg)}; }
};

const char* to_string(status_code c);

struct append_outcome {
  status result;
  uint64_t stream_version = 0;  // version after the append (or the actual one on conflict)
  std::vector<event_record> records;  // as stored, only when result.ok()
};

struct snapshot {
  uint64_t stream_version = 0;
  uint32_t state_version = 0;  // schema of the state JSON; a mismatch means "replay fully"
  std::string state;           // JSON text
};

struct checkpoint {
  uint64_t global_seq = 0;     // the last event the projection has applied
  uint32_t state_version = 0;
  std::string state;           // JSON text
};

enum class open_mode {
  read_write,  // the daemon (and tests); takes RocksDB's LOCK
  secondary,   // kumoctl: reads a live or stopped store without taking the lock
};

// Visitor for reads: return false to stop early.
using record_visitor = std::function<bool(const event_record&)>;

class event_store {
 public:
  // `path` is the RocksDB directory. `secondary_path` is scratch space, used
  // only by open_mode::secondary.
  static std::unique_ptr<event_store> open(const std::string& path, open_mode mode,
                                           status& result,
                                           const std::string& secondary_path = {});
  virtual ~event_store() = default;

  // Writes every accepted request in ONE WriteBatch with sync=true (group
  // commit). A conflicting request is rejected alone; the others still land.
  // Not thread-safe against itself: exactly one writer (the journal actor).
  virtual std::vector<append_outcome> append_batch(const std::vector<append_request>& batch,
                                                   int64_t time_ms) = 0;

  virtual uint64_t stream_version(const std::string& stream) = 0;
  virtual uint64_t last_global_seq() = 0;
  virtual int64_t last_event_time_ms() = 0;

  // Events of one stream with stream_seq >= from, in order.
  virtual status read_stream(const std::string& stream, uint64_t from,
                             const record_visitor& visit) = 0;
  // Events with global_seq >= from, in global order.
  virtual status read_all(uint64_t from, const record_visitor& visit) = 0;

  // Snapshots and checkpoints are derived data: written without fsync, since a
  // lost one only means a longer replay.
  virtual status put_snapshot(const std::string& stream, const snapshot& s) = 0;
  virtual std::optional<snapshot> get_snapshot(const std::string& stream, status& result) = 0;
  virtual status put_checkpoint(const std::string& projection, const checkpoint& c) = 0;
  virtual std::optional<checkpoint> get_checkpoint(const std::string& projection,
                                                   status& result) = 0;

  // secondary mode only: see what the primary has written since open.
  virtual status catch_up_with_primary() = 0;

  // Test and recovery hook: raw access to one stored record, so tests can
  // prove that corruption is reported, not crashed on.
  virtual status put_raw_record(uint64_t global_seq, const std::string& bytes) = 0;

  // Consistency check of the whole log (what `kumoctl verify` prints): global
  // sequence without gaps, every record decodes, every stream contiguous from
  // 1, and the per-stream index and the global log agree entry for entry.
  struct verify_report {
    uint64_t events = 0;
    uint64_t streams = 0;
    std::vector<std::string> problems;  // empty = the log is sound
  };
  virtual verify_report verify() = 0;
};

}  // namespace kumo::persistence
