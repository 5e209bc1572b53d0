// The Volume and Snapshot aggregates (pure decide/apply/codec), the
// attachment rules the compute controller applies to node reports, and the
// backing store on real temp files (exact sizes, sparse, crash leftovers).
#include "actors/node/volumes.h"
#include "actors/storage/attachments.h"
#include "actors/storage/backing_store.h"
#include "actors/storage/snapshot.h"
#include "actors/storage/volume.h"
#include "tests/support/aggregate_checks.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <sys/stat.h>

using namespace kumo;
using namespace kumo::actors;
using kumo::checks::expect_codec_round_trip;
using kumo::checks::fold;
namespace fs = std::filesystem;

namespace {

using V = volume::aggregate;
using S = snapshot::aggregate;
const std::string owner = "123456789012";
const std::string other = "210987654321";
const std::string vol_id = "vol-0123456789abcdef0";
const std::string snap_id = "snap-0123456789abcdef0";
const std::string vid = volume::aggregate_id(owner, vol_id);
const std::string sid = snapshot::aggregate_id(owner, snap_id);

volume::volume_spec spec_of(uint64_t gib) {
  volume::volume_spec s;
  s.size_gib = gib;
  s.zone = "kumo-1a";
  s.file_path = "/data/volumes/" + owner + "." + vol_id + ".raw";
  s.created_ms = 5;
  return s;
}

template <class A>
typename A::state step(const std::string& id, typename A::state s, const typename A::command& c,
                       std::vector<typename A::event>* log = nullptr) {
  auto d = A::decide(id, s, c);
  EXPECT_FALSE(d.error) << d.error->code << ": " << d.error->message;
  if (log) log->insert(log->end(), d.events.begin(), d.events.end());
  return checks::fold<A>(d.events, std::move(s));
}

template <class A>
std::string refusal(const std::string& id, const typename A::state& s, const typename A::command& c) {
  auto d = A::decide(id, s, c);
  EXPECT_TRUE(d.events.empty());
  return d.error ? d.error->code : "";
}

volume::state available(uint64_t gib = 1) {
  auto s = step<V>(vid, {}, volume::create{spec_of(gib)});
  return step<V>(vid, s, volume::file_ready{true, gib * volume::gib, ""});
}

}  // namespace

TEST(Volume, CreatedThenAvailableOnlyWithTheExactSize) {
  auto s = step<V>(vid, {}, volume::create{spec_of(3)});
  EXPECT_EQ(s.status, volume::status::creating);
  EXPECT_EQ(s.owner_id, owner);
  auto ok = step<V>(vid, s, volume::file_ready{true, 3 * volume::gib, ""});
  EXPECT_EQ(ok.status, volume::status::available);
  // One byte off is an error event, never an available volume of the wrong size.
  auto wrong = step<V>(vid, s, volume::file_ready{true, 3 * volume::gib - 1, ""});
  EXPECT_EQ(wrong.status, volume::status::error);
  EXPECT_NE(wrong.status_detail.find("3221225471 bytes"), std::string::npos) << wrong.status_detail;
  auto failed = step<V>(vid, s, volume::file_ready{false, 0, "qemu-img failed"});
  EXPECT_EQ(failed.status, volume::status::error);
  // A late report changes nothing.
  EXPECT_TRUE(V::decide(vid, ok, volume::file_ready{true, 1, ""}).events.empty());
}

TEST(Volume, BadSizesAndIdReuseAreRefused) {
  EXPECT_EQ(refusal<V>(vid, {}, volume::create{spec_of(0)}), "InvalidParameterValue");
  EXPECT_EQ(refusal<V>(vid, {}, volume::create{spec_of(volume::max_size_gib + 1)}), "InvalidParameterValue");
  auto s = available();
  EXPECT_EQ(refusal<V>(vid, s, volume::create{spec_of(1)}), "InternalError");
  // Deleted: the id stays taken forever.
  s = step<V>(vid, s, volume::remove{});
  s = step<V>(vid, s, volume::file_removed{});
  EXPECT_TRUE(s.retired);
  EXPECT_FALSE(s.exists);
  EXPECT_EQ(refusal<V>(vid, s, volume::create{spec_of(1)}), "InternalError");
  EXPECT_EQ(refusal<V>(vid, s, volume::remove{}), "InvalidVolume.NotFound");
  // A ClientToken retry of the same call is a no-op, not a second volume.
  auto spec = spec_of(1);
  spec.client_token = "t1";
  auto t = step<V>(vid, {}, volume::create{spec});
  auto again = V::decide(vid, t, volume::create{spec});
  EXPECT_FALSE(again.error);
  EXPECT_TRUE(again.events.empty());
}

