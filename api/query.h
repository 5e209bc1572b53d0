// EC2 Query protocol parameters: form-encoded bodies and query strings,
// decoded into a flat map ("KeyName", "Filter.1.Value.2", ...) plus the
// accessors that turn flat keys back into lists, filters and tags.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kumo::api {

// Percent-decoding with '+' as space. Nullopt on a broken %XX escape.
std::optional<std::string> url_decode(const std::string& s);
bool valid_utf8(const std::string& s);

struct query_error {
  std::string code;     // InvalidParameterValue, MissingParameter, ...
  std::string message;  // names the parameter
};

struct filter {
  std::string name;
  std::vector<std::string> values;
};

struct tag {
  std::string key;
  std::string value;
};

struct tag_specification {
  std::string resource_type;
  std::vector<tag> tags;
};

class query {
 public:
  // Parses "a=1&b=2" (body or query string). Refuses broken escapes,
  // invalid UTF-8, repeated keys and more than `max_params` parameters.
  static std::optional<query> parse(const std::string& encoded, query_error& err,
                                    size_t max_params = 5000);
  // Adds the parameters of another encoded string (query string + body).
  bool merge(const query& other, query_error& err);

  // Drops parameters whose names start with `prefix` (e.g. SigV4's X-Amz-*).
  void erase_prefixed(const std::string& prefix);

  const std::map<std::string, std::string>& all() const { return params_; }
  // Every parameter but `except`, length-prefixed, one per line, by name:
  // the same parameters give the same text, and no two sets the same (what
  // ClientToken hashes and NextToken signs).
  std::string canonical(const std::set<std::string>& except) const;
  std::optional<std::string> get(const std::string& name) const;
  bool has(const std::string& name) const { return params_.count(name) > 0; }

  // Prefix.1, Prefix.2, ... in index order. Gaps or bad indexes are errors.
  std::optional<std::vector<std::string>> list(const std::string& prefix, query_error& err) const;
  // Filter.N.Name / Filter.N.Value.M
  std::optional<std::vector<filter>> filters(query_error& err) const;
  // TagSpecification.N.ResourceType / .Tag.M.Key / .Tag.M.Value
  std::optional<std::vector<tag_specification>> tag_specifications(query_error& err) const;
  // Optional boolean ("true"/"false"); error if present and malformed.
  std::optional<bool> boolean(const std::string& name, query_error& err) const;
  // Indexes N of keys "prefix.N" or "prefix.N.<rest>", ascending.
  std::optional<std::vector<int>> indexes(const std::string& prefix, query_error& err) const;

 private:
  std::map<std::string, std::string> params_;
};

}  // namespace kumo::api
