#include "persistence/event_store.h"

#include "persistence/record_codec.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <unordered_map>

namespace kumo::persistence {

const char* to_string(status_code c) {
  switch (c) {
    case status_code::ok: return "ok";
    case status_code::conflict: return "conflict";
    case status_code::not_found: return "not_found";
    case status_code::corrupt: return "corrupt";
    case status_code::invalid_argument: return "invalid_argument";
    case status_code::io_error: return "io_error";
  }
  return "unknown";
}

namespace {

const std::string global_upper_bound = "g0";  // '0' follows '/' in ASCII
const std::string stream_upper_bound = "e0";
// Bounds how many stream versions the writer caches; a miss is one RocksDB seek.
constexpr size_t max_cached_stream_versions = 1'000'000;

status from_rocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return status::success();
  if (s.IsNotFound()) return status::error(status_code::not_found, what + ": not found");
  if (s.IsCorruption()) return status::error(status_code::corrupt, what + ": " + s.ToString());
  return status::error(status_code::io_error, what + ": " + s.ToString());
}

std::string encode_versioned(uint64_t a, uint32_t state_version, const std::string& state) {
  return be64(a) + be64(state_version) + state;
}

bool decode_versioned(const std::string& v, uint64_t& a, uint32_t& state_version,
                      std::string& state) {
  if (v.size() < 16) return false;
  a = read_be64(v);
  state_version = static_cast<uint32_t>(read_be64(std::string_view(v).substr(8)));
  state = v.substr(16);
  return true;
}

bool valid_stream_id(const std::string& s) {
  return !s.empty() && s.size() <= 512 && s.find('\0') == std::string::npos;
}

class rocks_event_store final : public event_store {
 public:
  explicit rocks_event_store(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

  std::vector<append_outcome> append_batch(const std::vector<append_request>& batch,
                                           int64_t time_ms) override {
    std::vector<append_outcome> outcomes(batch.size());
    rocksdb::WriteBatch wb;
    uint64_t gseq = last_global_seq();
    int64_t time = std::max(time_ms, last_time_ms());  // the log's clock never runs backwards
    // Versions as they will be once this batch lands; the cache is only
    // updated after the write succeeded.
    std::unordered_map<std::string, uint64_t> pending;
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& req = batch[i];
      auto& out = outcomes[i];
      if (!valid_stream_id(req.stream) || req.events.empty()) {
        out.result = status::error(status_code::invalid_argument,
                                   "append to stream '" + req.stream +
                                       "': need a stream id without NUL and at least one event");
        continue;
      }
      auto it = pending.find(req.stream);
      uint64_t current = it != pending.end() ? it->second : stream_version(req.stream);
      if (current != req.expected_version) {
        out.result = status::error(
            status_code::conflict, "stream '" + req.stream + "' is at version " +
                                       std::to_string(current) + ", append expected " +
                                       std::to_string(req.expected_version));
        out.stream_version = current;
        continue;
      }
      out.records.reserve(req.events.size());
      for (const auto& ev : req.events) {
        event_record r{req.stream, ++current, ++gseq, ev.type, ev.schema_version,
                       time, req.principal, req.request_id, ev.payload};
        wb.Put(stream_key(r.stream, r.stream_seq), be64(r.global_seq));
        wb.Put(global_key(r.global_seq), encode_record(r));
        out.records.push_back(std::move(r));
      }
      out.stream_version = current;
      pending[req.stream] = current;
    }
    if (pending.empty()) return outcomes;

    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto s = db_->Write(wo, &wb);
    if (!s.ok()) {
      // Nothing of this batch is acknowledged; forget cached positions so the
      // next batch re-reads them from disk.
      auto err = from_rocks(s, "synced write of " + std::to_string(pending.size()) + " streams");
      for (auto& out : outcomes)
        if (out.result.ok()) {
          out.result = err;
          out.records.clear();
        }
      versions_.clear();
      last_gseq_.reset();
      last_time_.reset();
      return outcomes;
    }
    if (versions_.size() + pending.size() > max_cached_stream_versions) versions_.clear();
    for (auto& [stream, v] : pending) versions_[stream] = v;
    last_gseq_ = gseq;
    last_time_ = time;
    return outcomes;
  }

  uint64_t stream_version(const std::string& stream) override {
    if (auto it = versions_.find(stream); it != versions_.end()) return it->second;
    auto prefix = stream_prefix(stream);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
    it->SeekForPrev(prefix + std::string(8, '\xff'));
    uint64_t v = 0;
    if (it->Valid() && it->key().starts_with(prefix))
      v = read_be64(it->key().ToStringView().substr(prefix.size()));
    return v;
  }