TEST(Volume, NotFoundForAnythingButCreate) {
  EXPECT_EQ(refusal<V>(vid, {}, volume::remove{}), "InvalidVolume.NotFound");
  EXPECT_EQ(refusal<V>(vid, {}, volume::attach{"i-0123456789abcdef0", "kumo-1a", "/dev/sdf"}), "InvalidVolume.NotFound");
  EXPECT_EQ(refusal<V>(vid, {}, volume::detach{}), "InvalidVolume.NotFound");
}

TEST(Volume, AttachDetachLifecycleAndErrors) {
  const std::string inst = "i-0123456789abcdef0";
  auto creating = step<V>(vid, {}, volume::create{spec_of(1)});
  EXPECT_EQ(refusal<V>(vid, creating, volume::attach{inst, "kumo-1a", "/dev/sdf"}), "IncorrectState");
  EXPECT_EQ(refusal<V>(vid, creating, volume::remove{}), "IncorrectState");
  auto s = available();
  EXPECT_EQ(refusal<V>(vid, s, volume::attach{inst, "kumo-1b", "/dev/sdf"}), "InvalidVolume.ZoneMismatch");
  EXPECT_EQ(refusal<V>(vid, s, volume::attach{inst, "kumo-1a", "/dev/sda"}), "InvalidParameterValue");
  EXPECT_EQ(refusal<V>(vid, s, volume::detach{}), "IncorrectState");
  s = step<V>(vid, s, volume::attach{inst, "kumo-1a", "/dev/sdg", true, 9});
  EXPECT_EQ(s.status, volume::status::in_use);
  EXPECT_EQ(s.attach.state, volume::attach_status::attaching);
  EXPECT_EQ(s.attach.target_dev, "vdc");
  // Never attached twice, never deleted while attached.
  EXPECT_EQ(refusal<V>(vid, s, volume::attach{"i-1123456789abcdef0", "kumo-1a", "/dev/sdf"}), "VolumeInUse");
  EXPECT_EQ(refusal<V>(vid, s, volume::remove{}), "VolumeInUse");
  s = step<V>(vid, s, volume::attach_done{});
  EXPECT_EQ(s.attach.state, volume::attach_status::attached);
  EXPECT_EQ(refusal<V>(vid, s, volume::detach{"i-1123456789abcdef0"}), "InvalidAttachment.NotFound");
  // A node report that the disk is gone means nothing until a detach was asked for.
  EXPECT_TRUE(V::decide(vid, s, volume::detach_done{}).events.empty());
  s = step<V>(vid, s, volume::detach{inst});
  EXPECT_EQ(s.attach.state, volume::attach_status::detaching);
  EXPECT_TRUE(V::decide(vid, s, volume::detach{inst}).events.empty());  // repeat
  s = step<V>(vid, s, volume::detach_done{});
  EXPECT_EQ(s.status, volume::status::available);
  EXPECT_EQ(s.attach.state, volume::attach_status::none);
}

TEST(Volume, TerminationDetachesAndDeletesOnlyDeleteOnTermination) {
  const std::string inst = "i-0123456789abcdef0";
  auto keep = step<V>(vid, available(), volume::attach{inst, "kumo-1a", "/dev/sdf", false});
  keep = step<V>(vid, keep, volume::detach_done{true});
  EXPECT_EQ(keep.status, volume::status::available);
  auto drop = step<V>(vid, available(), volume::attach{inst, "kumo-1a", "/dev/sdf", true});
  drop = step<V>(vid, drop, volume::detach_done{true});
  EXPECT_EQ(drop.status, volume::status::deleting);
}

