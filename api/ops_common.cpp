#include "api/operation.h"

#include "persistence/time_format.h"

namespace kumo::api {

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
      if (t.key.empty() || t.key.size() > 128 || t.value.size() > 256) {
        c->fail("InvalidParameterValue",
                "tag keys must be 1-128 characters and values at most 256 ('" + t.key.substr(0, 140) + "')");
        return std::nullopt;
      }
      if (t.key.rfind("aws:", 0) == 0) {
        c->fail("InvalidParameterValue", "tag keys starting with 'aws:' are reserved");
        return std::nullopt;
      }
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

std::string iso_time(int64_t unix_ms) { return persistence::format_time(unix_ms); }

}  // namespace kumo::api
