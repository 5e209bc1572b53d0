// The Image aggregate, the images view and the image store's worker as actors:
//   registry: (std::string "<owner>/<image id>", image::command, request_meta) -> image_reply
//   view:     (list_images_atom, account_id, min_global_seq) -> std::vector<image::state>
//                 every image the account may see and launch: its own, public
//                 ones, and ones shared with it (image::launchable_by)
//             (claim_name_atom, owner_id, name, claimant, min_global_seq) -> bool
//                 reserves a name for a registration in progress (the claimant,
//                 a request id): false when the owner has an image of that name
//                 or one is being registered
//             (release_name_atom, owner_id, name, claimant)   ends the claimant's
//                 reservation (anyone else's stays)
//             (image_refs_atom, image_id, min_global_seq) -> std::vector<std::string>
//                 ids of the machine images (any account) that boot that kernel/ramdisk
//   worker:   one blocking image-store operation on its own thread, then it stops
//             (import_atom, location, images_root) -> image::import_result
//             (remove_files_atom, images_root, image_id) -> std::string (empty: removed)
#pragma once

#include "actors/image/image.h"
#include "actors/image/image_store.h"
#include "actors/protocol/messages.h"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

namespace kumo::actors {
using list_images_atom = caf::atom_constant<caf::atom("listimages")>;
using claim_name_atom = caf::atom_constant<caf::atom("imgclaim")>;
using release_name_atom = caf::atom_constant<caf::atom("imgrelease")>;
using image_refs_atom = caf::atom_constant<caf::atom("imgrefs")>;
using import_atom = caf::atom_constant<caf::atom("imgimport")>;
using remove_files_atom = caf::atom_constant<caf::atom("imgremove")>;
}  // namespace kumo::actors

namespace kumo::actors::image {

using image_reply = command_reply<aggregate>;

caf::actor spawn_registry(caf::actor_system& sys, const caf::actor& journal,
                          persistence::event_store& store);
caf::actor spawn_view(caf::actor_system& sys, const caf::actor& journal,
                      persistence::event_store& store);
// A fresh detached worker for one request (copying a disk image takes long).
caf::actor spawn_store_worker(caf::actor_system& sys);

}  // namespace kumo::actors::image

// Local to the cloud role (see actors/protocol/messages.h).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::image::command)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::image::image_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<kumo::actors::image::state>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kumo::actors::image::import_result)