TEST(Volume, ModifyGrowsDetachedVolumesOnly) {
  auto s = available(2);
  EXPECT_EQ(refusal<V>(vid, s, volume::modify{1, "", 1}), "InvalidParameterValue");  // never shrinks
  EXPECT_EQ(refusal<V>(vid, s, volume::modify{2, "", 1}), "InvalidParameterValue");  // no change
  auto typed = step<V>(vid, s, volume::modify{0, "gp3", 1});  // type only: done at once
  EXPECT_EQ(typed.spec.volume_type, "gp3");
  EXPECT_EQ(typed.modification.state, volume::modify_status::completed);
  s = step<V>(vid, s, volume::modify{5, "", 2});
  EXPECT_EQ(s.modification.state, volume::modify_status::modifying);
  EXPECT_EQ(s.spec.size_gib, 2u);  // until the file has grown
  EXPECT_EQ(refusal<V>(vid, s, volume::modify{6, "", 3}), "IncorrectModificationState");
  EXPECT_EQ(refusal<V>(vid, s, volume::attach{"i-0123456789abcdef0", "kumo-1a", "/dev/sdf"}), "IncorrectState");
  EXPECT_EQ(refusal<V>(vid, s, volume::remove{}), "IncorrectState");
  auto wrong = step<V>(vid, s, volume::file_resized{true, 4 * volume::gib, "", 4});
  EXPECT_EQ(wrong.modification.state, volume::modify_status::failed);
  EXPECT_EQ(wrong.spec.size_gib, 2u);
  s = step<V>(vid, s, volume::file_resized{true, 5 * volume::gib, "", 4});
  EXPECT_EQ(s.modification.state, volume::modify_status::completed);
  EXPECT_EQ(s.spec.size_gib, 5u);
  auto in_use = step<V>(vid, available(), volume::attach{"i-0123456789abcdef0", "kumo-1a", "/dev/sdf"});
  EXPECT_EQ(refusal<V>(vid, in_use, volume::modify{9, "", 1}), "IncorrectState");
}

TEST(Volume, DeviceNamesMapToVirtioDisks) {
  EXPECT_EQ(volume::target_dev_of("/dev/sdf"), "vdb");
  EXPECT_EQ(volume::target_dev_of("/dev/sdp"), "vdl");
  EXPECT_EQ(volume::target_dev_of("/dev/xvdh"), "vdd");
  for (const char* bad : {"/dev/sda", "/dev/sde", "/dev/sdq", "/dev/sdff", "sdf", "/dev/vdb", ""})
    EXPECT_FALSE(volume::target_dev_of(bad)) << bad;
}

TEST(Volume, CodecRoundTrip) {
  std::vector<volume::event> log;
  auto s = step<V>(vid, {}, volume::create{spec_of(2)}, &log);
  s = step<V>(vid, s, volume::file_ready{true, 2 * volume::gib, ""}, &log);
  s = step<V>(vid, s, change_tags{{{"k", "v"}}, {}}, &log);
  s = step<V>(vid, s, volume::modify{3, "io1", 2}, &log);
  s = step<V>(vid, s, volume::file_resized{true, 3 * volume::gib, "", 3}, &log);
  s = step<V>(vid, s, volume::modify{4, "", 4}, &log);
  s = step<V>(vid, s, volume::file_resized{false, 0, "disk full", 5}, &log);
  s = step<V>(vid, s, volume::attach{"i-0123456789abcdef0", "kumo-1a", "/dev/sdf", true, 3}, &log);
  s = step<V>(vid, s, volume::attach_done{}, &log);
  s = step<V>(vid, s, volume::detach{"", true}, &log);
  s = step<V>(vid, s, volume::detach_done{}, &log);
  s = step<V>(vid, s, volume::remove{}, &log);
  expect_codec_round_trip<V>(log);
  s = step<V>(vid, s, volume::file_removed{}, &log);
  expect_codec_round_trip<V>(log);
  log.push_back(volume::failed{"x"});
  expect_codec_round_trip<V>(log);
}