  uint64_t last_global_seq() override {
    if (!last_gseq_) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
      it->SeekForPrev("g/" + std::string(8, '\xff'));
      last_gseq_ = (it->Valid() && it->key().starts_with("g/"))
                       ? read_be64(it->key().ToStringView().substr(2))
                       : 0;
    }
    return *last_gseq_;
  }

  int64_t last_event_time_ms() override { return last_time_ms(); }

  status read_stream(const std::string& stream, uint64_t from,
                     const record_visitor& visit) override {
    auto prefix = stream_prefix(stream);
    std::vector<uint64_t> gseqs;
    {
      rocksdb::ReadOptions ro;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      for (it->Seek(stream_key(stream, std::max<uint64_t>(from, 1)));
           it->Valid() && it->key().starts_with(prefix); it->Next())
        gseqs.push_back(read_be64(it->value().ToStringView()));
      if (!it->status().ok()) return from_rocks(it->status(), "reading stream '" + stream + "'");
    }
    event_record r;
    std::string value;
    for (auto g : gseqs) {
      auto s = db_->Get({}, global_key(g), &value);
      if (!s.ok()) return from_rocks(s, "event #" + std::to_string(g) + " of stream '" + stream + "'");
      auto d = decode_record(value, r);
      if (!d.ok()) return with_context(d, g);
      if (!visit(r)) break;
    }
    return status::success();
  }

  status read_all(uint64_t from, const record_visitor& visit) override {
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(global_upper_bound);
    ro.iterate_upper_bound = &upper;
    ro.readahead_size = 4 << 20;
    ro.fill_cache = false;  // a full replay must not evict the hot working set
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    event_record r;
    for (it->Seek(global_key(std::max<uint64_t>(from, 1))); it->Valid(); it->Next()) {
      auto d = decode_record(it->value().ToStringView(), r);
      if (!d.ok()) return with_context(d, read_be64(it->key().ToStringView().substr(2)));
      if (!visit(r)) return status::success();
    }
    return from_rocks(it->status(), "scanning the global log");
  }

  status put_snapshot(const std::string& stream, const snapshot& s) override {
    return from_rocks(db_->Put({}, "s/" + stream,
                               encode_versioned(s.stream_version, s.state_version, s.state)),
                      "snapshot of '" + stream + "'");
  }

  std::optional<snapshot> get_snapshot(const std::string& stream, status& result) override {
    snapshot snap;
    if (!get_versioned("s/" + stream, "snapshot of '" + stream + "'", snap.stream_version,
                       snap.state_version, snap.state, result))
      return std::nullopt;
    return snap;
  }

  status put_checkpoint(const std::string& projection, const checkpoint& c) override {
    return from_rocks(db_->Put({}, "p/" + projection,
                               encode_versioned(c.global_seq, c.state_version, c.state)),
                      "checkpoint of projection '" + projection + "'");
  }

  std::optional<checkpoint> get_checkpoint(const std::string& projection,
                                           status& result) override {
    checkpoint c;
    if (!get_versioned("p/" + projection, "checkpoint of projection '" + projection + "'",
                       c.global_seq, c.state_version, c.state, result))
      return std::nullopt;
    return c;
  }

  status catch_up_with_primary() override {
    last_gseq_.reset();
    last_time_.reset();
    versions_.clear();
    return from_rocks(db_->TryCatchUpWithPrimary(), "catching up with the running kumod");
  }

  status put_raw_record(uint64_t global_seq, const std::string& bytes) override {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return from_rocks(db_->Put(wo, global_key(global_seq), bytes), "raw record write");
  }

