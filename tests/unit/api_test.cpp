// The EC2 API's pure parts: SigV4, Query parsing, XML, filters.
#include "api/filters.h"
#include "api/query.h"
#include "api/sigv4.h"
#include "api/xml.h"

#include <gtest/gtest.h>

using namespace kumo::api;

namespace {

const std::string example_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr int64_t t_20261125_060952 = 1795586992;  // 2026-11-25T06:09:52Z

// Signed by botocore 1.29 (Debian 12) with AKIDEXAMPLE / example_secret.
http_parts botocore_post() {
  http_parts r;
  r.method = "POST";
  r.target = "/";
  r.body = "Action=DescribeRegions&Version=2016-11-15&RegionName.1=kumo-1";
  r.headers = {
      {"host", "127.0.0.1:8773"},
      {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
      {"x-amz-date", "20261125T060952Z"},
      {"authorization",
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/kumo-1/ec2/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature=b698cc0e01d86a761618415d05c4b67171f92155646b058fa233f9bbdba0267e"}};
  return r;
}

http_parts botocore_presigned() {
  http_parts r;
  r.method = "GET";
  r.target =
      "/?Action=DescribeRegions&Version=2016-11-15&Filter.1.Name=region-name&Filter.1.Value.1="
      "kumo%2A%201&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261125%2F"
      "kumo-1%2Fec2%2Faws4_request&X-Amz-Date=20261125T060952Z&X-Amz-Expires=300&X-Amz-"
      "SignedHeaders=host&X-Amz-Signature="
      "7d888404428f4de27e275502ac9429efa021f11c1ff17de7c5214a7447f101ac";
  r.headers = {{"host", "127.0.0.1:8773"}};
  return r;
}

std::optional<auth_error> check(const http_parts& r, int64_t now, const std::string& secret = example_secret) {
  auth_error err;
  auto claim = parse_claim(r, err);
  if (!claim) return err;
  return verify(r, *claim, secret, "kumo-1", "ec2", now);
}

}  // namespace

TEST(SigV4, AwsPublishedGetVanillaVector) {
  // aws-sig-v4-test-suite/get-vanilla
  http_parts r;
  r.method = "GET";
  r.target = "/";
  r.headers = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}};
  sigv4_claim c;
  c.access_key_id = "AKIDEXAMPLE";
  c.date = "20150830";
  c.region = "us-east-1";
  c.service = "service";
  c.amz_date = "20150830T123600Z";
  c.signed_headers = "host;x-amz-date";
  auto canonical = canonical_request(r, c);
  EXPECT_EQ(canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(signature(example_secret, c, string_to_sign(c, canonical)),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, AcceptsWhatBotocoreSigns) {
  EXPECT_FALSE(check(botocore_post(), t_20261125_060952));
  EXPECT_FALSE(check(botocore_post(), t_20261125_060952 + 14 * 60));  // within ±15 min
  EXPECT_FALSE(check(botocore_presigned(), t_20261125_060952 + 299));
}

TEST(SigV4, RefusesTamperingWrongKeysAndStaleRequests) {
  auto r = botocore_post();
  r.body = "Action=DescribeRegions&Version=2016-11-15&RegionName.1=kumo-2";
  auto e = check(r, t_20261125_060952);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "SignatureDoesNotMatch");
  EXPECT_EQ(e->http_status, 403);

  e = check(botocore_post(), t_20261125_060952, "not-the-secret");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "SignatureDoesNotMatch");

  e = check(botocore_post(), t_20261125_060952 + 16 * 60);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "RequestExpired");
  e = check(botocore_post(), t_20261125_060952 - 16 * 60);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "RequestExpired");

  r = botocore_post();
  r.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";  // would leave the parameters unsigned
  e = check(r, t_20261125_060952);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "SignatureDoesNotMatch");

  auto p = botocore_presigned();
  e = check(p, t_20261125_060952 + 301);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "RequestExpired");
  p.target.replace(p.target.find("kumo%2A%201"), 11, "kumo%2A%202");
  e = check(p, t_20261125_060952);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "SignatureDoesNotMatch");
}

TEST(SigV4, RefusesUnsignedAndMalformedRequests) {
  http_parts r;
  r.method = "POST";
  r.target = "/";
  r.body = "Action=DescribeRegions";
  auto e = check(r, t_20261125_060952);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "MissingAuthenticationToken");
  EXPECT_EQ(e->http_status, 401);

  r = botocore_post();
  r.headers["authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/bad";
  e = check(r, t_20261125_060952);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "IncompleteSignature");

  r = botocore_post();
  r.headers["authorization"] = "AWS AKIDEXAMPLE:c2lnbmF0dXJl";  // SigV2
  e = check(r, t_20261125_060952);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "IncompleteSignature");

  r = botocore_post();
  auto& a = r.headers["authorization"];
  a.replace(a.find("/kumo-1/"), 8, "/us-east-1/");
  e = check(r, t_20261125_060952);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "AuthFailure");
}