TEST(Snapshot, PendingProgressCompletedAndSharing) {
  snapshot::snapshot_spec spec;
  spec.volume_id = vol_id;
  spec.volume_size_gib = 1;
  spec.source_path = "/v";
  spec.file_path = "/s";
  std::vector<snapshot::event> log;
  auto s = step<S>(sid, {}, snapshot::create{spec}, &log);
  EXPECT_EQ(s.status, snapshot::status::pending);
  EXPECT_EQ(refusal<S>(sid, s, snapshot::remove{}), "IncorrectState");
  s = step<S>(sid, s, snapshot::copy_progress{40}, &log);
  EXPECT_EQ(s.progress, 40);
  EXPECT_TRUE(S::decide(sid, s, snapshot::copy_progress{30}).events.empty());  // never backwards
  auto bad = step<S>(sid, s, snapshot::copy_done{true, 5, ""});
  EXPECT_EQ(bad.status, snapshot::status::error);
  s = step<S>(sid, s, snapshot::copy_done{true, volume::gib, ""}, &log);
  EXPECT_EQ(s.status, snapshot::status::completed);
  EXPECT_EQ(s.progress, 100);
  // Only the owner and the accounts it is shared with may restore it.
  EXPECT_TRUE(snapshot::restorable_by(s, owner));
  EXPECT_FALSE(snapshot::restorable_by(s, other));
  EXPECT_EQ(refusal<S>(sid, s, snapshot::permission_change{{"12"}, {}}), "InvalidParameterValue");
  s = step<S>(sid, s, snapshot::permission_change{{other, owner}, {}}, &log);
  EXPECT_EQ(s.shared_with, std::vector<std::string>{other});
  EXPECT_TRUE(snapshot::restorable_by(s, other));
  EXPECT_TRUE(S::decide(sid, s, snapshot::permission_change{{other}, {}}).events.empty());
  s = step<S>(sid, s, snapshot::permission_change{{}, {other}}, &log);
  EXPECT_FALSE(snapshot::restorable_by(s, other));
  s = step<S>(sid, s, snapshot::remove{}, &log);
  s = step<S>(sid, s, snapshot::file_removed{}, &log);
  EXPECT_TRUE(s.retired);
  EXPECT_EQ(refusal<S>(sid, s, snapshot::create{spec}), "InternalError");
  expect_codec_round_trip<S>(log);
}

TEST(Attachments, NodeReportsCompleteAttachAndDetach) {
  const std::string inst = "i-0123456789abcdef0";
  auto attaching = step<V>(vid, available(), volume::attach{inst, "kumo-1a", "/dev/sdf"});
  auto desired = storage::desired_volumes({attaching});
  ASSERT_EQ(desired.size(), 1u);
  EXPECT_EQ(desired[0].target_dev, "vdb");
  EXPECT_EQ(desired[0].path, spec_of(1).file_path);
  std::vector<std::string> none, plugged{vol_id};
  EXPECT_TRUE(storage::attachment_orders(false, {attaching}, nullptr).empty());  // no report: no change
  EXPECT_TRUE(storage::attachment_orders(false, {attaching}, &none).empty());
  auto orders = storage::attachment_orders(false, {attaching}, &plugged);
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_EQ(orders[0].volume_id, vid);
  EXPECT_TRUE(std::holds_alternative<volume::attach_done>(orders[0].cmd));
  auto detaching = step<V>(vid, step<V>(vid, attaching, volume::attach_done{}), volume::detach{});
  EXPECT_TRUE(storage::desired_volumes({detaching}).empty());  // the node should unplug it
  EXPECT_TRUE(storage::attachment_orders(false, {detaching}, &plugged).empty());
  orders = storage::attachment_orders(false, {detaching}, &none);
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<volume::detach_done>(orders[0].cmd));
  orders = storage::attachment_orders(true, {attaching}, nullptr);
  ASSERT_EQ(orders.size(), 1u);
  EXPECT_TRUE(std::get<volume::detach_done>(orders[0].cmd).terminated);
}

