#include "api/block_devices.h"

#include "api/op_requests.h"
#include "api/storage_lookups.h"

#include "actors/storage/backing_store.h"
#include "actors/storage/storage_actors.h"
#include "persistence/time_format.h"

#include <algorithm>
#include <memory>

namespace kumo::api {
namespace {

using namespace actors;

// One BlockDeviceMapping.N; false after failing the call.
bool parse_mapping(const op_ptr& c, const std::string& base, launch_volume& v) {
  auto device = c->params.get(base + ".DeviceName");
  if (!device) {
    c->fail("MissingParameter", "The request must contain the parameter " + base + ".DeviceName");
    return false;
  }
  if (c->params.has(base + ".VirtualName") || c->params.has(base + ".NoDevice")) {
    c->fail("InvalidParameterValue", base + ": kumo has no instance-store or suppressed devices; map EBS volumes");
    return false;
  }
  if (!volume::target_dev_of(*device)) {
    c->fail("InvalidParameterValue", "Invalid device name " + device->substr(0, 32) +
                                         ": kumo boots from the image; map data volumes to /dev/sdf to /dev/sdp");
    return false;
  }
  v.device = *device;
  query_error err;
  if (auto dot = c->params.boolean(base + ".Ebs.DeleteOnTermination", err)) v.delete_on_termination = *dot;
  if (c->params.boolean(base + ".Ebs.Encrypted", err).value_or(false)) {
    c->fail("UnsupportedOperation", "kumo volumes are not encrypted");
    return false;
  }
  if (!err.code.empty()) {
    c->fail(err);
    return false;
  }
  v.volume_type = c->params.get(base + ".Ebs.VolumeType").value_or("gp2");
  v.snapshot_id = c->params.get(base + ".Ebs.SnapshotId").value_or("");
  if (auto size = c->params.get(base + ".Ebs.VolumeSize")) {
    if (size->empty() || size->size() > 5 || size->find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(*size) < 1 || std::stoull(*size) > volume::max_size_gib) {
      c->fail("InvalidParameterValue", "Value (" + size->substr(0, 16) + ") for parameter " + base +
                                           ".Ebs.VolumeSize is invalid: use 1 to " + std::to_string(volume::max_size_gib));
      return false;
    }
    v.size_gib = std::stoull(*size);
  }
  if (v.size_gib == 0 && v.snapshot_id.empty()) {
    c->fail("MissingParameter", base + ".Ebs needs VolumeSize or SnapshotId");
    return false;
  }
  return true;
}

}  // namespace

void with_launch_volumes(const op_ptr& c, std::function<void(std::vector<launch_volume>)> then) {
  query_error err;
  auto idx = c->params.indexes("BlockDeviceMapping", err);
  if (!idx) return c->fail(err);
  std::vector<launch_volume> out;
  for (int n : *idx) {
    launch_volume v;
    if (!parse_mapping(c, "BlockDeviceMapping." + std::to_string(n), v)) return;
    for (const auto& have : out)
      if (volume::target_dev_of(have.device) == volume::target_dev_of(v.device))
        return c->fail("InvalidParameterValue", "device " + v.device + " is mapped twice");
    out.push_back(std::move(v));
  }
  if (out.empty()) return then(std::move(out));
  if (!storage_ready(c)) return;
  with_snapshots(c, [=](std::vector<snapshot::state>& snaps) mutable {
    for (auto& v : out) {
      if (v.snapshot_id.empty()) continue;
      auto s = std::find_if(snaps.begin(), snaps.end(), [&](const snapshot::state& x) { return x.snapshot_id == v.snapshot_id; });
      if (s == snaps.end() || s->status != snapshot::status::completed)
        return c->fail("InvalidSnapshot.NotFound", "The snapshot '" + v.snapshot_id.substr(0, 64) +
                                                       "' does not exist (or is not completed)");
      if (v.size_gib == 0) v.size_gib = s->spec.volume_size_gib;
      if (v.size_gib < s->spec.volume_size_gib)
        return c->fail("InvalidParameterValue", "Volume of " + std::to_string(v.size_gib) +
                                                    " GiB is smaller than snapshot " + v.snapshot_id);
      v.snapshot_path = s->spec.file_path;
    }
    then(std::move(out));
  });
}

void create_launch_volumes(const op_ptr& c, const std::vector<launch_volume>& volumes,
                           const std::vector<instance::state>& launched, std::function<void()> done) {
  if (volumes.empty() || launched.empty()) return done();
  struct gather {
    size_t waiting = 0;
    std::optional<api_error> error;
  };
  auto g = std::make_shared<gather>();
  g->waiting = volumes.size() * launched.size();
  for (const auto& inst : launched)
    for (size_t n = 0; n < volumes.size(); ++n) {
      const auto& v = volumes[n];
      // Derived from the seed: a ClientToken retry finds the same volumes.
      const auto volume_id = derived_id(c, "vol", "volume/" + inst.spec.instance_id + "/" + std::to_string(n));
      volume::create cmd;
      cmd.spec.size_gib = v.size_gib;
      cmd.spec.zone = inst.spec.zone;
      cmd.spec.volume_type = v.volume_type;
      cmd.spec.snapshot_id = v.snapshot_id;
      cmd.spec.snapshot_path = v.snapshot_path;
      cmd.spec.file_path = storage::volume_file(c->cfg->data_dir, c->account_id, volume_id);
      cmd.spec.client_token = inst.spec.client_token.empty() ? "" : inst.spec.client_token + "/" + volume_id;
      cmd.spec.created_ms = persistence::now_ms();
      cmd.attach_to.instance_id = inst.spec.instance_id;
      cmd.attach_to.device = v.device;
      cmd.attach_to.delete_on_termination = v.delete_on_termination;
      c->self->request(c->cloud->volumes, actor_timeout, volume::aggregate_id(c->account_id, volume_id),
                       volume::command{cmd}, c->meta())
          .then(
              [=](volume_reply& r) {
                if (r.error) g->error = r.error;
                else if (r.global_seq) c->wrote(r.global_seq);
                if (--g->waiting) return;
                if (g->error) return c->fail(g->error->code, g->error->message);
                done();
              },
              [=](caf::error& e) {
                if (!g->error) g->error = api_error{"ServiceUnavailable", c->self->system().render(e)};
                if (--g->waiting == 0)
                  c->fail("ServiceUnavailable", "RunInstances did not create its volumes: " + g->error->message +
                                                    "; retry with the same ClientToken", 503);
              });
    }
}

}  // namespace kumo::api
