#include "actors/storage/volume.h"

#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace kumo::actors {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(resource_tag, key, value)
}  // namespace kumo::actors

namespace kumo::actors::volume {

using json = nlohmann::json;
using decision_t = decision<aggregate>;

NLOHMANN_JSON_SERIALIZE_ENUM(status, {{status::creating, "creating"},
                                      {status::available, "available"},
                                      {status::in_use, "in-use"},
                                      {status::deleting, "deleting"},
                                      {status::deleted, "deleted"},
                                      {status::error, "error"}})
NLOHMANN_JSON_SERIALIZE_ENUM(attach_status, {{attach_status::none, "none"},
                                             {attach_status::attaching, "attaching"},
                                             {attach_status::attached, "attached"},
                                             {attach_status::detaching, "detaching"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(volume_spec, size_gib, zone, volume_type, iops, snapshot_id, snapshot_path,
                                   file_path, client_token, created_ms, tags)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(attachment, instance_id, device, target_dev, state, at_ms,
                                   delete_on_termination)
NLOHMANN_JSON_SERIALIZE_ENUM(modify_status, {{modify_status::none, "none"},
                                             {modify_status::modifying, "modifying"},
                                             {modify_status::completed, "completed"},
                                             {modify_status::failed, "failed"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(modification, state, original_size_gib, target_size_gib, original_type,
                                   target_type, start_ms, end_ms, detail)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(created, owner_id, volume_id, spec, attach)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(state, exists, retired, owner_id, volume_id, spec, status, status_detail,
                                   attach, modification)

const char* name_of(status s) {
  switch (s) {
    case status::creating: return "creating";
    case status::available: return "available";
    case status::in_use: return "in-use";
    case status::deleting: return "deleting";
    case status::deleted: return "deleted";
    case status::error: return "error";
  }
  return "error";
}

const char* name_of(modify_status s) {
  switch (s) {
    case modify_status::none: return "completed";
    case modify_status::modifying: return "modifying";
    case modify_status::completed: return "completed";
    case modify_status::failed: return "failed";
  }
  return "failed";
}

const char* name_of(attach_status s) {
  switch (s) {
    case attach_status::none: return "detached";
    case attach_status::attaching: return "attaching";
    case attach_status::attached: return "attached";
    case attach_status::detaching: return "detaching";
  }
  return "detached";
}

bool valid_volume_id(const std::string& id) {
  return id.size() == 21 && id.compare(0, 4, "vol-") == 0 &&
         std::all_of(id.begin() + 4, id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string aggregate_id(const std::string& account_id, const std::string& volume_id) {
  return account_id + "/" + volume_id;
}

bool aggregate::valid_id(const std::string& id) {
  return id.size() == 34 && id[12] == '/' &&
         std::all_of(id.begin(), id.begin() + 12, [](char c) { return c >= '0' && c <= '9'; }) &&
         valid_volume_id(id.substr(13));
}

std::optional<std::string> target_dev_of(const std::string& device) {
  std::string letter;
  if (device.size() == 8 && device.compare(0, 7, "/dev/sd") == 0) letter = device.substr(7);
  else if (device.size() == 9 && device.compare(0, 8, "/dev/xvd") == 0) letter = device.substr(8);
  if (letter.size() != 1 || letter[0] < 'f' || letter[0] > 'p') return std::nullopt;
  return std::string("vd") + static_cast<char>('b' + (letter[0] - 'f'));
}

namespace {

decision_t incorrect_state(const state& s, const std::string& what) {
  return decision_t::refuse("IncorrectState", "Volume '" + s.volume_id + "' is in the '" + name_of(s.status) +
                                                  "' state and cannot be " + what);
}

}  // namespace

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto volume_id = id.substr(13);
  if (!s.exists && !std::holds_alternative<create>(c))
    return decision_t::refuse("InvalidVolume.NotFound", "The volume '" + volume_id + "' does not exist.");
  return std::visit(
      overloaded{
          [&](const create& cmd) -> decision_t {
            // A retried call (same ClientToken, so the same derived id) creates nothing new.
            if (s.exists && !cmd.spec.client_token.empty() && s.spec.client_token == cmd.spec.client_token)
              return {};
            if (s.exists || s.retired)
              return decision_t::refuse("InternalError", "volume id " + volume_id +
                                                             " was used before and is never reused; retry the request");
            if (cmd.spec.size_gib < 1 || cmd.spec.size_gib > max_size_gib)
              return decision_t::refuse("InvalidParameterValue",
                                        "Volume size must be 1-" + std::to_string(max_size_gib) + " GiB");
            if (cmd.spec.file_path.empty() || cmd.spec.zone.empty())
              return decision_t::refuse("InvalidParameterValue", "a volume needs a zone and a backing file");
            auto attach = cmd.attach_to;
            if (!attach.instance_id.empty()) {
              auto dev = target_dev_of(attach.device);
              if (!dev)
                return decision_t::refuse("InvalidParameterValue", "Invalid value '" + attach.device.substr(0, 32) +
                                                                       "' for device: use /dev/sdf to /dev/sdp");
              attach.target_dev = *dev;
              attach.state = attach_status::attaching;
              attach.at_ms = cmd.spec.created_ms;
            }
            return {{created{id.substr(0, 12), volume_id, cmd.spec, attach}}, {}};
          },
          [&](const file_ready& cmd) -> decision_t {
            if (s.status != status::creating) return {};  // a late or repeated report
            if (!cmd.ok) return {{failed{cmd.detail}}, {}};
            const auto want = s.spec.size_gib * gib;
            if (cmd.bytes != want)
              return {{failed{"the backing file " + s.spec.file_path + " is " + std::to_string(cmd.bytes) +
                              " bytes, not the " + std::to_string(want) + " asked for"}},
                      {}};
            return {{became_available{cmd.bytes}}, {}};
          },
          [&](const remove&) -> decision_t {
            if (s.status == status::deleting) return {};
            if (s.modification.state == modify_status::modifying)
              return decision_t::refuse("IncorrectState", "Volume '" + volume_id + "' is being modified");
            if (s.status == status::in_use)
              return decision_t::refuse("VolumeInUse", "Volume " + volume_id + " is currently attached to " +
                                                           s.attach.instance_id);
            if (s.status != status::available && s.status != status::error) return incorrect_state(s, "deleted");
            return {{deleting{}}, {}};
          },
          [&](const file_removed&) -> decision_t {
            if (s.status != status::deleting) return {};
            return {{deleted{}}, {}};
          },
          [&](const attach& cmd) -> decision_t {
            if (s.modification.state == modify_status::modifying)
              return decision_t::refuse("IncorrectState", "Volume '" + volume_id + "' is being modified");
            if (s.status == status::in_use)
              return decision_t::refuse("VolumeInUse", "vol " + volume_id + " is already attached to an instance (" +
                                                           s.attach.instance_id + ")");
            if (s.status != status::available) return incorrect_state(s, "attached");
            if (cmd.instance_zone != s.spec.zone)
              return decision_t::refuse("InvalidVolume.ZoneMismatch",
                                        "The volume '" + volume_id + "' is not in the same availability zone as instance '" +
                                            cmd.instance_id + "'");
            auto dev = target_dev_of(cmd.device);
            if (!dev)
              return decision_t::refuse("InvalidParameterValue", "Invalid value '" + cmd.device.substr(0, 32) +
                                                                     "' for device: use /dev/sdf to /dev/sdp");
            return {{attaching{{cmd.instance_id, cmd.device, *dev, attach_status::attaching, cmd.at_ms,
                                cmd.delete_on_termination}}},
                    {}};
          },
          [&](const detach& cmd) -> decision_t {
            if (s.attach.state == attach_status::none) return incorrect_state(s, "detached");
            if (!cmd.instance_id.empty() && cmd.instance_id != s.attach.instance_id)
              return decision_t::refuse("InvalidAttachment.NotFound", "Volume '" + volume_id +
                                                                          "' is not attached to instance '" +
                                                                          cmd.instance_id + "'");
            if (s.attach.state == attach_status::detaching) return {};
            return {{detaching{cmd.force}}, {}};
          },
          [&](const attach_done&) -> decision_t {
            if (s.attach.state != attach_status::attaching) return {};
            return {{attached{}}, {}};
          },
          [&](const detach_done& cmd) -> decision_t {
            if (s.attach.state == attach_status::none) return {};
            if (cmd.terminated) {
              if (s.attach.delete_on_termination) return {{detached{}, deleting{}}, {}};
              return {{detached{}}, {}};
            }
            if (s.attach.state != attach_status::detaching) return {};
            return {{detached{}}, {}};
          },
          [&](const change_tags& cmd) -> decision_t {
            if (auto err = check_tag_change(s.spec.tags, cmd)) return {{}, err};
            return {{tags_changed{cmd.set, cmd.remove}}, {}};
          },
          [&](const modify& cmd) -> decision_t {
            if (s.modification.state == modify_status::modifying)
              return decision_t::refuse("IncorrectModificationState",
                                        "Volume '" + volume_id + "' is already being modified");
            if (s.status == status::in_use)
              return decision_t::refuse("IncorrectState", "Volume '" + volume_id +
                                                              "' is attached; kumo grows detached volumes (detach it first)");
            if (s.status != status::available) return incorrect_state(s, "modified");
            const auto size = cmd.size_gib ? cmd.size_gib : s.spec.size_gib;
            const auto type = cmd.volume_type.empty() ? s.spec.volume_type : cmd.volume_type;
            if (size < s.spec.size_gib || size > max_size_gib)
              return decision_t::refuse("InvalidParameterValue", "New size " + std::to_string(size) +
                                                                     " GiB must be at least the current " +
                                                                     std::to_string(s.spec.size_gib) + " GiB and at most " +
                                                                     std::to_string(max_size_gib));
            if (size == s.spec.size_gib && type == s.spec.volume_type)
              return decision_t::refuse("InvalidParameterValue", "Volume '" + volume_id + "' already has that size and type");
            modification m{modify_status::modifying, s.spec.size_gib, size, s.spec.volume_type, type, cmd.at_ms, 0, ""};
            // Only the type changes: nothing to do to the file.
            if (size == s.spec.size_gib) return {{modifying{m}, modified{cmd.at_ms}}, {}};
            return {{modifying{m}}, {}};
          },
          [&](const file_resized& cmd) -> decision_t {
            if (s.modification.state != modify_status::modifying) return {};
            const auto want = s.modification.target_size_gib * gib;
            if (!cmd.ok) return {{modify_failed{cmd.detail, cmd.at_ms}}, {}};
            if (cmd.bytes != want)
              return {{modify_failed{"the backing file is " + std::to_string(cmd.bytes) + " bytes, not the " +
                                         std::to_string(want) + " asked for",
                                     cmd.at_ms}},
                      {}};
            return {{modified{cmd.at_ms}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const created& ev) {
                   s = {};
                   s.exists = true;
                   s.owner_id = ev.owner_id;
                   s.volume_id = ev.volume_id;
                   s.spec = ev.spec;
                   s.status = status::creating;
                   s.attach = ev.attach;
                 },
                 [&](const became_available&) {
                   s.status = s.attach.state == attach_status::none ? status::available : status::in_use;
                   s.status_detail.clear();
                 },
                 [&](const failed& ev) {
                   s.status = status::error;
                   s.status_detail = ev.detail;
                 },
                 [&](const deleting&) { s.status = status::deleting; },
                 [&](const deleted&) {
                   state retired;
                   retired.retired = true;
                   retired.owner_id = s.owner_id;
                   retired.volume_id = s.volume_id;
                   retired.status = status::deleted;
                   s = std::move(retired);
                 },
                 [&](const attaching& ev) {
                   s.status = status::in_use;
                   s.attach = ev.to;
                 },
                 [&](const attached&) { s.attach.state = attach_status::attached; },
                 [&](const detaching&) { s.attach.state = attach_status::detaching; },
                 [&](const detached&) {
                   s.attach = {};
                   // A volume still being made (or failed) keeps that status.
                   if (s.status == status::in_use) s.status = status::available;
                 },
                 [&](const tags_changed& ev) { s.spec.tags = apply_tag_change(std::move(s.spec.tags), ev); },
                 [&](const modifying& ev) { s.modification = ev.m; },
                 [&](const modified& ev) {
                   s.modification.state = modify_status::completed;
                   s.modification.end_ms = ev.at_ms;
                   s.spec.size_gib = s.modification.target_size_gib;
                   s.spec.volume_type = s.modification.target_type;
                 },
                 [&](const modify_failed& ev) {
                   s.modification.state = modify_status::failed;
                   s.modification.end_ms = ev.at_ms;
                   s.modification.detail = ev.detail;
                 },
             },
             e);
  return s;
}

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const created& ev) { return persistence::new_event{"volume_created", 1, json(ev).dump()}; },
          [](const became_available& ev) {
            return persistence::new_event{"volume_available", 1, json{{"bytes", ev.bytes}}.dump()};
          },
          [](const failed& ev) {
            return persistence::new_event{"volume_failed", 1, json{{"detail", ev.detail}}.dump()};
          },
          [](const deleting&) { return persistence::new_event{"volume_deleting", 1, "{}"}; },
          [](const deleted&) { return persistence::new_event{"volume_deleted", 1, "{}"}; },
          [](const attaching& ev) { return persistence::new_event{"volume_attaching", 1, json(ev.to).dump()}; },
          [](const attached&) { return persistence::new_event{"volume_attached", 1, "{}"}; },
          [](const detaching& ev) {
            return persistence::new_event{"volume_detaching", 1, json{{"force", ev.force}}.dump()};
          },
          [](const detached&) { return persistence::new_event{"volume_detached", 1, "{}"}; },
          [](const tags_changed& ev) {
            return persistence::new_event{"tags_changed", 1, tag_change_to_json(ev).dump()};
          },
          [](const modifying& ev) { return persistence::new_event{"volume_modifying", 1, json(ev.m).dump()}; },
          [](const modified& ev) {
            return persistence::new_event{"volume_modified", 1, json{{"at_ms", ev.at_ms}}.dump()};
          },
          [](const modify_failed& ev) {
            return persistence::new_event{"volume_modify_failed", 1,
                                          json{{"detail", ev.detail}, {"at_ms", ev.at_ms}}.dump()};
          },
      },
      e);
}

persistence::status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "volume_created") out = j.get<created>();
    else if (r.type == "volume_available") out = became_available{j.at("bytes").get<uint64_t>()};
    else if (r.type == "volume_failed") out = failed{j.at("detail").get<std::string>()};
    else if (r.type == "volume_deleting") out = deleting{};
    else if (r.type == "volume_deleted") out = deleted{};
    else if (r.type == "volume_attaching") out = attaching{j.get<attachment>()};
    else if (r.type == "volume_attached") out = attached{};
    else if (r.type == "volume_detaching") out = detaching{j.at("force").get<bool>()};
    else if (r.type == "volume_detached") out = detached{};
    else if (r.type == "tags_changed") out = tag_change_from_json(j);
    else if (r.type == "volume_modifying") out = modifying{j.get<modification>()};
    else if (r.type == "volume_modified") out = modified{j.at("at_ms").get<int64_t>()};
    else if (r.type == "volume_modify_failed")
      out = modify_failed{j.at("detail").get<std::string>(), j.at("at_ms").get<int64_t>()};
    else return false;
    return true;
  });
}

std::string aggregate::save(const state& s) { return save_json_state(s); }

bool aggregate::load(const std::string& text, state& s) { return load_json_state(text, s); }

}  // namespace kumo::actors::volume
