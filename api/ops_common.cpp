#include "api/op_requests.h"

#include "actors/account/account_actors.h"
#include "crypto/digest.h"
#include "persistence/time_format.h"

namespace kumo::api {

void as_admin(const op_ptr& c, std::function<void()> then) {
  c->self->request(c->cloud->accounts_view, actor_timeout, actors::find_account_atom::value,
                   c->account_id, c->read_floor())
      .then(
          [=](std::optional<actors::account::account_summary>& me) {
            if (!me || !me->admin)
              return c->fail("UnauthorizedOperation",
                             "You are not authorized to perform this operation: " + c->action +
                                 " is for the cloud's admin account",
                             403);
            then();
          },
          [=](caf::error& e) { service_unavailable(c, e); });
}

std::optional<std::vector<filter>> checked_filters(const op_ptr& c,
                                                   const std::set<std::string>& allowed) {
  query_error err;
  auto f = c->params.filters(err);
  if (!f || !check_filter_names(*f, allowed, err)) {
    c->fail(err);
    return std::nullopt;
  }
  return f;
}

bool listed(const std::vector<std::string>& wanted, const std::string& value) {
  return wanted.empty() || std::find(wanted.begin(), wanted.end(), value) != wanted.end();
}

std::optional<std::string> required(const op_ptr& c, const std::string& name) {
  auto v = c->params.get(name);
  if (!v || v->empty()) {
    c->fail("MissingParameter", "The request must contain the parameter " + name);
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<actors::resource_tag>> tags_for(const op_ptr& c,
                                                          const std::string& resource_type) {
  query_error err;
  auto specs = c->params.tag_specifications(err);
  if (!specs) {
    c->fail(err);
    return std::nullopt;
  }
  std::vector<actors::resource_tag> tags;
  for (const auto& spec : *specs) {
    if (spec.resource_type != resource_type) {
      c->fail("InvalidParameterValue", "'" + spec.resource_type +
                                           "' is not a valid taggable resource type for this operation; use '" +
                                           resource_type + "'");
      return std::nullopt;
    }
    for (const auto& t : spec.tags) {
      if (!valid_tag(c, t.key, t.value)) return std::nullopt;
      for (const auto& have : tags)
        if (have.key == t.key) {
          c->fail("InvalidParameterValue", "duplicate tag key '" + t.key + "'");
          return std::nullopt;
        }
      tags.push_back({t.key, t.value});
    }
  }
  if (tags.size() > 50) {
    c->fail("TagLimitExceeded", "a resource can have at most 50 tags");
    return std::nullopt;
  }
  return tags;
}

bool valid_tag(const op_ptr& c, const std::string& key, const std::string& value) {
  if (key.empty() || key.size() > 128 || value.size() > 256) {
    c->fail("InvalidParameterValue",
            "tag keys must be 1-128 characters and values at most 256 ('" + key.substr(0, 140) + "')");
    return false;
  }
  if (key.rfind("aws:", 0) == 0) {
    c->fail("InvalidParameterValue", "tag keys starting with 'aws:' are reserved");
    return false;
  }
  return true;
}

std::optional<std::vector<actors::tag_removal>> tag_params(const op_ptr& c, bool value_required) {
  query_error err;
  auto idx = c->params.indexes("Tag", err);
  if (!idx) {
    c->fail(err);
    return std::nullopt;
  }
  std::vector<actors::tag_removal> out;
  for (int n : *idx) {
    auto base = "Tag." + std::to_string(n);
    auto key = c->params.get(base + ".Key");
    auto value = c->params.get(base + ".Value");
    if (!key) {
      c->fail("MissingParameter", "The request must contain the parameter " + base + ".Key");
      return std::nullopt;
    }
    if (!valid_tag(c, *key, value.value_or(""))) return std::nullopt;
    out.push_back({*key, !value && !value_required, value.value_or("")});
  }
  return out;
}

namespace {

// EC2's paging rules for the Describe calls kumo pages, from botocore's model
// and EC2's documentation: MaxResults from `min` up; above `max` a page holds
// `max`; never together with the explicit id list `ids` (EC2 calls it
// `ids_set` in its message).
struct paging_rule {
  int min = 5;
  int max = 1000;
  const char* ids = nullptr;
  const char* ids_set = nullptr;
};

const paging_rule& paging_rule_of(const std::string& action) {
  static const std::map<std::string, paging_rule> rules = {
      {"DescribeInstances", {5, 1000, "InstanceId", "instancesSet"}},
      {"DescribeInstanceStatus", {5, 1000, "InstanceId", "instancesSet"}},
      {"DescribeInstanceTypes", {5, 100}},
      {"DescribeSecurityGroups", {5, 1000}},
      {"DescribeSnapshots", {5, 1000, "SnapshotId", "snapshotSet"}},
      {"DescribeTags", {5, 1000}},
      {"DescribeVolumeStatus", {5, 1000, "VolumeId", "volumeSet"}},
      {"DescribeVolumes", {5, 500, "VolumeId", "volumeSet"}},
  };
  static const paging_rule fallback;
  auto it = rules.find(action);
  return it == rules.end() ? fallback : it->second;
}

// What a NextToken is bound to: the action, the account and every parameter
// of the call but the paging ones (filters, id lists, owners ...).
std::string token_scope(const op_ptr& c) {
  return c->action + "\n" + c->account_id + "\n" + c->params.canonical({"NextToken", "MaxResults", "Action", "Version"});
}

}  // namespace

std::optional<page> paginate(const op_ptr& c, size_t total) {
  const auto& rule = paging_rule_of(c->action);
  page p;
  size_t limit = total;
  if (auto m = c->params.get("MaxResults")) {
    long n = -1;
    try {
      size_t used = 0;
      n = std::stol(*m, &used);
      if (used != m->size()) n = -1;
    } catch (const std::exception&) {
      n = -1;
    }
    if (n < 0) {
      c->fail("InvalidParameterValue", "Value (" + m->substr(0, 16) + ") for parameter MaxResults is invalid. "
                                       "Expecting an integer.");
      return std::nullopt;
    }
    if (n < rule.min) {
      c->fail("InvalidParameterValue", "Value (" + std::to_string(n) + ") for parameter MaxResults is invalid. "
                                       "Expecting a value greater than or equal to " + std::to_string(rule.min) + ".");
      return std::nullopt;
    }
    if (rule.ids) {
      const std::string prefix = std::string(rule.ids) + ".";
      for (const auto& [key, value] : c->params.all())
        if (key.rfind(prefix, 0) == 0) {
          c->fail("InvalidParameterCombination", std::string("The parameter ") + rule.ids_set +
                                                     " cannot be used with the parameter maxResults");
          return std::nullopt;
        }
    }
    limit = static_cast<size_t>(std::min<long>(n, rule.max));  // above the ceiling: a page of the ceiling
  }
  const auto scope = token_scope(c);
  auto sign = [&](size_t offset) {
    auto mac = crypto::hmac_sha256_hex(c->shared->token_key, scope + std::to_string(offset));
    return std::to_string(offset) + "." + mac.substr(0, 32);
  };
  if (auto token = c->params.get("NextToken"); token && !token->empty()) {
    auto dot = token->find('.');
    size_t offset = 0;
    bool ok = dot != std::string::npos && dot > 0 && dot < 10 &&
              token->find_first_not_of("0123456789") == dot;
    if (ok) {
      offset = std::stoul(token->substr(0, dot));
      ok = crypto::constant_time_equal(sign(offset), *token);
    }
    if (!ok) {
      c->fail("InvalidParameterValue", "The NextToken is not valid for this request (tokens belong to one action, "
                                       "account and set of filters)");
      return std::nullopt;
    }
    p.begin = std::min(offset, total);
  }
  p.end = std::min(total, p.begin + limit);
  if (p.end < total) p.next_token = sign(p.end);
  return p;
}

void write_tag_set(xml_writer& w, const std::vector<actors::resource_tag>& tags) {
  w.open("tagSet");
  for (const auto& t : tags) w.open("item").leaf("key", t.key).leaf("value", t.value).close("item");
  w.close("tagSet");
}

std::vector<std::string> tag_filter_values(const std::string& filter_name,
                                           const std::vector<actors::resource_tag>& tags) {
  std::vector<std::string> out;
  for (const auto& t : tags) {
    if (filter_name == "tag-key") out.push_back(t.key);
    else if (filter_name == "tag-value") out.push_back(t.value);
    else if (filter_name == "tag:" + t.key) out.push_back(t.value);
  }
  return out;
}

std::string derived_id(const op_ptr& c, const std::string& prefix, const std::string& what) {
  return prefix + "-" + crypto::hmac_sha256_hex(c->seed, what).substr(0, 17);
}

std::string iso_time(int64_t unix_ms) { return persistence::format_time(unix_ms); }

}  // namespace kumo::api
