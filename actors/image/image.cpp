#include "actors/image/image.h"

#include "actors/ids.h"
#include "actors/runtime/json_codec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace kumo::actors::image {

using json = nlohmann::json;
using persistence::status;
using decision_t = decision<aggregate>;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

const char* prefix_of(const std::string& kind) {
  if (kind == "kernel") return "eki";
  if (kind == "ramdisk") return "eri";
  if (kind == "machine") return "emi";
  return "";
}

std::string quoted(const std::string& image_id) { return "'[" + image_id + "]'"; }

}  // namespace

bool launchable_by(const state& s, const std::string& account_id) {
  return s.exists && (s.owner_id == account_id || s.is_public || contains(s.launch_accounts, account_id));
}

std::string aggregate_id(const std::string& owner_id, const std::string& image_id) {
  return owner_id + "/" + image_id;
}

std::string kind_of_id(const std::string& image_id) {
  if (image_id.size() != 21 || image_id[3] != '-' ||
      !std::all_of(image_id.begin() + 4, image_id.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    return "";
  for (const char* kind : {"kernel", "ramdisk", "machine"})
    if (image_id.compare(0, 3, prefix_of(kind)) == 0) return kind;
  return "";
}

bool valid_image_id(const std::string& image_id) { return !kind_of_id(image_id).empty(); }

std::string new_image_id(const std::string& kind) { return new_resource_id(prefix_of(kind)); }

bool valid_image_name(const std::string& name) {
  static const std::string extra = "()[] ./-'@_";
  return name.size() >= 3 && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != std::string::npos;
         });
}

