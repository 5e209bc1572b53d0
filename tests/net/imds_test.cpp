// The metadata service's request handling: a hand-made table, requests in,
// status / body / IP TTL out. Tokens come from a signer with a fixed key.
#include "net/imds.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kumo::net {
namespace {

constexpr int64_t now = 1'796'000'000'000;  // 2026-11-30T00:53:20Z
const token_signer signer(std::string(32, '\x42'));

instance_metadata full() {
  instance_metadata m;
  m.instance_id = "i-0123456789abcdef0";
  m.account_id = "123456789012";
  m.reservation_id = "r-0aaaabbbbccccdddd";
  m.image_id = "ami-0fedcba9876543210";
  m.instance_type = "t3.micro";
  m.availability_zone = "kumo-1a";
  m.region = "kumo-1";
  m.private_ip = "10.16.3.10";
  m.public_ip = "203.0.113.25";
  m.mac = "02:00:0a:10:03:0a";
  m.hostname = "ip-10-16-3-10.kumo.internal";
  m.security_groups = {"default", "web"};
  m.key_name = "laptop";
  m.public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIexample laptop";
  m.block_devices = {{"ami", "/dev/vda"}, {"ebs1", "/dev/sdf"}};
  m.user_data = std::string("#!/bin/sh\necho hi\0\xff", 20);
  m.launch_ms = 1'700'000'000'123;  // 2023-11-14T22:13:20Z
  return m;
}

instance_metadata bare() {
  instance_metadata m = full();
  m.private_ip = "10.16.3.11";
  m.instance_id = "i-0bbbbbbbbbbbbbbbb";
  m.public_ip.clear();
  m.key_name.clear();
  m.public_key.clear();
  m.user_data.clear();
  return m;
}

metadata_table table_of(std::vector<instance_metadata> ms) {
  metadata_table t;
  for (auto& m : ms) t[m.private_ip] = m;
  return t;
}

imds_response get(const metadata_table& t, const std::string& ip, const std::string& path,
                  http_headers headers = {}) {
  return handle(t, {ip, "GET", path, std::move(headers)}, signer, now);
}

imds_response put_token(const metadata_table& t, const std::string& ip, const std::string& ttl,
                        http_headers extra = {}) {
  extra.emplace_back("x-AWS-ec2-metadata-token-ttl-seconds", ttl);
  return handle(t, {ip, "PUT", "/latest/api/token", std::move(extra)}, signer, now);
}

TEST(Imds, MetaDataListingWithPublicIpAndKey) {
  auto t = table_of({full()});
  for (const char* path : {"/latest/meta-data/", "/latest/meta-data"}) {
    auto r = get(t, "10.16.3.10", path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.content_type, "text/plain");
    EXPECT_EQ(r.body,
              "ami-id\nami-launch-index\nblock-device-mapping/\nhostname\ninstance-id\n"
              "instance-type\nlocal-hostname\nlocal-ipv4\nmac\nplacement/\npublic-hostname\n"
              "public-ipv4\npublic-keys/\nreservation-id\nsecurity-groups")
        << path;
  }
}

TEST(Imds, MetaDataListingWithoutPublicIpOrKey) {
  auto t = table_of({bare()});
  auto r = get(t, "10.16.3.11", "/latest/meta-data/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            "ami-id\nami-launch-index\nblock-device-mapping/\nhostname\ninstance-id\n"
            "instance-type\nlocal-hostname\nlocal-ipv4\nmac\nplacement/\nreservation-id\n"
            "security-groups");
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/meta-data/public-ipv4").status, 404);
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/meta-data/public-hostname").status, 404);
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/meta-data/public-keys/").status, 404);
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/meta-data/public-keys/0/openssh-key").status, 404);
}

TEST(Imds, EachLeaf) {
  auto t = table_of({full()});
  const std::vector<std::pair<std::string, std::string>> leaves = {
      {"ami-id", "ami-0fedcba9876543210"},
      {"ami-launch-index", "0"},
      {"hostname", "ip-10-16-3-10.kumo.internal"},
      {"instance-id", "i-0123456789abcdef0"},
      {"instance-type", "t3.micro"},
      {"local-hostname", "ip-10-16-3-10.kumo.internal"},
      {"local-ipv4", "10.16.3.10"},
      {"mac", "02:00:0a:10:03:0a"},
      {"public-hostname", "ec2-203-0-113-25.kumo.internal"},
      {"public-ipv4", "203.0.113.25"},
      {"reservation-id", "r-0aaaabbbbccccdddd"},
      {"security-groups", "default\nweb"},
      {"placement/availability-zone", "kumo-1a"},
      {"placement/region", "kumo-1"},
      {"block-device-mapping/ami", "/dev/vda"},
      {"block-device-mapping/ebs1", "/dev/sdf"},
      {"public-keys/0/openssh-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIexample laptop"},
  };
  for (const auto& [name, value] : leaves) {
    auto r = get(t, "10.16.3.10", "/latest/meta-data/" + name);
    EXPECT_EQ(r.status, 200) << name;
    EXPECT_EQ(r.content_type, "text/plain") << name;
    EXPECT_EQ(r.body, value) << name;
    EXPECT_EQ(get(t, "10.16.3.10", "/latest/meta-data/" + name + "/").status, 404) << name;
  }
  EXPECT_EQ(get(t, "10.16.3.10", "/latest/meta-data/instance-id?x=1").body,
            "i-0123456789abcdef0");
}

TEST(Imds, SubDirectories) {
  auto t = table_of({full()});
  auto body = [&](const std::string& p) {
    auto r = get(t, "10.16.3.10", p);
    EXPECT_EQ(r.status, 200) << p;
    return r.body;
  };
  EXPECT_EQ(body("/latest/meta-data/placement/"), "availability-zone\nregion");
  EXPECT_EQ(body("/latest/meta-data/placement"), "availability-zone\nregion");
  EXPECT_EQ(body("/latest/meta-data/block-device-mapping/"), "ami\nebs1");
  EXPECT_EQ(body("/latest/meta-data/public-keys/"), "0=laptop");
  EXPECT_EQ(body("/latest/meta-data/public-keys/0/"), "openssh-key");
  EXPECT_EQ(body("/latest/meta-data/public-keys/0"), "openssh-key");
  EXPECT_EQ(body("/"), "latest");
  EXPECT_EQ(body("/latest/"), "dynamic\nmeta-data\nuser-data");
  EXPECT_EQ(body("/latest"), "dynamic\nmeta-data\nuser-data");
  EXPECT_EQ(body("/latest/dynamic/"), "instance-identity/");
  EXPECT_EQ(body("/latest/dynamic/instance-identity/"), "document");
}

TEST(Imds, UnknownPathsAre404) {
  auto t = table_of({full()});
  for (const char* p : {"/latest/meta-data/nope", "/latest/meta-data/placement/nope",
                        "/latest//meta-data/", "/2009-04-04/meta-data/", "latest/meta-data/",
                        "", "/latest/meta-data/block-device-mapping/ebs9"}) {
    EXPECT_EQ(get(t, "10.16.3.10", p).status, 404) << p;
  }
}

TEST(Imds, IdentityDocument) {
  auto t = table_of({full()});
  auto r = get(t, "10.16.3.10", "/latest/dynamic/instance-identity/document");
  ASSERT_EQ(r.status, 200);
  auto doc = nlohmann::json::parse(r.body);
  EXPECT_EQ(doc["accountId"], "123456789012");
  EXPECT_EQ(doc["architecture"], "x86_64");
  EXPECT_EQ(doc["availabilityZone"], "kumo-1a");
  EXPECT_EQ(doc["imageId"], "ami-0fedcba9876543210");
  EXPECT_EQ(doc["instanceId"], "i-0123456789abcdef0");
  EXPECT_EQ(doc["instanceType"], "t3.micro");
  EXPECT_EQ(doc["pendingTime"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(doc["privateIp"], "10.16.3.10");
  EXPECT_EQ(doc["region"], "kumo-1");
  EXPECT_EQ(doc["version"], "2017-09-30");
}

TEST(Imds, UserData) {
  auto t = table_of({full(), bare()});
  auto r = get(t, "10.16.3.10", "/latest/user-data");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/octet-stream");
  EXPECT_EQ(r.body, full().user_data);
  EXPECT_EQ(r.body.size(), 20u);  // the NUL and 0xff bytes survive
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/user-data").status, 404);
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/").body, "dynamic\nmeta-data");
}

TEST(Imds, EachSourceSeesOnlyItsOwnInstance) {
  auto t = table_of({full(), bare()});
  EXPECT_EQ(get(t, "10.16.3.10", "/latest/meta-data/instance-id").body, "i-0123456789abcdef0");
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/meta-data/instance-id").body, "i-0bbbbbbbbbbbbbbbb");
  auto r = get(t, "10.16.3.12", "/latest/meta-data/instance-id");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "no instance at 10.16.3.12");
  EXPECT_EQ(put_token(t, "10.16.3.12", "60").status, 404);
}

TEST(Imds, EndpointDisabledIs403) {
  auto m = full();
  m.endpoint_enabled = false;
  auto t = table_of({m});
  EXPECT_EQ(get(t, "10.16.3.10", "/latest/meta-data/instance-id").status, 403);
  EXPECT_EQ(get(t, "10.16.3.10", "/").status, 403);
  EXPECT_EQ(put_token(t, "10.16.3.10", "60").status, 403);
}

TEST(Imds, TokenFlow) {
  auto m = full();
  m.http_tokens_required = true;
  m.hop_limit = 2;
  auto t = table_of({m});
  auto tok = put_token(t, "10.16.3.10", "21600");
  ASSERT_EQ(tok.status, 200);
  EXPECT_EQ(tok.ttl, 2);  // the hop limit goes out as IP TTL
  EXPECT_EQ(header_value(tok.headers, "X-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_FALSE(tok.body.empty());

  auto r = get(t, "10.16.3.10", "/latest/meta-data/instance-id",
               {{"x-aws-ec2-metadata-token", tok.body}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "i-0123456789abcdef0");
  EXPECT_EQ(r.ttl, 0);  // only token responses carry the hop limit
  EXPECT_EQ(get(t, "10.16.3.10", "/latest/meta-data/instance-id").status, 401);
}

TEST(Imds, TokenFromAnotherIpIs401) {
  auto t = table_of({full(), bare()});
  auto tok = put_token(t, "10.16.3.10", "60");
  ASSERT_EQ(tok.status, 200);
  EXPECT_EQ(get(t, "10.16.3.11", "/latest/meta-data/instance-id",
                {{"X-aws-ec2-metadata-token", tok.body}})
                .status,
            401);
}

TEST(Imds, ExpiredTokenIs401) {
  auto t = table_of({full()});
  auto tok = put_token(t, "10.16.3.10", "60");
  ASSERT_EQ(tok.status, 200);
  imds_request req{"10.16.3.10", "GET", "/latest/meta-data/instance-id",
                   {{"X-aws-ec2-metadata-token", tok.body}}};
  EXPECT_EQ(handle(t, req, signer, now + 59'999).status, 200);
  EXPECT_EQ(handle(t, req, signer, now + 60'000).status, 401);
}

TEST(Imds, TamperedTokenIs401) {
  auto t = table_of({full()});
  auto tok = put_token(t, "10.16.3.10", "60").body;
  auto dot = tok.find('.');
  ASSERT_NE(dot, std::string::npos);
  // A token claiming a later expiry, with the old signature.
  std::string forged = signer.issue("10.16.3.10", now + 1'000'000);
  forged = forged.substr(0, forged.find('.')) + tok.substr(dot);
  std::string flipped = tok;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  const token_signer other(std::string(32, '\x43'));
  for (const std::string& bad : {forged, flipped, other.issue("10.16.3.10", now + 60'000),
                                 std::string("garbage"), std::string(""), tok.substr(0, dot)}) {
    EXPECT_EQ(get(t, "10.16.3.10", "/latest/meta-data/instance-id",
                  {{"X-aws-ec2-metadata-token", bad}})
                  .status,
              401)
        << bad;
  }
}

TEST(Imds, OptionalTokensServeV1) {
  auto t = table_of({full()});
  EXPECT_EQ(get(t, "10.16.3.10", "/latest/meta-data/instance-id").status, 200);
}

TEST(Imds, BadTokenTtlIs400) {
  auto t = table_of({full()});
  for (const char* ttl : {"0", "21601", "abc", "-5", "", "60s"}) {
    EXPECT_EQ(put_token(t, "10.16.3.10", ttl).status, 400) << ttl;
  }
  EXPECT_EQ(handle(t, {"10.16.3.10", "PUT", "/latest/api/token", {}}, signer, now).status, 400);
  EXPECT_EQ(put_token(t, "10.16.3.10", "1").status, 200);
}

TEST(Imds, ForwardedTokenRequestIs403) {
  auto t = table_of({full()});
  EXPECT_EQ(put_token(t, "10.16.3.10", "60", {{"X-Forwarded-For", "10.0.0.1"}}).status, 403);
}

TEST(Imds, OtherMethodsAre405) {
  auto t = table_of({full()});
  EXPECT_EQ(handle(t, {"10.16.3.10", "DELETE", "/latest/meta-data/", {}}, signer, now).status,
            405);
  EXPECT_EQ(handle(t, {"10.16.3.10", "POST", "/latest/api/token", {}}, signer, now).status, 405);
  EXPECT_EQ(handle(t, {"10.16.3.10", "PUT", "/latest/meta-data/", {}}, signer, now).status, 405);
  EXPECT_EQ(get(t, "10.16.3.10", "/latest/api/token").status, 405);
}

}  // namespace
}  // namespace kumo::net
