// CreateSnapshot, DeleteSnapshot, DescribeSnapshots,
// DescribeSnapshotAttribute and ModifySnapshotAttribute.
//
// Commands go to the Snapshot aggregate "<owner>/<snap id>": only the owner
// can change or delete a snapshot. Other accounts see it (and create volumes
// from it) only once the owner shares it through createVolumePermission.
#include "api/op_requests.h"
#include "api/permissions.h"
#include "api/storage_lookups.h"

#include "actors/storage/backing_store.h"
#include "actors/storage/storage_actors.h"
#include "persistence/time_format.h"

#include <algorithm>

namespace kumo::api {
namespace {

using namespace actors;
using snapshots = std::vector<snapshot::state>;

std::optional<std::string> snapshot_id_param(const op_ptr& c) {
  auto id = required(c, "SnapshotId");
  if (id && !snapshot::valid_snapshot_id(*id)) {
    c->fail("InvalidSnapshotID.Malformed", "Invalid id: \"" + id->substr(0, 64) + "\" (expecting \"snap-...\")");
    return std::nullopt;
  }
  return id;
}

void fail_not_found(const op_ptr& c, const std::string& id) {
  c->fail("InvalidSnapshot.NotFound", "The snapshot '" + id.substr(0, 64) + "' does not exist.");
}

template <class After>
void command_snapshot(const op_ptr& c, const std::string& snapshot_id, snapshot::command cmd, After after) {
  c->self->request(c->cloud->snapshots, actor_timeout, snapshot::aggregate_id(c->account_id, snapshot_id),
                   std::move(cmd), c->meta())
      .then(
          [=](snapshot_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            if (r.global_seq) c->wrote(r.global_seq);
            after(r);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void respond_true(const op_ptr& c) {
  xml_writer w;
  w.leaf("return", "true");
  c->respond(w);
}

// The fields of EC2's Snapshot shape.
void write_snapshot(xml_writer& w, const snapshot::state& s) {
  w.leaf("snapshotId", s.snapshot_id).leaf("volumeId", s.spec.volume_id).leaf("status", snapshot::name_of(s.status));
  if (!s.status_detail.empty()) w.leaf("statusMessage", s.status_detail);
  w.leaf("startTime", iso_time(s.spec.start_ms)).leaf("progress", std::to_string(s.progress) + "%");
  w.leaf("ownerId", s.owner_id).leaf("volumeSize", std::to_string(s.spec.volume_size_gib));
  w.leaf("description", s.spec.description).leaf("encrypted", "false").leaf("storageTier", "standard");
  write_tag_set(w, s.spec.tags);
}

// ---- CreateSnapshot

void create_snapshot(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto volume_id = required(c, "VolumeId");
  if (!volume_id) return;
  if (!volume::valid_volume_id(*volume_id))
    return c->fail("InvalidVolumeID.Malformed", "Invalid id: \"" + volume_id->substr(0, 64) + "\" (expecting \"vol-...\")");
  auto description = c->params.get("Description").value_or("");
  if (description.size() > 255) return c->fail("InvalidParameterValue", "the description is at most 255 characters");
  auto tags = tags_for(c, "snapshot");
  if (!tags) return;
  with_volumes(c, [=](std::vector<volume::state>& vols) {
    auto v = std::find_if(vols.begin(), vols.end(), [&](const volume::state& s) { return s.volume_id == *volume_id; });
    if (v == vols.end())
      return c->fail("InvalidVolume.NotFound", "The volume '" + *volume_id + "' does not exist.");
    if (v->status != volume::status::available && v->status != volume::status::in_use)
      return c->fail("IncorrectState", "Volume '" + *volume_id + "' is " + volume::name_of(v->status) +
                                           "; snapshots are taken of available or in-use volumes");
    const auto snapshot_id = derived_id(c, "snap", "snapshot");
    snapshot::snapshot_spec spec;
    spec.volume_id = *volume_id;
    spec.volume_size_gib = v->spec.size_gib;
    spec.source_path = v->spec.file_path;
    spec.file_path = storage::snapshot_file(c->cfg->data_dir, c->account_id, snapshot_id);
    spec.description = description;
    spec.start_ms = persistence::now_ms();
    spec.tags = *tags;
    command_snapshot(c, snapshot_id, snapshot::create{spec}, [=](const snapshot_reply& r) {
      xml_writer w;
      write_snapshot(w, r.state);
      c->respond(w);
    });
  });
}

// ---- DeleteSnapshot

void delete_snapshot(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto id = snapshot_id_param(c);
  if (!id) return;
  command_snapshot(c, *id, snapshot::remove{}, [=](const snapshot_reply&) { respond_true(c); });
}

// ---- DescribeSnapshots

std::vector<std::string> snapshot_filter_values(const snapshot::state& s, const std::string& f) {
  if (f == "snapshot-id") return {s.snapshot_id};
  if (f == "volume-id") return {s.spec.volume_id};
  if (f == "status") return {snapshot::name_of(s.status)};
  if (f == "owner-id") return {s.owner_id};
  if (f == "progress") return {std::to_string(s.progress) + "%"};
  if (f == "start-time") return {iso_time(s.spec.start_ms)};
  if (f == "volume-size") return {std::to_string(s.spec.volume_size_gib)};
  if (f == "description") return {s.spec.description};
  if (f == "encrypted") return {"false"};
  return tag_filter_values(f, s.spec.tags);
}

const std::set<std::string> snapshot_filters = {"snapshot-id", "volume-id",   "status",      "owner-id",
                                                "progress",    "start-time",  "volume-size", "description",
                                                "encrypted",   "tag-key",     "tag-value",   "tag:*"};

void describe_snapshots(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto filters = checked_filters(c, snapshot_filters);
  if (!filters) return;
  query_error err;
  auto ids = c->params.list("SnapshotId", err);
  auto owners = ids ? c->params.list("Owner", err) : std::nullopt;
  auto restorable = owners ? c->params.list("RestorableBy", err) : std::nullopt;
  if (!restorable) return c->fail(err);
  for (auto& o : *owners)
    if (o == "self") o = c->account_id;
  for (const auto& r : *restorable)
    if (r != "self" && r != c->account_id)
      return c->fail("InvalidParameterValue", "RestorableBy may name only the caller ('self' or its own account)");
  with_snapshots(c, [=](snapshots& all) {
    // A snapshot being deleted is gone for the user (EC2 has no such state).
    std::erase_if(all, [](const snapshot::state& s) { return s.status == snapshot::status::deleting; });
    for (const auto& id : *ids)
      if (std::none_of(all.begin(), all.end(), [&](const snapshot::state& s) { return s.snapshot_id == id; }))
        return fail_not_found(c, id);
    snapshots out;
    for (auto& s : all)
      if (listed(*ids, s.snapshot_id) && listed(*owners, s.owner_id) &&
          matches(*filters, [&](const std::string& f) { return snapshot_filter_values(s, f); }))
        out.push_back(std::move(s));
    auto page = paginate(c, out.size());
    if (!page) return;
    xml_writer w;
    w.open("snapshotSet");
    for (size_t i = page->begin; i < page->end; ++i) {
      w.open("item");
      write_snapshot(w, out[i]);
      w.close("item");
    }
    w.close("snapshotSet");
    if (!page->next_token.empty()) w.leaf("nextToken", page->next_token);
    c->respond(w);
  });
}

// ---- DescribeSnapshotAttribute / ModifySnapshotAttribute

// The caller's own snapshot (shared ones are not theirs to inspect or change).
template <class Then>
void with_own_snapshot(const op_ptr& c, const std::string& id, Then then) {
  with_snapshots(c, [=](snapshots& all) {
    for (const auto& s : all)
      if (s.snapshot_id == id && s.owner_id == c->account_id) return then(s);
    fail_not_found(c, id);
  });
}

void describe_snapshot_attribute(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto id = snapshot_id_param(c);
  auto attribute = id ? required(c, "Attribute") : std::nullopt;
  if (!attribute) return;
  if (*attribute != "createVolumePermission" && *attribute != "productCodes")
    return c->fail("InvalidParameterValue", "Value (" + attribute->substr(0, 32) +
                                                ") for parameter Attribute is invalid: use createVolumePermission "
                                                "or productCodes");
  with_own_snapshot(c, *id, [=](const snapshot::state& s) {
    xml_writer w;
    w.leaf("snapshotId", s.snapshot_id);
    w.open(*attribute);
    if (*attribute == "createVolumePermission") {
      if (s.is_public) w.open("item").leaf("group", "all").close("item");
      for (const auto& a : s.shared_with) w.open("item").leaf("userId", a).close("item");
    }
    w.close(*attribute);
    c->respond(w);
  });
}

void modify_snapshot_attribute(const op_ptr& c) {
  if (!storage_ready(c)) return;
  auto id = snapshot_id_param(c);
  if (!id) return;
  if (auto attribute = c->params.get("Attribute"); attribute && *attribute != "createVolumePermission")
    return c->fail("InvalidParameterValue", "Value (" + attribute->substr(0, 32) +
                                                ") for parameter Attribute is invalid: kumo changes "
                                                "createVolumePermission only");
  auto lists = permission_params(c, "CreateVolumePermission", "InvalidParameterValue");
  if (!lists) return;
  snapshot::permission_change change{lists->add_accounts, lists->remove_accounts, lists->add_public,
                                     lists->remove_public};
  command_snapshot(c, *id, snapshot::command{change}, [=](const snapshot_reply&) { respond_true(c); });
}

}  // namespace

void register_snapshot_ops(op_table& t) {
  t["CreateSnapshot"] = {create_snapshot};
  t["DeleteSnapshot"] = {delete_snapshot};
  t["DescribeSnapshots"] = {describe_snapshots};
  t["DescribeSnapshotAttribute"] = {describe_snapshot_attribute};
  t["ModifySnapshotAttribute"] = {modify_snapshot_attribute};
}

}  // namespace kumo::api
