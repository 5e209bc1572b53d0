// The Image aggregate (pure decide/apply/codec) and the image store (kind
// detection, qemu-img's verdict, the import itself on temp files).
#include "actors/image/image.h"
#include "actors/image/image_store.h"
#include "tests/support/aggregate_checks.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

using namespace kumo;
using namespace kumo::actors;
using namespace kumo::actors::image;
using kumo::checks::expect_codec_round_trip;
using kumo::checks::fold;
namespace fs = std::filesystem;

namespace {

using A = image::aggregate;
const std::string owner = "123456789012";
const std::string other = "210987654321";
const std::string kernel_id = "eki-0123456789abcdef0";
const std::string ramdisk_id = "eri-0123456789abcdef0";
const std::string machine_id = "emi-0123456789abcdef0";

image_spec kernel_spec() {
  image_spec s;
  s.name = "linux-6.1";
  s.kind = "kernel";
  s.file_path = "/var/lib/kumo/images/" + kernel_id + "/kernel";
  s.size_bytes = 4096;
  s.sha256 = "ab";
  s.source = "/boot/vmlinuz";
  s.created_ms = 7;
  return s;
}

image_spec boot_spec() {
  image_spec s;
  s.name = "demo (busybox)";
  s.kind = "machine";
  s.kernel_id = kernel_id;
  s.ramdisk_id = ramdisk_id;
  s.root_device_name = "/dev/sda1";
  s.tags = {{"role", "demo"}};
  return s;
}

state registered(const std::string& image_id, const image_spec& spec) {
  auto d = A::decide(aggregate_id(owner, image_id), {}, register_image{spec});
  EXPECT_FALSE(d.error) << d.error->code << ": " << d.error->message;
  return fold<A>(d.events);
}

std::string refusal(const std::string& image_id, const state& s, const command& c) {
  auto d = A::decide(aggregate_id(owner, image_id), s, c);
  EXPECT_TRUE(d.events.empty());
  return d.error ? d.error->code : "";
}

}  // namespace

TEST(Image, IdsAndNames) {
  EXPECT_TRUE(A::valid_id(aggregate_id(owner, machine_id)));
  EXPECT_FALSE(A::valid_id(aggregate_id(owner, "ami-0123456789abcdef0")));
  EXPECT_FALSE(A::valid_id(aggregate_id("12345", machine_id)));
  EXPECT_FALSE(A::valid_id(aggregate_id(owner, "emi-0123456789ABCDEF0")));
  EXPECT_EQ(kind_of_id(kernel_id), "kernel");
  EXPECT_EQ(kind_of_id(ramdisk_id), "ramdisk");
  EXPECT_EQ(kind_of_id(new_image_id("machine")), "machine");
  EXPECT_NE(new_image_id("machine"), new_image_id("machine"));
  EXPECT_TRUE(valid_image_name("my image (v1.2) [x86]/a-b_c@d'e"));
  EXPECT_FALSE(valid_image_name("ab"));
  EXPECT_FALSE(valid_image_name(std::string(129, 'a')));
  EXPECT_FALSE(valid_image_name("semi;colon"));
}