bool valid_account_id(const std::string& account_id) {
  return account_id.size() == 12 &&
         std::all_of(account_id.begin(), account_id.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool aggregate::valid_id(const std::string& id) {
  return id.size() == 34 && id[12] == '/' && valid_account_id(id.substr(0, 12)) &&
         valid_image_id(id.substr(13));
}

namespace {

std::optional<api_error> refuse(std::string code, std::string message) {
  return api_error{std::move(code), std::move(message)};
}

}  // namespace

std::optional<api_error> check_request(const image_spec& spec) {
  if (!valid_image_name(spec.name))
    return refuse("InvalidAMIName.Malformed",
                  "AMI names must be 3-128 characters of letters, digits, ( ) [ ] space . / - ' @ _ ('" +
                      spec.name.substr(0, 140) + "')");
  if (spec.description.size() > 255)
    return refuse("InvalidParameterValue", "the description of an image is at most 255 characters");
  if (spec.architecture != "x86_64")
    return refuse("InvalidParameterValue",
                  "Value (" + spec.architecture.substr(0, 32) + ") for parameter Architecture is invalid: kumo runs x86_64 guests only");
  if (!spec.kernel_id.empty() && kind_of_id(spec.kernel_id) != "kernel")
    return refuse("InvalidParameterValue", "KernelId " + spec.kernel_id.substr(0, 32) +
                                               " is not a kernel image (eki-...)");
  if (!spec.ramdisk_id.empty() && kind_of_id(spec.ramdisk_id) != "ramdisk")
    return refuse("InvalidParameterValue", "RamdiskId " + spec.ramdisk_id.substr(0, 32) +
                                               " is not a ramdisk image (eri-...)");
  return check_tag_change({}, {spec.tags, {}});
}

namespace {

// What registration refuses whatever the state: a spec that is inconsistent
// with itself or with the id's kind.
std::optional<api_error> check_spec(const std::string& image_id, const image_spec& spec) {
  if (kind_of_id(image_id) != spec.kind)
    return refuse("InvalidParameterValue", "image id " + image_id + " does not match the image kind '" +
                                               spec.kind + "'");
  if (auto err = check_request(spec)) return err;
  if (spec.kind != "machine") {
    if (spec.file_path.empty())
      return refuse("InvalidParameterValue", "a " + spec.kind + " image needs its file (ImageLocation)");
    if (!spec.kernel_id.empty() || !spec.ramdisk_id.empty())
      return refuse("InvalidParameterCombination",
                    "KernelId and RamdiskId belong to machine images, and ImageLocation holds a " + spec.kind);
    return std::nullopt;
  }
  if (spec.file_path.empty() && (spec.kernel_id.empty() || spec.ramdisk_id.empty()))
    return refuse("MissingParameter",
                  "a machine image needs an ImageLocation (a disk image), or both KernelId and RamdiskId");
  return std::nullopt;
}

// The accounts after a change: removals first, then additions, in order.
std::vector<std::string> changed_accounts(std::vector<std::string> accounts, const change_launch_permission& c) {
  std::erase_if(accounts, [&](const std::string& a) { return contains(c.remove_accounts, a); });
  for (const auto& a : c.add_accounts)
    if (!contains(accounts, a)) accounts.push_back(a);
  return accounts;
}

}  // namespace

decision_t aggregate::decide(const std::string& id, const state& s, const command& c) {
  const auto owner = id.substr(0, 12);
  const auto image_id = id.substr(13);
  auto missing = [&] {
    return decision_t::refuse("InvalidAMIID.NotFound", "The image id " + quoted(image_id) + " does not exist");
  };
  return std::visit(
      overloaded{
          [&](const register_image& cmd) -> decision_t {
            if (s.exists || s.retired)  // ids are random: a repeat is a collision
              return decision_t::refuse("InternalError", "image id " + image_id +
                                                             " was used before and is never reused; retry the registration");
            if (auto err = check_spec(image_id, cmd.spec)) return {{}, err};
            return {{image_registered{owner, image_id, cmd.spec}}, {}};
          },
          [&](const change_launch_permission& cmd) -> decision_t {
            if (!s.exists) return missing();
            for (const auto* list : {&cmd.add_accounts, &cmd.remove_accounts})
              for (const auto& a : *list)
                if (!valid_account_id(a))
                  return decision_t::refuse("InvalidAMIAttributeItemValue",
                                            "'" + a.substr(0, 32) + "' is not an account id (12 digits)");
            if (cmd.add_public && cmd.remove_public)
              return decision_t::refuse("InvalidParameterCombination",
                                        "the group 'all' cannot be both added and removed in one request");
            // The owner launches its own images anyway: sharing with it is a no-op.
            auto wanted = cmd;
            std::erase(wanted.add_accounts, s.owner_id);
            auto after = changed_accounts(s.launch_accounts, wanted);
            change_launch_permission effective;
            for (const auto& a : after)
              if (!contains(s.launch_accounts, a)) effective.add_accounts.push_back(a);
            for (const auto& a : s.launch_accounts)
              if (!contains(after, a)) effective.remove_accounts.push_back(a);
            effective.add_public = cmd.add_public && !s.is_public;
            effective.remove_public = cmd.remove_public && s.is_public;
            if (effective == change_launch_permission{}) return {};  // nothing changes
            return {{launch_permission_changed{effective}}, {}};
          },
          [&](const deregister_image&) -> decision_t {
            if (!s.exists) return missing();
            return {{image_deregistered{image_id}}, {}};
          },
          [&](const change_tags& cmd) -> decision_t {
            if (!s.exists) return missing();
            if (auto err = check_tag_change(s.tags, cmd)) return {{}, err};
            return {{tags_changed{cmd.set, cmd.remove}}, {}};
          },
      },
      c);
}

state aggregate::apply(state s, const event& e) {
  std::visit(overloaded{
                 [&](const image_registered& ev) {
                   s = {};
                   static_cast<image_spec&>(s) = ev.spec;
                   s.exists = true;
                   s.owner_id = ev.owner_id;
                   s.image_id = ev.image_id;
                 },
                 [&](const launch_permission_changed& ev) {
                   s.launch_accounts = changed_accounts(std::move(s.launch_accounts), ev.change);
                   if (ev.change.add_public) s.is_public = true;
                   if (ev.change.remove_public) s.is_public = false;
                 },
                 [&](const image_deregistered&) {
                   state retired;
                   retired.retired = true;
                   retired.owner_id = s.owner_id;
                   retired.image_id = s.image_id;
                   s = std::move(retired);
                 },
                 [&](const tags_changed& ev) { s.tags = apply_tag_change(std::move(s.tags), ev); },
             },
             e);
  return s;
}

// ---- Codec

namespace {

json spec_json(const image_spec& s) {
  return {{"name", s.name},
          {"description", s.description},
          {"kind", s.kind},
          {"architecture", s.architecture},
          {"kernel_id", s.kernel_id},
          {"ramdisk_id", s.ramdisk_id},
          {"file_path", s.file_path},
          {"disk_format", s.disk_format},
          {"size_bytes", s.size_bytes},
          {"sha256", s.sha256},
          {"root_device_name", s.root_device_name},
          {"source", s.source},
          {"created_ms", s.created_ms},
          {"tags", tags_to_json(s.tags)}};
}

image_spec spec_from(const json& j) {
  image_spec s;
  s.name = j.at("name").get<std::string>();
  s.description = j.at("description").get<std::string>();
  s.kind = j.at("kind").get<std::string>();
  s.architecture = j.at("architecture").get<std::string>();
  s.kernel_id = j.at("kernel_id").get<std::string>();
  s.ramdisk_id = j.at("ramdisk_id").get<std::string>();
  s.file_path = j.at("file_path").get<std::string>();
  s.disk_format = j.at("disk_format").get<std::string>();
  s.size_bytes = j.at("size_bytes").get<int64_t>();
  s.sha256 = j.at("sha256").get<std::string>();
  s.root_device_name = j.at("root_device_name").get<std::string>();
  s.source = j.at("source").get<std::string>();
  s.created_ms = j.at("created_ms").get<int64_t>();
  s.tags = tags_from_json(j.at("tags"));
  return s;
}

json permission_json(const change_launch_permission& c) {
  return {{"add_accounts", c.add_accounts}, {"remove_accounts", c.remove_accounts},
          {"add_public", c.add_public},     {"remove_public", c.remove_public}};
}

change_launch_permission permission_from(const json& j) {
  return {j.at("add_accounts").get<std::vector<std::string>>(),
          j.at("remove_accounts").get<std::vector<std::string>>(), j.at("add_public").get<bool>(),
          j.at("remove_public").get<bool>()};
}

}  // namespace

persistence::new_event aggregate::encode(const event& e) {
  return std::visit(
      overloaded{
          [](const image_registered& ev) {
            auto j = spec_json(ev.spec);
            j["owner_id"] = ev.owner_id;
            j["image_id"] = ev.image_id;
            return persistence::new_event{"image_registered", 1, j.dump()};
          },
          [](const launch_permission_changed& ev) {
            return persistence::new_event{"launch_permission_changed", 1, permission_json(ev.change).dump()};
          },
          [](const image_deregistered& ev) {
            return persistence::new_event{"image_deregistered", 1, json{{"image_id", ev.image_id}}.dump()};
          },
          [](const tags_changed& ev) {
            return persistence::new_event{"tags_changed", 1, tag_change_to_json(ev).dump()};
          },
      },
      e);
}

status aggregate::decode(const persistence::event_record& r, event& out) {
  return decode_json_event(r, kind, [&](const json& j) {
    if (r.type == "image_registered")
      out = image_registered{j.at("owner_id").get<std::string>(), j.at("image_id").get<std::string>(),
                             spec_from(j)};
    else if (r.type == "launch_permission_changed")
      out = launch_permission_changed{permission_from(j)};
    else if (r.type == "image_deregistered")
      out = image_deregistered{j.at("image_id").get<std::string>()};
    else if (r.type == "tags_changed")
      out = tag_change_from_json(j);
    else
      return false;
    return true;
  });
}

std::string aggregate::save(const state& s) {
  auto j = spec_json(s);
  j["exists"] = s.exists;
  j["retired"] = s.retired;
  j["owner_id"] = s.owner_id;
  j["image_id"] = s.image_id;
  j["is_public"] = s.is_public;
  j["launch_accounts"] = s.launch_accounts;
  return j.dump();
}

bool aggregate::load(const std::string& text, state& s) {
  return load_json_snapshot(text, [&](const json& j) {
    s = {};
    static_cast<image_spec&>(s) = spec_from(j);
    s.exists = j.at("exists").get<bool>();
    s.retired = j.at("retired").get<bool>();
    s.owner_id = j.at("owner_id").get<std::string>();
    s.image_id = j.at("image_id").get<std::string>();
    s.is_public = j.at("is_public").get<bool>();
    s.launch_accounts = j.at("launch_accounts").get<std::vector<std::string>>();
  });
}

}  // namespace kumo::actors::image