  verify_report verify() override {
    verify_report rep;
    auto problem = [&rep](std::string p) {
      if (rep.problems.size() < 100) rep.problems.push_back(std::move(p));
    };
    // Pass 1: the global log, in order. Remember where each stream ended.
    std::unordered_map<std::string, uint64_t> stream_last;
    uint64_t expected_gseq = 1;
    {
      rocksdb::ReadOptions ro;
      rocksdb::Slice upper(global_upper_bound);
      ro.iterate_upper_bound = &upper;
      ro.fill_cache = false;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      event_record r;
      for (it->Seek("g/"); it->Valid(); it->Next()) {
        uint64_t key_gseq = read_be64(it->key().ToStringView().substr(2));
        if (key_gseq != expected_gseq)
          problem("global sequence gap: expected event #" + std::to_string(expected_gseq) +
                  ", found #" + std::to_string(key_gseq));
        expected_gseq = key_gseq + 1;
        ++rep.events;
        auto d = decode_record(it->value().ToStringView(), r);
        if (!d.ok()) {
          problem(with_context(d, key_gseq).message);
          continue;
        }
        if (r.global_seq != key_gseq)
          problem("event #" + std::to_string(key_gseq) + " says it is #" +
                  std::to_string(r.global_seq));
        auto& last = stream_last[r.stream];
        if (r.stream_seq != last + 1)
          problem("stream '" + r.stream + "': event #" + std::to_string(key_gseq) + " has seq " +
                  std::to_string(r.stream_seq) + ", expected " + std::to_string(last + 1));
        last = r.stream_seq;
      }
      if (!it->status().ok()) problem(from_rocks(it->status(), "global scan").message);
    }
    rep.streams = stream_last.size();
    // Pass 2: the per-stream index must point at exactly those events.
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper(stream_upper_bound);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    uint64_t index_entries = 0;
    std::string value;
    event_record r;
    for (it->Seek("e/"); it->Valid(); it->Next()) {
      ++index_entries;
      auto key = it->key().ToStringView().substr(2);
      auto nul = key.find('\0');
      if (nul == std::string_view::npos || key.size() != nul + 9) {
        problem("malformed stream index key");
        continue;
      }
      std::string stream(key.substr(0, nul));
      uint64_t seq = read_be64(key.substr(nul + 1));
      uint64_t gseq = read_be64(it->value().ToStringView());
      if (!db_->Get({}, global_key(gseq), &value).ok() || !decode_record(value, r).ok() ||
          r.stream != stream || r.stream_seq != seq)
        problem("stream '" + stream + "' seq " + std::to_string(seq) +
                " points at event #" + std::to_string(gseq) + ", which is not that event");
    }
    if (index_entries != rep.events)
      problem("stream index has " + std::to_string(index_entries) + " entries for " +
              std::to_string(rep.events) + " events");
    return rep;
  }

 private:
  // Reads a snapshot or checkpoint value. False when absent (result ok) or
  // unreadable (result says why).
  bool get_versioned(const std::string& key, const std::string& what, uint64_t& position,
                     uint32_t& state_version, std::string& state, status& result) {
    std::string v;
    auto s = db_->Get({}, key, &v);
    result = status::success();
    if (s.IsNotFound()) return false;
    if (!s.ok()) {
      result = from_rocks(s, what);
      return false;
    }
    if (!decode_versioned(v, position, state_version, state)) {
      result = status::error(status_code::corrupt, what + " is truncated");
      return false;
    }
    return true;
  }

  static status with_context(status s, uint64_t gseq) {
    s.message = "event #" + std::to_string(gseq) + ": " + s.message;
    return s;
  }

  int64_t last_time_ms() {
    if (!last_time_) {
      last_time_ = 0;
      if (auto g = last_global_seq()) {
        std::string v;
        event_record r;
        if (db_->Get({}, global_key(g), &v).ok() && decode_record(v, r).ok())
          last_time_ = r.time_ms;
      }
    }
    return *last_time_;
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::unordered_map<std::string, uint64_t> versions_;
  std::optional<uint64_t> last_gseq_;
  std::optional<int64_t> last_time_;
};

}  // namespace

std::unique_ptr<event_store> event_store::open(const std::string& path, open_mode mode,
                                               status& result,
                                               const std::string& secondary_path) {
  rocksdb::Options opts;
  opts.create_if_missing = mode == open_mode::read_write;
  opts.compression = rocksdb::kLZ4Compression;
  opts.write_buffer_size = 64 << 20;
  opts.max_background_jobs = 2;
  rocksdb::BlockBasedTableOptions table;
  table.block_size = 32 << 10;
  opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (mode == open_mode::read_write) {
    s = rocksdb::DB::Open(opts, path, &raw);
  } else {
    opts.max_open_files = -1;  // required by secondary instances
    s = rocksdb::DB::OpenAsSecondary(opts, path, secondary_path, &raw);
  }
  result = from_rocks(s, "opening event store at " + path);
  if (!s.ok()) return nullptr;
  return std::make_unique<rocks_event_store>(std::unique_ptr<rocksdb::DB>(raw));
}

}  // namespace kumo::persistence
