// RegisterImage, DescribeImages, DeregisterImage, DescribeImageAttribute,
// ModifyImageAttribute. Commands go to the Image aggregate
// "<caller's account>/<image id>", so only an owner can ever change an image;
// reads come from the images view, which gives every image the caller may see
// (its own, public ones, ones shared with it) and never another's private one.
#include "api/instance_access.h"
#include "api/lookups.h"
#include "api/permissions.h"
#include "api/op_requests.h"

#include "actors/image/image_actors.h"
#include "persistence/time_format.h"

#include <spdlog/spdlog.h>

#include <regex>

namespace kumo::api {
namespace {

using namespace actors::image;

const state* find_image(const std::vector<state>& images, const std::string& image_id) {
  for (const auto& s : images)
    if (s.image_id == image_id) return &s;
  return nullptr;
}

void fail_not_found(const op_ptr& c, const std::string& image_id) {
  c->fail("InvalidAMIID.NotFound", "The image id '[" + image_id + "]' does not exist");
}

// ImageId, checked for shape.
std::optional<std::string> image_id_param(const op_ptr& c) {
  auto id = required(c, "ImageId");
  if (id && !valid_image_id(*id)) {
    c->fail("InvalidAMIID.Malformed", "Invalid id: \"" + id->substr(0, 64) + "\" (expecting \"emi-...\", \"eki-...\" or \"eri-...\")");
    return std::nullopt;
  }
  return id;
}

// Runs then(image) for an image the caller owns. Another account's image
// the caller may see answers AuthFailure, as EC2 does; one it may not see
// does not exist.
template <class Then>
void with_own_image(const op_ptr& c, const std::string& image_id, Then then) {
  with_images(c, [=](const std::vector<state>& images) {
    const auto* s = find_image(images, image_id);
    if (!s) return fail_not_found(c, image_id);
    if (s->owner_id != c->account_id)
      return c->fail("AuthFailure", "Not authorized for image:" + image_id + " (only its owner, account " +
                                        s->owner_id + ", may change it or read its attributes)");
    image_owner_only(c, image_id, [=, own = *s] { then(own); });
  });
}

// Sends a command to the caller's own image; `after(reply)` answers on success.
template <class After>
void command_image(const op_ptr& c, const std::string& image_id, command cmd, After after) {
  c->self->request(c->cloud->images, actor_timeout, aggregate_id(c->account_id, image_id), std::move(cmd),
                   c->meta())
      .then(
          [=](image_reply& r) {
            if (r.error) return c->fail(r.error->code, r.error->message);
            c->wrote(r.global_seq);
            after(r);
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

void respond_true(const op_ptr& c) {
  xml_writer w;
  w.leaf("return", "true");
  c->respond(w);
}

// Removes an image's store directory on a worker thread, then calls done(why)
// (empty on success).
template <class Done>
void remove_files(const op_ptr& c, const std::string& image_id, Done done) {
  auto worker = spawn_store_worker(c->self->system());
  c->self->request(worker, actor_timeout, actors::remove_files_atom::value, images_root(c->cfg->data_dir), image_id)
      .then([=](std::string& why) { done(why); },
            [=](caf::error& e) { done("the store worker failed: " + c->self->system().render(e)); });
}

// Whether the request has `name` or any `name.…` parameter.
bool has_parameter(const op_ptr& c, const std::string& name) {
  const auto& all = c->params.all();
  auto it = all.lower_bound(name);
  return it != all.end() && it->first.compare(0, name.size(), name) == 0 &&
         (it->first.size() == name.size() || it->first[name.size()] == '.');
}

// ---- RegisterImage

// One registration on its way: the request's spec, then what the import adds.
struct registration {
  image_spec spec;
  std::string location;  // ImageLocation, empty for a kernel+ramdisk machine image
  std::string image_id;
};
using registration_ptr = std::shared_ptr<registration>;

std::optional<image_spec> registration_params(const op_ptr& c) {
  image_spec spec;
  auto name = required(c, "Name");
  if (!name) return std::nullopt;
  spec.name = *name;
  spec.description = c->params.get("Description").value_or("");
  spec.architecture = c->params.get("Architecture").value_or("x86_64");
  spec.kernel_id = c->params.get("KernelId").value_or("");
  spec.ramdisk_id = c->params.get("RamdiskId").value_or("");
  spec.root_device_name = c->params.get("RootDeviceName").value_or("");
  spec.created_ms = persistence::now_ms();
  static const std::regex device("/dev/[a-z0-9]{1,16}");
  if (!spec.root_device_name.empty() && !std::regex_match(spec.root_device_name, device)) {
    c->fail("InvalidParameterValue", "Value (" + spec.root_device_name.substr(0, 32) +
                                         ") for parameter RootDeviceName is invalid: use a device such as /dev/sda1");
    return std::nullopt;
  }
  if (auto v = c->params.get("VirtualizationType"); v && *v != "hvm") {
    c->fail("InvalidParameterValue", "Value (" + v->substr(0, 32) + ") for parameter VirtualizationType is invalid: kumo images are hvm");
    return std::nullopt;
  }
  for (const std::string unsupported : {"BlockDeviceMapping", "BillingProduct", "UefiData", "TpmSupport"})
    if (has_parameter(c, unsupported)) {
      c->fail("InvalidParameterValue", unsupported +
                                           " is not supported: kumo registers instance-store images from a file "
                                           "(ImageLocation) or a KernelId and RamdiskId");
      return std::nullopt;
    }
  if (auto mode = c->params.get("BootMode"); mode && *mode != "legacy-bios") {
    c->fail("InvalidParameterValue", "Value (" + mode->substr(0, 32) + ") for parameter BootMode is invalid: kumo boots legacy-bios only");
    return std::nullopt;
  }
  auto tags = tags_for(c, "image");
  if (!tags) return std::nullopt;
  spec.tags = *tags;
  if (auto err = check_request(spec)) {
    c->fail(err->code, err->message);
    return std::nullopt;
  }
  return spec;
}

// KernelId and RamdiskId must name images the caller may launch, of the right kind.
template <class Then>
void check_boot_images(const op_ptr& c, const registration_ptr& reg, Then then) {
  if (reg->spec.kernel_id.empty() && reg->spec.ramdisk_id.empty()) return then();
  with_images(c, [=](const std::vector<state>& images) {
    for (auto [param, id, kind] : {std::tuple{"KernelId", reg->spec.kernel_id, "kernel"},
                                   std::tuple{"RamdiskId", reg->spec.ramdisk_id, "ramdisk"}}) {
      if (id.empty()) continue;
      const auto* s = find_image(images, id);
      if (!s)
        return c->fail("InvalidAMIID.NotFound", "The image id '[" + id + "]' given as " + param +
                                                    " does not exist or is not shared with your account");
      if (s->kind != kind)
        return c->fail("InvalidParameterValue", std::string(param) + " " + id + " is a " + s->kind +
                                                    " image, not a " + kind + " image");
    }
    then();
  });
}

// Ends this request's reservation of the name (see claim_name), on every path
// once a claim was asked for.
void release_name(const op_ptr& c, const registration_ptr& reg) {
  c->self->send(c->cloud->images_view, actors::release_name_atom::value, c->account_id, reg->spec.name,
                c->request_id);
}

// The last step: record the image. A refused registration removes the files
// it imported; the name reservation ends either way.
void record(const op_ptr& c, const registration_ptr& reg) {
  c->self->request(c->cloud->images, actor_timeout, aggregate_id(c->account_id, reg->image_id),
                   command{register_image{reg->spec}}, c->meta())
      .then(
          [=](image_reply& r) {
            release_name(c, reg);  // on success, a later claim waits for the view to have this image
            if (r.error) {
              if (reg->spec.file_path.empty()) return c->fail(r.error->code, r.error->message);
              return remove_files(c, reg->image_id, [=](const std::string& why) {
                if (!why.empty()) spdlog::warn("rid={} image {}: {}", c->request_id, reg->image_id, why);
                c->fail(r.error->code, r.error->message);
              });
            }
            c->wrote(r.global_seq);
            xml_writer w;
            w.leaf("imageId", reg->image_id);
            c->respond(w);
          },
          [=](caf::error& e) {
            // The outcome is unknown (the event may still be written), so the
            // files stay; an unregistered leftover is only disk space.
            release_name(c, reg);
            spdlog::warn("rid={} image {}: no answer from its aggregate ({}); files kept at {}", c->request_id,
                         reg->image_id, c->self->system().render(e), reg->spec.file_path);
            c->fail("ServiceUnavailable", "RegisterImage of " + reg->image_id + " did not complete: " +
                                              c->self->system().render(e) +
                                              "; check DescribeImages before retrying", 503);
          });
}

// Copies, detects, validates and hashes ImageLocation on a worker thread,
// then records the image.
void import_and_record(const op_ptr& c, const registration_ptr& reg) {
  auto worker = spawn_store_worker(c->self->system());
  // No timeout: a big disk takes as long as the disk needs; the worker always answers.
  c->self->request(worker, caf::infinite, actors::import_atom::value, reg->location, images_root(c->cfg->data_dir))
      .then(
          [=](import_result& r) {
            if (r.error) {
              release_name(c, reg);
              return c->fail(r.error->code, r.error->message);
            }
            reg->image_id = r.image_id;
            reg->spec.kind = r.kind;
            reg->spec.file_path = r.file_path;
            reg->spec.disk_format = r.disk_format;
            reg->spec.size_bytes = r.size_bytes;
            reg->spec.sha256 = r.sha256;
            reg->spec.source = reg->location;
            if (r.kind != "machine") reg->spec.root_device_name.clear();
            else if (reg->spec.root_device_name.empty()) reg->spec.root_device_name = "/dev/sda1";
            record(c, reg);
          },
          [=](caf::error& e) {
            release_name(c, reg);
            c->fail("InternalError", "importing " + reg->location + " failed: " + c->self->system().render(e), 500);
          });
}

// Reserves the name (unique per owner, also against registrations in progress).
template <class Then>
void claim_name(const op_ptr& c, const registration_ptr& reg, Then then) {
  c->self->request(c->cloud->images_view, actor_timeout, actors::claim_name_atom::value, c->account_id,
                   reg->spec.name, c->request_id, c->read_floor())
      .then(
          [=](bool claimed) {
            if (!claimed)
              return c->fail("InvalidAMIName.Duplicate",
                             "AMI name " + reg->spec.name + " is already in use by an image of this account");
            then();
          },
          [=](caf::error& e) {
            release_name(c, reg);  // in case the claim was made after all
            service_unavailable(c, e);
          });
}

void register_image_op(const op_ptr& c) {
  auto spec = registration_params(c);
  if (!spec) return;
  auto reg = std::make_shared<registration>();
  reg->spec = std::move(*spec);
  reg->location = c->params.get("ImageLocation").value_or("");
  if (reg->location.empty()) {
    // A machine image that boots a kernel and ramdisk the caller may launch:
    // nothing is read from the host, so any account may register one.
    if (reg->spec.kernel_id.empty() || reg->spec.ramdisk_id.empty())
      return c->fail("MissingParameter",
                     "RegisterImage needs an ImageLocation (a file on the cloud host; admin account only) "
                     "or both KernelId and RamdiskId");
    reg->spec.kind = "machine";
    if (reg->spec.root_device_name.empty()) reg->spec.root_device_name = "/dev/sda1";
    reg->image_id = new_image_id("machine");
    return check_boot_images(c, reg, [=] { claim_name(c, reg, [=] { record(c, reg); }); });
  }
  if (c->cfg->data_dir.empty())
    return c->fail("InternalError", "this kumod has no data directory for the image store (start it with --data-dir)", 500);
  // Reading a path on the cloud host is for the operator only.
  as_admin(c, [=] {
    check_boot_images(c, reg, [=] { claim_name(c, reg, [=] { import_and_record(c, reg); }); });
  });
}

// ---- DescribeImages

void write_image(xml_writer& w, const state& s) {
  w.open("item").leaf("imageId", s.image_id).leaf("imageLocation", s.owner_id + "/" + s.name);
  w.leaf("imageState", "available").leaf("imageOwnerId", s.owner_id).leaf("creationDate", iso_time(s.created_ms));
  w.leaf("isPublic", s.is_public ? "true" : "false").leaf("architecture", s.architecture).leaf("imageType", s.kind);
  if (!s.kernel_id.empty()) w.leaf("kernelId", s.kernel_id);
  if (!s.ramdisk_id.empty()) w.leaf("ramdiskId", s.ramdisk_id);
  w.leaf("platformDetails", "Linux/UNIX").leaf("usageOperation", "RunInstances");
  w.leaf("name", s.name);
  if (!s.description.empty()) w.leaf("description", s.description);
  w.leaf("rootDeviceType", "instance-store");
  if (!s.root_device_name.empty()) w.leaf("rootDeviceName", s.root_device_name);
  w.open("blockDeviceMapping").close("blockDeviceMapping");
  w.leaf("virtualizationType", "hvm");
  write_tag_set(w, s.tags);
  w.leaf("hypervisor", "kvm");  // botocore lists ovm|xen but parses any value; kumo's guests run on QEMU/KVM
  w.close("item");
}

std::vector<std::string> image_filter_values(const state& s, const std::string& f) {
  if (f == "image-id") return {s.image_id};
  if (f == "name") return {s.name};
  if (f == "description") return {s.description};
  if (f == "state") return {"available"};
  if (f == "image-type") return {s.kind};
  if (f == "owner-id") return {s.owner_id};
  if (f == "is-public") return {s.is_public ? "true" : "false"};
  if (f == "architecture") return {s.architecture};
  if (f == "kernel-id") return {s.kernel_id};
  if (f == "ramdisk-id") return {s.ramdisk_id};
  if (f == "root-device-name") return {s.root_device_name};
  if (f == "root-device-type") return {"instance-store"};
  if (f == "virtualization-type") return {"hvm"};
  if (f == "hypervisor") return {"kvm"};
  return tag_filter_values(f, s.tags);
}

// Owner.N: self, an account id, or an AWS alias (kumo has no AWS-owned images).
bool owner_selects(const std::string& owner, const state& s, const std::string& caller) {
  if (owner == "self") return s.owner_id == caller;
  return s.owner_id == owner;
}

// ExecutableBy.N: self (own images and those shared with the caller), all
// (public ones), or an account id (the images explicitly shared with it).
bool executable_by_selects(const std::string& who, const state& s, const std::string& caller) {
  if (who == "all") return s.is_public;
  auto account = who == "self" ? caller : who;
  return s.owner_id == account || std::find(s.launch_accounts.begin(), s.launch_accounts.end(), account) !=
                                      s.launch_accounts.end();
}

void describe_images(const op_ptr& c) {
  auto filters = checked_filters(c, {"image-id", "name", "description", "state", "image-type", "owner-id",
                                     "is-public", "architecture", "kernel-id", "ramdisk-id", "root-device-name",
                                     "root-device-type", "virtualization-type", "hypervisor", "tag-key",
                                     "tag-value", "tag:*"});
  if (!filters) return;
  query_error err;
  auto ids = c->params.list("ImageId", err);
  auto owners = ids ? c->params.list("Owner", err) : std::nullopt;
  auto executable = owners ? c->params.list("ExecutableBy", err) : std::nullopt;
  if (!executable) return c->fail(err);
  for (const auto& id : *ids)
    if (!valid_image_id(id))
      return c->fail("InvalidAMIID.Malformed", "Invalid id: \"" + id.substr(0, 64) + "\" (expecting \"emi-...\")");
  static const std::set<std::string> aliases{"amazon", "aws-marketplace", "aws-backup-vault"};
  for (const auto& o : *owners)
    if (o != "self" && !aliases.count(o) && !valid_account_id(o))
      return c->fail("InvalidUserID.Malformed", "Invalid user id: \"" + o.substr(0, 64) + "\" (Owner is self, an account id or amazon)");
  for (const auto& e : *executable)
    if (e != "self" && e != "all" && !valid_account_id(e))
      return c->fail("InvalidUserID.Malformed", "Invalid user id: \"" + e.substr(0, 64) + "\" (ExecutableBy is self, all or an account id)");
  with_images(c, [=](const std::vector<state>& images) {
    for (const auto& id : *ids)
      if (!find_image(images, id)) return fail_not_found(c, id);
    auto any = [](const std::vector<std::string>& wanted, auto selects) {
      return wanted.empty() || std::any_of(wanted.begin(), wanted.end(), selects);
    };
    xml_writer w;
    w.open("imagesSet");
    for (const auto& s : images) {
      if (!listed(*ids, s.image_id) ||
          !any(*owners, [&](const std::string& o) { return owner_selects(o, s, c->account_id); }) ||
          !any(*executable, [&](const std::string& e) { return executable_by_selects(e, s, c->account_id); }) ||
          !matches(*filters, [&](const std::string& f) { return image_filter_values(s, f); }))
        continue;
      write_image(w, s);
    }
    w.close("imagesSet");
    c->respond(w);
  });
}

// ---- DeregisterImage

void deregister_image_op(const op_ptr& c) {
  auto image_id = image_id_param(c);
  if (!image_id) return;
  auto deregister = [=](const state& s) {
    command_image(c, s.image_id, command{deregister_image{}}, [=](const image_reply&) {
      if (s.file_path.empty()) return respond_true(c);
      // The event is durable: the files can go. If they cannot, the image is
      // gone all the same; the leftover is logged for the operator.
      remove_files(c, s.image_id, [=](const std::string& why) {
        if (!why.empty()) spdlog::warn("rid={} image {} deregistered, files left behind: {}", c->request_id, s.image_id, why);
        respond_true(c);
      });
    });
  };
  with_own_image(c, *image_id, [=](const state& s) {
    if (s.kind == "machine") return deregister(s);
    // A kernel or ramdisk still booted by a machine image (of any account) stays.
    c->self->request(c->cloud->images_view, actor_timeout, actors::image_refs_atom::value, s.image_id, c->read_floor())
        .then(
            [=](std::vector<std::string>& users) {
              if (!users.empty())
                return c->fail("DependencyViolation", s.kind + " image " + s.image_id + " is booted by " +
                                                          std::to_string(users.size()) +
                                                          " machine image(s); deregister those first");
              deregister(s);
            },
            [=](caf::error& e) { service_unavailable(c, e); });
  });
}

// ---- DescribeImageAttribute / ModifyImageAttribute

void describe_image_attribute(const op_ptr& c) {
  auto image_id = image_id_param(c);
  auto attribute = image_id ? required(c, "Attribute") : std::nullopt;
  if (!attribute) return;
  static const std::set<std::string> known{"description", "kernel", "ramdisk", "launchPermission", "productCodes",
                                           "blockDeviceMapping"};
  if (!known.count(*attribute))
    return c->fail("InvalidParameterValue", "Value (" + attribute->substr(0, 32) +
                                                ") for parameter Attribute is invalid: kumo answers description, kernel, "
                                                "ramdisk, launchPermission, productCodes and blockDeviceMapping");
  with_own_image(c, *image_id, [=](const state& s) {
    xml_writer w;
    w.leaf("imageId", s.image_id);
    auto value = [&](const char* element, const std::string& v) {
      w.open(element);
      if (!v.empty()) w.leaf("value", v);
      w.close(element);
    };
    if (*attribute == "description") value("description", s.description);
    else if (*attribute == "kernel") value("kernel", s.kernel_id);
    else if (*attribute == "ramdisk") value("ramdisk", s.ramdisk_id);
    else if (*attribute == "launchPermission") {
      w.open("launchPermission");
      if (s.is_public) w.open("item").leaf("group", "all").close("item");
      for (const auto& a : s.launch_accounts) w.open("item").leaf("userId", a).close("item");
      w.close("launchPermission");
    } else {
      w.open(*attribute).close(*attribute);  // kumo images have no product codes or block devices
    }
    c->respond(w);
  });
}

void modify_image_attribute(const op_ptr& c) {
  auto image_id = image_id_param(c);
  if (!image_id) return;
  if (auto attribute = c->params.get("Attribute"); attribute && *attribute != "launchPermission")
    return c->fail("InvalidParameterValue", "Value (" + attribute->substr(0, 32) +
                                                ") for parameter Attribute is invalid: kumo changes launchPermission only");
  for (const std::string unsupported : {"Description", "Value", "ProductCode", "OrganizationArn",
                                        "OrganizationalUnitArn"})
    if (has_parameter(c, unsupported))
      return c->fail("InvalidParameterValue",
                     unsupported + " is not supported: kumo changes launch permissions only");
  auto lists = permission_params(c, "LaunchPermission", "InvalidAMIAttributeItemValue");
  if (!lists) return;
  auto change = std::optional<change_launch_permission>(
      {lists->add_accounts, lists->remove_accounts, lists->add_public, lists->remove_public});
  with_own_image(c, *image_id, [=](const state& s) {
    command_image(c, s.image_id, command{*change}, [=](const image_reply&) { respond_true(c); });
  });
}

}  // namespace

void register_image_ops(op_table& t) {
  t["RegisterImage"] = {register_image_op};
  t["DescribeImages"] = {describe_images};
  t["DeregisterImage"] = {deregister_image_op};
  t["DescribeImageAttribute"] = {describe_image_attribute};
  t["ModifyImageAttribute"] = {modify_image_attribute};
}

}  // namespace kumo::api
