// Volumes as the compute side sees them: which are attached to which
// instance, what a node should therefore have plugged in, and which commands
// a node's report implies for the Volume aggregates. Pure, except for the
// index folding the log. Include from .cpp files only (pulls in the view).
#pragma once

#include "actors/protocol/node.h"
#include "actors/runtime/aggregate_view.h"
#include "actors/storage/volume.h"

#include <set>
#include <string>
#include <vector>

namespace kumo::actors::storage {

// Every live volume, and by instance id the volumes attached to it (in any
// attach state). Checkpointed with the compute read model.
class attachment_index {
 public:
  // Folds one event; returns the instances whose attachments it changed.
  std::vector<std::string> apply(const persistence::event_record& r);
  std::vector<volume::state> of_instance(const std::string& instance_id) const;
  std::vector<std::string> instances() const;  // every instance with an attachment
  std::string save() const { return volumes_.save(); }
  bool load(const std::string& text);

  std::set<std::string> in_flight;  // volume aggregate ids with a command on its way (not saved)

 private:
  aggregate_view<volume::aggregate> volumes_;
  std::map<std::string, std::set<std::string>> by_instance_;  // instance id -> volume aggregate ids
  void index(const std::string& id, const volume::state& s);
};

// What the node should have plugged into the instance: volumes attaching or
// attached (not those detaching).
std::vector<desired_volume> desired_volumes(const std::vector<volume::state>& attached);

struct volume_order {
  std::string volume_id;  // aggregate id "<account>/<vol id>"
  volume::command cmd;
};
// The commands that bring the volumes attached to one instance in line with
// what is true: `instance_gone` (terminated) detaches everything (and deletes
// delete-on-termination volumes); otherwise `node_has` (the volume ids the
// node reports plugged in, nullptr when it did not look) completes attaching
// and detaching.
std::vector<volume_order> attachment_orders(bool instance_gone, const std::vector<volume::state>& attached,
                                            const std::vector<std::string>* node_has);

}  // namespace kumo::actors::storage