TEST(Image, RegistrationChecksTheSpecAgainstTheIdAndKind) {
  auto k = registered(kernel_id, kernel_spec());
  EXPECT_TRUE(k.exists);
  EXPECT_EQ(k.owner_id, owner);
  EXPECT_EQ(k.image_id, kernel_id);
  EXPECT_EQ(static_cast<const image_spec&>(k), kernel_spec());
  EXPECT_FALSE(k.is_public);

  EXPECT_EQ(refusal(kernel_id, k, register_image{kernel_spec()}), "InternalError");  // never reused
  EXPECT_EQ(refusal(machine_id, {}, register_image{kernel_spec()}), "InvalidParameterValue");
  auto bad_name = kernel_spec();
  bad_name.name = "x";
  EXPECT_EQ(refusal(kernel_id, {}, register_image{bad_name}), "InvalidAMIName.Malformed");
  auto arm = kernel_spec();
  arm.architecture = "arm64";
  EXPECT_EQ(refusal(kernel_id, {}, register_image{arm}), "InvalidParameterValue");
  auto kernel_with_kernel = kernel_spec();
  kernel_with_kernel.kernel_id = kernel_id;
  EXPECT_EQ(refusal(kernel_id, {}, register_image{kernel_with_kernel}), "InvalidParameterCombination");

  // A machine image without a file boots a kernel and a ramdisk: both, of the right kinds.
  auto m = registered(machine_id, boot_spec());
  EXPECT_EQ(m.kernel_id, kernel_id);
  EXPECT_TRUE(m.file_path.empty());
  auto no_ramdisk = boot_spec();
  no_ramdisk.ramdisk_id.clear();
  EXPECT_EQ(refusal(machine_id, {}, register_image{no_ramdisk}), "MissingParameter");
  auto swapped = boot_spec();
  std::swap(swapped.kernel_id, swapped.ramdisk_id);
  EXPECT_EQ(refusal(machine_id, {}, register_image{swapped}), "InvalidParameterValue");
  auto too_many_tags = boot_spec();
  for (int i = 0; i < 51; ++i) too_many_tags.tags.push_back({"k" + std::to_string(i), ""});
  EXPECT_EQ(refusal(machine_id, {}, register_image{too_many_tags}), "TagLimitExceeded");
}

TEST(Image, LaunchPermissionsDecideWhoMayLaunch) {
  auto s = registered(machine_id, boot_spec());
  EXPECT_TRUE(launchable_by(s, owner));
  EXPECT_FALSE(launchable_by(s, other));

  auto share = A::decide(aggregate_id(owner, machine_id), s, change_launch_permission{{other, owner}, {}, false, false});
  ASSERT_FALSE(share.error);
  ASSERT_EQ(share.events.size(), 1u);
  // Only the effective change is recorded: sharing with the owner is a no-op.
  EXPECT_EQ(std::get<launch_permission_changed>(share.events[0]).change,
            (change_launch_permission{{other}, {}, false, false}));
  s = fold<A>(share.events, s);
  EXPECT_EQ(s.launch_accounts, std::vector<std::string>{other});
  EXPECT_TRUE(launchable_by(s, other));
  EXPECT_FALSE(launchable_by(s, "111111111111"));
  // Repeating it changes nothing, so nothing is written.
  auto again = A::decide(aggregate_id(owner, machine_id), s, change_launch_permission{{other}, {}, false, false});
  EXPECT_FALSE(again.error);
  EXPECT_TRUE(again.events.empty());

  s = fold<A>(A::decide(aggregate_id(owner, machine_id), s, change_launch_permission{{}, {}, true, false}).events, s);
  EXPECT_TRUE(s.is_public);
  EXPECT_TRUE(launchable_by(s, "111111111111"));
  s = fold<A>(A::decide(aggregate_id(owner, machine_id), s, change_launch_permission{{}, {other}, false, true}).events, s);
  EXPECT_FALSE(s.is_public);
  EXPECT_TRUE(s.launch_accounts.empty());
  EXPECT_FALSE(launchable_by(s, other));

  EXPECT_EQ(refusal(machine_id, s, change_launch_permission{{"12345"}, {}, false, false}), "InvalidAMIAttributeItemValue");
  EXPECT_EQ(refusal(machine_id, s, change_launch_permission{{}, {}, true, true}), "InvalidParameterCombination");
  EXPECT_EQ(refusal(machine_id, {}, change_launch_permission{{other}, {}, false, false}), "InvalidAMIID.NotFound");
}