TEST(Query, DecodesListsFiltersAndTags) {
  query_error err;
  auto q = query::parse(
      "Action=RunInstances&InstanceId.2=i-2&InstanceId.1=i-1&Filter.1.Name=tag%3AName&"
      "Filter.1.Value.1=web%2A&Filter.1.Value.2=db+1&TagSpecification.1.ResourceType=instance&"
      "TagSpecification.1.Tag.1.Key=team&TagSpecification.1.Tag.1.Value=a%26b&DryRun=true",
      err);
  ASSERT_TRUE(q) << err.message;
  EXPECT_EQ(q->get("Action"), "RunInstances");
  auto ids = q->list("InstanceId", err);
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (std::vector<std::string>{"i-1", "i-2"}));
  auto f = q->filters(err);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].name, "tag:Name");
  EXPECT_EQ((*f)[0].values, (std::vector<std::string>{"web*", "db 1"}));
  auto tags = q->tag_specifications(err);
  ASSERT_TRUE(tags);
  EXPECT_EQ((*tags)[0].resource_type, "instance");
  EXPECT_EQ((*tags)[0].tags[0].value, "a&b");
  EXPECT_EQ(q->boolean("DryRun", err), true);
  EXPECT_TRUE(q->list("Nothing", err)->empty());
}

TEST(Query, RefusesMalformedInput) {
  query_error err;
  EXPECT_FALSE(query::parse("Action=%zz", err));
  EXPECT_EQ(err.code, "InvalidParameterValue");
  EXPECT_FALSE(query::parse("Action=Describe%", err));
  EXPECT_FALSE(query::parse("KeyName=%C3%28", err));  // invalid UTF-8
  EXPECT_NE(err.message.find("UTF-8"), std::string::npos);
  EXPECT_FALSE(query::parse("KeyName=%ED%A0%80", err));  // a UTF-16 surrogate
  EXPECT_TRUE(query::parse("KeyName=%E2%82%AC", err));   // the euro sign is fine
  EXPECT_FALSE(query::parse("A=1&A=2", err));
  EXPECT_NE(err.message.find("more than once"), std::string::npos);
  std::string many;
  for (int i = 1; i <= 10001; ++i) many += "InstanceId." + std::to_string(i) + "=i-" + std::to_string(i) + "&";
  EXPECT_FALSE(query::parse(many, err));
  EXPECT_NE(err.message.find("too many parameters"), std::string::npos);

  auto q = query::parse("InstanceId.01=x&Filter.1.Value.1=v&DryRun=yes", err);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->list("InstanceId", err));
  EXPECT_FALSE(q->filters(err));
  EXPECT_EQ(err.code, "MissingParameter");
  EXPECT_NE(err.message.find("Filter.1.Name"), std::string::npos);
  err = {};
  EXPECT_FALSE(q->boolean("DryRun", err));
  EXPECT_EQ(err.code, "InvalidParameterValue");
}

TEST(Xml, EscapesEverythingThatNeedsIt) {
  EXPECT_EQ(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(xml_escape(std::string("x\x01y", 3)), "x\xEF\xBF\xBDy");
  auto err = ec2_error("InvalidKeyPair.NotFound", "The key pair 'a<b' does not exist", "rid-1");
  EXPECT_NE(err.find("<Response><Errors><Error><Code>InvalidKeyPair.NotFound</Code><Message>The key pair &apos;a&lt;b&apos; does not exist</Message></Error></Errors><RequestID>rid-1</RequestID></Response>"),
            std::string::npos)
      << err;
  xml_writer w;
  w.open("regionInfo").open("item").leaf("regionName", "kumo-1").close("item").close("regionInfo");
  auto doc = ec2_response("DescribeRegions", "rid-2", w.str());
  EXPECT_NE(doc.find("<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid-2</requestId><regionInfo>"),
            std::string::npos)
      << doc;
}

TEST(Filters, WildcardsAndNames) {
  EXPECT_TRUE(wildcard_match("web-*", "web-1"));
  EXPECT_TRUE(wildcard_match("w?b*1", "web-01"));
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_FALSE(wildcard_match("web-?", "web-10"));
  EXPECT_FALSE(wildcard_match("db", "db2"));
  query_error err;
  std::vector<filter> fs{{"tag:Name", {"web"}}, {"key-name", {"a", "b*"}}};
  EXPECT_TRUE(check_filter_names(fs, {"key-name", "tag:*"}, err));
  EXPECT_FALSE(check_filter_names(fs, {"key-name"}, err));
  EXPECT_EQ(err.message, "The filter 'tag:Name' is invalid");
  auto values = [](const std::string& n) -> std::vector<std::string> {
    return n == "key-name" ? std::vector<std::string>{"bob"} : std::vector<std::string>{"web"};
  };
  EXPECT_TRUE(matches(fs, values));
  EXPECT_FALSE(matches({{"key-name", {"a"}}}, values));
}