TEST(BackingStore, ExactSparseFilesSnapshotsAndCleanup) {
  auto dir = fs::temp_directory_path() / ("kumo-bs-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto vol = storage::volume_file(dir.string(), owner, vol_id);
  EXPECT_EQ(storage::aggregate_id_of_file(fs::path(vol).filename().string()), vid);
  EXPECT_EQ(storage::aggregate_id_of_file(fs::path(vol).filename().string() + ".tmp"), vid);
  EXPECT_EQ(storage::aggregate_id_of_file("notes.txt"), "");
  // A leftover .tmp from a crashed attempt is replaced.
  fs::create_directories(fs::path(vol).parent_path());
  std::ofstream(vol + ".tmp") << "junk";
  auto r = storage::create_volume_file(vol, 3 * volume::gib, "");
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.bytes, 3 * volume::gib);
  EXPECT_FALSE(fs::exists(vol + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(vol.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 3 * volume::gib);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, uint64_t{1} << 20) << "not sparse";
  {  // a marker in the middle of the volume
    std::fstream f(vol, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1 << 30);
    f << "kumo-marker";
  }
  const auto snap = storage::snapshot_file(dir.string(), owner, snap_id);
  int calls = 0;
  r = storage::copy_to_snapshot(vol, snap, [&](int) { ++calls; });
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.bytes, 3 * volume::gib);
  const auto restored = (dir / "restored.raw").string();
  r = storage::create_volume_file(restored, 4 * volume::gib, snap);
  ASSERT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.bytes, 4 * volume::gib);
  std::ifstream in(restored, std::ios::binary);
  in.seekg(1 << 30);
  std::string marker(11, '\0');
  in.read(marker.data(), 11);
  EXPECT_EQ(marker, "kumo-marker");
  // A missing source is a failure with the tool's words, not a silent empty volume.
  r = storage::create_volume_file((dir / "x.raw").string(), volume::gib, (dir / "missing.raw").string());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("qemu-img"), std::string::npos) << r.detail;
  for (const auto& p : {vol, snap, restored}) EXPECT_TRUE(storage::remove_file(p).ok);
  EXPECT_TRUE(storage::remove_file(vol).ok);  // idempotent
  EXPECT_EQ(storage::list_files(fs::path(vol).parent_path().string()).size(), 0u);
  fs::remove_all(dir);
}

TEST(NodeVolumes, PlugsInWhatIsDesiredUnplugsTheRestAndReports) {
  auto driver = hypervisor::make_fake_driver();
  const std::string inst = "i-0123456789abcdef0";
  desired_instance d;
  d.instance_id = inst;
  observed_instance none;
  reconcile_volumes(*driver, "n1", d, none);  // no domain yet: nothing plugged in, and it says so
  EXPECT_TRUE(none.volumes_seen);
  EXPECT_TRUE(none.volumes.empty());
  hypervisor::domain_spec spec;
  spec.name = inst;
  spec.disks = {{"/data/instances/" + inst + "/disk.raw", "vda", "raw", false}};
  ASSERT_TRUE(driver->define(spec));
  ASSERT_TRUE(driver->start(inst));
  const std::string path = "/data/volumes/" + owner + "." + vol_id + ".raw";
  d.volumes = {{vol_id, path, "vdb"}};
  observed_instance seen;
  reconcile_volumes(*driver, "n1", d, seen);
  EXPECT_EQ(seen.volumes, std::vector<std::string>{vol_id});
  auto disks = driver->disks(inst);
  ASSERT_TRUE(disks);
  ASSERT_EQ(disks->size(), 2u);
  EXPECT_EQ((*disks)[1].path, path);
  EXPECT_EQ((*disks)[1].target_dev, "vdb");
  observed_instance again;  // level-triggered: a repeat changes nothing
  reconcile_volumes(*driver, "n1", d, again);
  EXPECT_EQ(again.volumes, std::vector<std::string>{vol_id});
  EXPECT_EQ(driver->disks(inst)->size(), 2u);
  d.volumes.clear();  // detached in the log: unplugged, the root disk stays
  observed_instance after;
  reconcile_volumes(*driver, "n1", d, after);
  EXPECT_TRUE(after.volumes_seen);
  EXPECT_TRUE(after.volumes.empty());
  ASSERT_EQ(driver->disks(inst)->size(), 1u);
  EXPECT_EQ(driver->disks(inst)->front().target_dev, "vda");
}