TEST(Image, DeregistrationRetiresTheId) {
  auto s = registered(machine_id, boot_spec());
  auto d = A::decide(aggregate_id(owner, machine_id), s, deregister_image{});
  ASSERT_FALSE(d.error);
  auto gone = fold<A>(d.events, s);
  EXPECT_FALSE(gone.exists);
  EXPECT_TRUE(gone.retired);
  EXPECT_FALSE(launchable_by(gone, owner));
  EXPECT_EQ(refusal(machine_id, gone, deregister_image{}), "InvalidAMIID.NotFound");
  EXPECT_EQ(refusal(machine_id, gone, change_tags{{{"k", "v"}}, {}}), "InvalidAMIID.NotFound");
  EXPECT_EQ(refusal(machine_id, gone, register_image{boot_spec()}), "InternalError");

  expect_codec_round_trip<A>({image_registered{owner, machine_id, boot_spec()},
                              launch_permission_changed{{{other}, {}, true, false}},
                              tags_changed{{{"env", "prod"}}, {{"role", true, ""}}},
                              launch_permission_changed{{{}, {other}, false, true}},
                              image_deregistered{machine_id}});
  expect_codec_round_trip<A>({image_registered{owner, kernel_id, kernel_spec()},
                              launch_permission_changed{{{other}, {}, true, false}}});
}

// ---- The image store

TEST(ImageStore, DetectsKindsFromContent) {
  std::string bz(0x300, '\0');
  bz.replace(0x202, 4, "HdrS");
  EXPECT_EQ(detect_kind(bz), "kernel");
  EXPECT_EQ(detect_kind(std::string("\x1f\x8b\x08\x00", 4)), "ramdisk");
  EXPECT_EQ(detect_kind("070701000000"), "ramdisk");
  EXPECT_EQ(detect_kind(std::string("\x28\xb5\x2f\xfd", 4)), "ramdisk");
  EXPECT_EQ(detect_kind(std::string("QFI\xfb", 4)), "machine");
  EXPECT_EQ(detect_kind(std::string(0x201, '\0') + "HdrS"), "machine");  // magic one byte early
  EXPECT_EQ(detect_kind(""), "machine");
}

TEST(ImageStore, JudgesQemuImgOutput) {
  EXPECT_EQ(check_disk_info(R"({"format":"raw","virtual-size":4194304})").format, "raw");
  EXPECT_EQ(check_disk_info(R"({"format":"qcow2","format-specific":{"type":"qcow2","data":{"compat":"1.1"}}})").format,
            "qcow2");
  EXPECT_NE(check_disk_info(R"({"format":"vmdk"})").error.find("qemu-img convert"), std::string::npos);
  EXPECT_NE(check_disk_info(R"({"format":"qcow2","backing-filename":"/etc/shadow"})").error.find("backing"),
            std::string::npos);
  EXPECT_NE(check_disk_info(R"({"format":"qcow2","format-specific":{"type":"qcow2","data":{"data-file":"/dev/sda"}}})")
                .error.find("data file"),
            std::string::npos);
  EXPECT_FALSE(check_disk_info("not json").error.empty());
}

namespace {

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("kumo-image-test-" + std::to_string(::getpid()));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& content) {
    std::ofstream(path / name, std::ios::binary) << content;
    return (path / name).string();
  }
};

size_t entries(const fs::path& dir) {
  return fs::exists(dir) ? std::distance(fs::directory_iterator(dir), fs::directory_iterator()) : 0;
}

}  // namespace

