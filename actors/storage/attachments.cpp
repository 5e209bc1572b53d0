#include "actors/storage/attachments.h"

#include <algorithm>

namespace kumo::actors::storage {

void attachment_index::index(const std::string& id, const volume::state& s) {
  if (s.attach.state != volume::attach_status::none) by_instance_[s.attach.instance_id].insert(id);
}

std::vector<std::string> attachment_index::apply(const persistence::event_record& r) {
  static const std::string prefix = std::string(volume::aggregate::kind) + "/";
  if (r.stream.compare(0, prefix.size(), prefix) != 0) return {};
  const auto id = r.stream.substr(prefix.size());
  std::vector<std::string> touched;
  if (const auto* before = volumes_.find(id); before && before->attach.state != volume::attach_status::none) {
    touched.push_back(before->attach.instance_id);
    auto it = by_instance_.find(before->attach.instance_id);
    if (it != by_instance_.end()) {
      it->second.erase(id);
      if (it->second.empty()) by_instance_.erase(it);
    }
  }
  volumes_.apply(r);
  if (const auto* after = volumes_.find(id)) {
    index(id, *after);
    if (after->attach.state != volume::attach_status::none &&
        std::find(touched.begin(), touched.end(), after->attach.instance_id) == touched.end())
      touched.push_back(after->attach.instance_id);
  }
  return touched;
}

std::vector<volume::state> attachment_index::of_instance(const std::string& instance_id) const {
  std::vector<volume::state> out;
  auto it = by_instance_.find(instance_id);
  if (it == by_instance_.end()) return out;
  for (const auto& id : it->second)
    if (const auto* s = volumes_.find(id)) out.push_back(*s);
  return out;
}

std::vector<std::string> attachment_index::instances() const {
  std::vector<std::string> out;
  for (const auto& [id, _] : by_instance_) out.push_back(id);
  return out;
}

bool attachment_index::load(const std::string& text) {
  if (!volumes_.load(text)) return false;
  by_instance_.clear();
  volumes_.for_each([&](const std::string& id, const volume::state& s) { index(id, s); });
  return true;
}

std::vector<desired_volume> desired_volumes(const std::vector<volume::state>& attached) {
  std::vector<desired_volume> out;
  for (const auto& v : attached)
    if (v.status == volume::status::in_use &&
        (v.attach.state == volume::attach_status::attaching || v.attach.state == volume::attach_status::attached))
      out.push_back({v.volume_id, v.spec.file_path, v.attach.target_dev});
  return out;
}

std::vector<volume_order> attachment_orders(bool instance_gone, const std::vector<volume::state>& attached,
                                            const std::vector<std::string>* node_has) {
  std::vector<volume_order> out;
  for (const auto& v : attached) {
    const auto id = volume::aggregate_id(v.owner_id, v.volume_id);
    if (instance_gone) {
      out.push_back({id, volume::detach_done{true}});
      continue;
    }
    if (!node_has) continue;
    const bool plugged = std::find(node_has->begin(), node_has->end(), v.volume_id) != node_has->end();
    if (v.attach.state == volume::attach_status::attaching && plugged) out.push_back({id, volume::attach_done{}});
    if (v.attach.state == volume::attach_status::detaching && !plugged) out.push_back({id, volume::detach_done{}});
  }
  return out;
}

}  // namespace kumo::actors::storage
