// CreateVolume, DeleteVolume, DescribeVolumes, DescribeVolumeStatus,
// AttachVolume and DetachVolume.
//
// Commands go to the Volume aggregate "<account>/<vol id>" (so another
// account's volume is InvalidVolume.NotFound by construction); reads come
// from the storage controller's view, scoped to the caller's account. The
// files are made and removed by the storage controller after the command is
// durable: CreateVolume answers "creating" like EC2, DescribeVolumes shows
// "available" once the file exists with exactly the requested size.
#include "api/lookups.h"
#include "api/op_requests.h"
#include "api/storage_lookups.h"

#include "actors/storage/backing_store.h"
#include "actors/storage/storage_actors.h"
#include "persistence/time_format.h"

#include <algorithm>

namespace kumo::api {
namespace {

using namespace actors;
using volumes = std::vector<volume::state>;

const std::set<std::string> volume_types = {"standard", "gp2", "gp3", "io1", "io2", "st1", "sc1"};

// A whole number parameter in [min, max]; nullopt when absent; fails the call when malformed.
std::optional<uint64_t> number_param(const op_ptr& c, const std::string& name, uint64_t min, uint64_t max,
                                     bool& bad) {
  auto v = c->params.get(name);
  if (!v) return std::nullopt;
  bad = v->empty() || v->size() > 9 || v->find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(*v) < min || std::stoull(*v) > max;
  if (bad)
    c->fail("InvalidParameterValue", "Value (" + v->substr(0, 16) + ") for parameter " + name + " is invalid: use " +
                                         std::to_string(min) + " to " + std::to_string(max));
  return bad ? std::nullopt : std::optional<uint64_t>(std::stoull(*v));
}

std::optional<std::string> volume_id_param(const op_ptr& c) {
  auto id = required(c, "VolumeId");
  if (id && !volume::valid_volume_id(*id)) {
    c->fail("InvalidVolumeID.Malformed", "Invalid id: \"" + id->substr(0, 64) + "\" (expecting \"vol-...\")");
    return std::nullopt;
  }
  return id;
}

const volume::state* find_volume(const volumes& all, const std::string& id) {
  for (const auto& v : all)
    if (v.volume_id == id) return &v;
  return nullptr;
}

void fail_not_found(const op_ptr& c, const std::string& id) {
  c->fail("InvalidVolume.NotFound", "The volume '" + id + "' does not exist.");
}

template <class After>
void command_volume(const op_ptr& c, const std::string& volume_id, volume::command cmd, After after) {
  c->self->request(c->cloud->volumes, actor_timeout, volume::aggregate_id(c->account_id, volume_id), std::move(cmd),
                   c->meta())
      .then(
          [=](volume_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            if (r.global_seq) c->wrote(r.global_seq);
            after(r);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void write_attachment(xml_writer& w, const volume::state& s) {
  const auto& a = s.attach;
  w.leaf("volumeId", s.volume_id).leaf("instanceId", a.instance_id).leaf("device", a.device);
  w.leaf("status", volume::name_of(a.state)).leaf("attachTime", iso_time(a.at_ms));
  w.leaf("deleteOnTermination", a.delete_on_termination ? "true" : "false");
}

// The fields of EC2's Volume shape (CreateVolume's body, DescribeVolumes' items).
void write_volume(xml_writer& w, const volume::state& s) {
  w.leaf("volumeId", s.volume_id).leaf("size", std::to_string(s.spec.size_gib)).leaf("snapshotId", s.spec.snapshot_id);
  w.leaf("availabilityZone", s.spec.zone).leaf("status", volume::name_of(s.status));
  w.leaf("createTime", iso_time(s.spec.created_ms));
  w.open("attachmentSet");
  if (s.attach.state != volume::attach_status::none) {
    w.open("item");
    write_attachment(w, s);
    w.close("item");
  }
  w.close("attachmentSet");
  w.leaf("volumeType", s.spec.volume_type);
  if (s.spec.iops) w.leaf("iops", std::to_string(s.spec.iops));
  w.leaf("encrypted", "false").leaf("multiAttachEnabled", "false");
  write_tag_set(w, s.spec.tags);
}

// ---- CreateVolume

void record_volume(const op_ptr& c, const std::string& volume_id, volume::volume_spec spec) {
  command_volume(c, volume_id, volume::create{std::move(spec)}, [=](const volume_reply& r) {
    xml_writer w;
    write_volume(w, r.state);
    c->respond(w);
  });
}

void create_volume(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto zone = required(c, "AvailabilityZone");
  if (!zone) return;
  if (std::find(c->cfg->zones.begin(), c->cfg->zones.end(), *zone) == c->cfg->zones.end())
    return c->fail("InvalidParameterValue", "Invalid availability zone: [" + zone->substr(0, 64) + "]");
  bool bad = false;
  auto size = number_param(c, "Size", 1, volume::max_size_gib, bad);
  if (bad) return;
  auto iops = number_param(c, "Iops", 100, 256000, bad);
  if (bad) return;
  auto type = c->params.get("VolumeType").value_or("gp2");
  if (!volume_types.count(type))
    return c->fail("InvalidParameterValue", "Value (" + type.substr(0, 16) +
                                                ") for parameter volumeType is invalid: use standard, gp2, gp3, io1, "
                                                "io2, st1 or sc1");
  query_error err;
  if (c->params.boolean("Encrypted", err).value_or(false))
    return c->fail("UnsupportedOperation", "kumo volumes are not encrypted; leave Encrypted false");
  if (!err.code.empty()) return c->fail(err);
  auto snapshot_id = c->params.get("SnapshotId").value_or("");
  if (!size && snapshot_id.empty())
    return c->fail("MissingParameter", "The request must contain the parameter size or snapshotId");
  auto tags = tags_for(c, "volume");
  if (!tags) return;

  const auto volume_id = derived_id(c, "vol", "volume");
  volume::volume_spec spec;
  spec.size_gib = size.value_or(0);
  spec.zone = *zone;
  spec.volume_type = type;
  spec.iops = iops.value_or(0);
  spec.file_path = storage::volume_file(c->cfg->data_dir, c->account_id, volume_id);
  spec.client_token = c->params.get("ClientToken").value_or("");
  spec.created_ms = persistence::now_ms();
  spec.tags = *tags;
  if (snapshot_id.empty()) return record_volume(c, volume_id, spec);
  with_snapshots(c, [=](std::vector<snapshot::state>& snaps) mutable {
    auto it = std::find_if(snaps.begin(), snaps.end(), [&](const snapshot::state& s) { return s.snapshot_id == snapshot_id; });
    if (it == snaps.end())
      return c->fail("InvalidSnapshot.NotFound", "The snapshot '" + snapshot_id.substr(0, 64) + "' does not exist.");
    if (it->status != snapshot::status::completed)
      return c->fail("IncorrectState", "Snapshot '" + snapshot_id + "' is " + snapshot::name_of(it->status) +
                                           "; volumes are created from completed snapshots");
    if (spec.size_gib == 0) spec.size_gib = it->spec.volume_size_gib;
    if (spec.size_gib < it->spec.volume_size_gib)
      return c->fail("InvalidParameterValue", "Volume of " + std::to_string(spec.size_gib) +
                                                  " GiB is smaller than snapshot " + snapshot_id + ", " +
                                                  std::to_string(it->spec.volume_size_gib) + " GiB");
    spec.snapshot_id = snapshot_id;
    spec.snapshot_path = it->spec.file_path;
    record_volume(c, volume_id, spec);
  });
}

// ---- DescribeVolumes / DescribeVolumeStatus

std::optional<std::vector<std::string>> volume_ids(const op_ptr& c) {
  query_error err;
  auto ids = c->params.list("VolumeId", err);
  if (!ids) {
    c->fail(err);
    return std::nullopt;
  }
  for (const auto& id : *ids)
    if (!volume::valid_volume_id(id)) {
      c->fail("InvalidVolumeID.Malformed", "Invalid id: \"" + id.substr(0, 64) + "\" (expecting \"vol-...\")");
      return std::nullopt;
    }
  return ids;
}

std::vector<std::string> volume_filter_values(const volume::state& s, const std::string& f) {
  const bool attached = s.attach.state != volume::attach_status::none;
  if (f == "volume-id") return {s.volume_id};
  if (f == "status") return {volume::name_of(s.status)};
  if (f == "size") return {std::to_string(s.spec.size_gib)};
  if (f == "availability-zone") return {s.spec.zone};
  if (f == "volume-type") return {s.spec.volume_type};
  if (f == "snapshot-id") return {s.spec.snapshot_id};
  if (f == "create-time") return {iso_time(s.spec.created_ms)};
  if (f == "encrypted") return {"false"};
  if (f == "attachment.instance-id") return attached ? std::vector<std::string>{s.attach.instance_id} : std::vector<std::string>{};
  if (f == "attachment.device") return attached ? std::vector<std::string>{s.attach.device} : std::vector<std::string>{};
  if (f == "attachment.status") return attached ? std::vector<std::string>{volume::name_of(s.attach.state)} : std::vector<std::string>{};
  if (f == "attachment.delete-on-termination")
    return attached ? std::vector<std::string>{s.attach.delete_on_termination ? "true" : "false"} : std::vector<std::string>{};
  return tag_filter_values(f, s.spec.tags);
}

const std::set<std::string> volume_filters = {
    "volume-id", "status", "size", "availability-zone", "volume-type", "snapshot-id", "create-time", "encrypted",
    "attachment.instance-id", "attachment.device", "attachment.status", "attachment.delete-on-termination",
    "tag-key", "tag-value", "tag:*"};

// The caller's volumes selected by VolumeId.N and filters; every named id must exist.
template <class Then>
void select_volumes(const op_ptr& c, const std::set<std::string>& allowed, Then then) {
  if (!storage_ready(c)) return;
  auto filters = checked_filters(c, allowed);
  if (!filters) return;
  auto ids = volume_ids(c);
  if (!ids) return;
  with_volumes(c, [=](volumes& all) {
    for (const auto& id : *ids)
      if (!find_volume(all, id)) return fail_not_found(c, id);
    volumes out;
    for (auto& v : all)
      if (listed(*ids, v.volume_id) &&
          matches(*filters, [&](const std::string& f) { return volume_filter_values(v, f); }))
        out.push_back(std::move(v));
    auto page = paginate(c, out.size());
    if (!page) return;
    then(volumes(out.begin() + page->begin, out.begin() + page->end), page->next_token);
  });
}

void describe_volumes(const op_ptr& c) {
  select_volumes(c, volume_filters, [=](const volumes& page, const std::string& next) {
    xml_writer w;
    w.open("volumeSet");
    for (const auto& v : page) {
      w.open("item");
      write_volume(w, v);
      w.close("item");
    }
    w.close("volumeSet");
    if (!next.empty()) w.leaf("nextToken", next);
    c->respond(w);
  });
}

void describe_volume_status(const op_ptr& c) {
  select_volumes(c, volume_filters, [=](const volumes& page, const std::string& next) {
    xml_writer w;
    w.open("volumeStatusSet");
    for (const auto& v : page) {
      // ok once the file exists with its exact size; impaired when it could not be made.
      const char* status = v.status == volume::status::error      ? "impaired"
                           : v.status == volume::status::creating ? "insufficient-data"
                                                                  : "ok";
      w.open("item").leaf("volumeId", v.volume_id).leaf("availabilityZone", v.spec.zone);
      w.open("volumeStatus").leaf("status", status).open("details");
      w.open("item").leaf("name", "io-enabled").leaf("status", v.status == volume::status::error ? "failed" : "passed").close("item");
      w.open("item").leaf("name", "io-performance").leaf("status", "not-applicable").close("item");
      w.close("details").close("volumeStatus");
      w.open("actionsSet").close("actionsSet").open("eventsSet").close("eventsSet");
      w.close("item");
    }
    w.close("volumeStatusSet");
    if (!next.empty()) w.leaf("nextToken", next);
    c->respond(w);
  });
}

// ---- DeleteVolume / AttachVolume / DetachVolume

void delete_volume(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto id = volume_id_param(c);
  if (!id) return;
  command_volume(c, *id, volume::remove{}, [=](const volume_reply&) {
    xml_writer w;
    w.leaf("return", "true");
    c->respond(w);
  });
}

void respond_attachment(const op_ptr& c, const volume::state& s) {
  xml_writer w;
  write_attachment(w, s);
  c->respond(w);
}

void attach_volume(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto id = volume_id_param(c);
  if (!id) return;
  auto instance_id = required(c, "InstanceId");
  if (!instance_id) return;
  auto device = required(c, "Device");
  if (!device) return;
  auto target = volume::target_dev_of(*device);
  if (!target)
    return c->fail("InvalidParameterValue", "Value (" + device->substr(0, 32) +
                                                ") for parameter device is invalid: use /dev/sdf to /dev/sdp "
                                                "(or /dev/xvdf to /dev/xvdp)");
  with_volumes(c, [=](volumes& all) {
    if (!find_volume(all, *id)) return fail_not_found(c, *id);
    with_instances(c, [=](std::vector<instance_view>& instances) {
      auto it = std::find_if(instances.begin(), instances.end(),
                             [&](const instance_view& v) { return v.state.spec.instance_id == *instance_id; });
      if (it == instances.end() || it->state.status == instance::lifecycle::terminated)
        return c->fail("InvalidInstanceID.NotFound", "The instance ID '" + instance_id->substr(0, 64) + "' does not exist");
      const auto status = it->state.status;
      if (status != instance::lifecycle::running && status != instance::lifecycle::stopped)
        return c->fail("IncorrectInstanceState", "Instance '" + *instance_id + "' is " + instance::name_of(status) +
                                                     "; volumes attach to running or stopped instances");
      const auto zone = it->state.spec.zone;
      // The device is claimed first, so two concurrent attaches cannot both get it.
      c->self->request(c->cloud->storage, actor_timeout, claim_device_atom::value, c->account_id, *instance_id,
                       *target, c->request_id, c->read_floor())
          .then(
              [=](bool claimed) {
                if (!claimed)
                  return c->fail("InvalidParameterValue", "Attachment point " + *device + " is already in use");
                auto release = [=] {
                  c->self->send(c->cloud->storage, release_device_atom::value, *instance_id, *target, c->request_id);
                };
                c->self->request(c->cloud->volumes, actor_timeout, volume::aggregate_id(c->account_id, *id),
                                 volume::command{volume::attach{*instance_id, zone, *device, false, persistence::now_ms()}},
                                 c->meta())
                    .then(
                        [=](volume_reply& r) {
                          if (r.global_seq) c->wrote(r.global_seq);
                          // Released once the view has the attachment (claims are checked against it).
                          release();
                          if (r.error) return c->fail(r.error->code, r.error->message);
                          respond_attachment(c, r.state);
                        },
                        [=](caf::error& e) {
                          release();
                          service_unavailable(c, e);
                        });
              },
              [=](caf::error& e) { service_unavailable(c, e); });
    });
  });
}

void detach_volume(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto id = volume_id_param(c);
  if (!id) return;
  query_error err;
  auto force = c->params.boolean("Force", err).value_or(false);
  if (!err.code.empty()) return c->fail(err);
  auto instance_id = c->params.get("InstanceId").value_or("");
  auto device = c->params.get("Device").value_or("");
  with_volumes(c, [=](volumes& all) {
    const auto* v = find_volume(all, *id);
    if (!v) return fail_not_found(c, *id);
    if (!device.empty() && v->attach.state != volume::attach_status::none && v->attach.device != device)
      return c->fail("InvalidAttachment.NotFound", "Volume '" + *id + "' is not attached at " + device.substr(0, 32));
    command_volume(c, *id, volume::detach{instance_id, force},
                   [=](const volume_reply& r) { respond_attachment(c, r.state); });
  });
}

// ---- ModifyVolume (grows detached volumes; the type is recorded)

void modify_volume(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto id = volume_id_param(c);
  if (!id) return;
  bool bad = false;
  auto size = number_param(c, "Size", 1, volume::max_size_gib, bad);
  if (bad) return;
  auto type = c->params.get("VolumeType").value_or("");
  if (!type.empty() && !volume_types.count(type))
    return c->fail("InvalidParameterValue", "Value (" + type.substr(0, 16) + ") for parameter VolumeType is invalid");
  for (const std::string unsupported : {"Iops", "Throughput", "MultiAttachEnabled"})
    if (c->params.has(unsupported))
      return c->fail("InvalidParameterValue", unsupported + " cannot be modified on kumo volumes");
  if (!size && type.empty()) return c->fail("MissingParameter", "ModifyVolume needs Size or VolumeType");
  command_volume(c, *id, volume::modify{size.value_or(0), type, persistence::now_ms()}, [=](const volume_reply& r) {
    const auto& m = r.state.modification;
    xml_writer w;
    w.open("volumeModification").leaf("volumeId", r.state.volume_id);
    w.leaf("modificationState", volume::name_of(m.state));
    w.leaf("targetSize", std::to_string(m.target_size_gib)).leaf("originalSize", std::to_string(m.original_size_gib));
    w.leaf("targetVolumeType", m.target_type).leaf("originalVolumeType", m.original_type);
    w.leaf("progress", m.state == volume::modify_status::modifying ? "0" : "100");
    w.leaf("startTime", iso_time(m.start_ms));
    w.close("volumeModification");
    c->respond(w);
  });
}

}  // namespace

void register_volume_ops(op_table& t) {
  t["CreateVolume"] = {create_volume, true, true};
  t["DescribeVolumes"] = {describe_volumes};
  t["DescribeVolumeStatus"] = {describe_volume_status};
  t["DeleteVolume"] = {delete_volume};
  t["AttachVolume"] = {attach_volume};
  t["DetachVolume"] = {detach_volume};
  t["ModifyVolume"] = {modify_volume};
}

}  // namespace kumo::api