TEST(ImageStore, ImportsKernelsRamdisksAndSparseDisks) {
  temp_dir t;
  auto store = (t.path / "store").string();
  std::string bz(0x1000, 'k');
  bz.replace(0x202, 4, "HdrS");
  auto kernel = import_image("file://" + t.write("vmlinuz", bz), store);
  ASSERT_FALSE(kernel.error) << kernel.error->message;
  EXPECT_EQ(kernel.kind, "kernel");
  EXPECT_EQ(kind_of_id(kernel.image_id), "kernel");
  EXPECT_EQ(kernel.file_path, store + "/" + kernel.image_id + "/kernel");
  EXPECT_EQ(kernel.size_bytes, 0x1000);
  std::ifstream copied(kernel.file_path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(copied), {}), bz);

  auto ramdisk = import_image(t.write("initrd.gz", std::string("\x1f\x8b\x08\x00rest", 8)), store);
  ASSERT_FALSE(ramdisk.error) << ramdisk.error->message;
  EXPECT_EQ(ramdisk.kind, "ramdisk");

  // A 64 MiB sparse disk with one block of data: copied sparse, hashed whole.
  auto disk = t.path / "disk.raw";
  {
    std::ofstream f(disk, std::ios::binary);
    f.seekp(1 << 20);
    f << "data";
  }
  fs::resize_file(disk, 64 << 20);
  auto raw = import_image(disk.string(), store);
  ASSERT_FALSE(raw.error) << raw.error->message;
  EXPECT_EQ(raw.kind, "machine");
  EXPECT_EQ(raw.disk_format, "raw");
  EXPECT_EQ(raw.size_bytes, 64 << 20);
  EXPECT_EQ(fs::file_size(raw.file_path), 64u << 20);
  struct stat st {};
  ASSERT_EQ(::stat(raw.file_path.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 8 << 20) << "the copy is not sparse";
  // sha256 of the whole logical file, holes included.
  auto sum = [](const std::string& path) {
    std::string out(64, '\0');
    auto* p = ::popen(("sha256sum " + path).c_str(), "r");
    EXPECT_EQ(fread(out.data(), 1, 64, p), 64u);
    ::pclose(p);
    return out;
  };
  EXPECT_EQ(raw.sha256, sum(disk.string()));
  EXPECT_EQ(kernel.sha256, sum(kernel.file_path));

  EXPECT_EQ(remove_image_files(store, raw.image_id), "");
  EXPECT_FALSE(fs::exists(fs::path(store) / raw.image_id));
  EXPECT_NE(remove_image_files(store, "../etc"), "");
}

TEST(ImageStore, RefusedImportsLeaveNothingBehind) {
  temp_dir t;
  auto store = t.path / "store";
  auto refused = [&](const std::string& location) {
    auto r = import_image(location, store.string());
    EXPECT_TRUE(r.error) << location;
    EXPECT_EQ(entries(store), 0u) << location;
    return r.error ? r.error->code + ": " + r.error->message : "";
  };
  auto missing = refused((t.path / "missing.img").string());
  EXPECT_NE(missing.find("InvalidParameterValue"), std::string::npos);
  EXPECT_NE(missing.find("ImageLocation"), std::string::npos);
  EXPECT_NE(refused("relative/path.img").find("absolute"), std::string::npos);
  EXPECT_NE(refused("s3://bucket/manifest.xml").find("absolute"), std::string::npos);
  EXPECT_NE(refused(t.write("empty", "")).find("empty"), std::string::npos);
  EXPECT_NE(refused(t.path.string()).find("regular file"), std::string::npos);
  ASSERT_EQ(::mkfifo((t.path / "fifo").c_str(), 0600), 0);
  EXPECT_NE(refused((t.path / "fifo").string()).find("regular file"), std::string::npos);

  // A qcow2 whose backing file is a host file: a guest could read the host.
  auto base = t.path / "base.raw";
  fs::resize_file(t.write("base.raw", ""), 1 << 20);
  auto overlay = (t.path / "overlay.qcow2").string();
  ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 -F raw -b " + base.string() + " " + overlay).c_str()), 0)
      << "qemu-img (qemu-utils) is needed";
  EXPECT_NE(refused(overlay).find("backing file"), std::string::npos);
  // A broken qcow2 (the magic, then garbage) is not readable by qemu-img.
  EXPECT_NE(refused(t.write("broken.qcow2", std::string("QFI\xfb\0\0\0\x03", 8) + std::string(600, '\xff')))
                .find("qemu-img"),
            std::string::npos);
}
