#include "api/query.h"

#include <set>

namespace kumo::api {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr int max_list_index = 100000;

}  // namespace

std::optional<std::string> url_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 99;
    if (n == 99 || i + n >= s.size()) return false;
    uint32_t cp = n == 0 ? c : c & (0x3f >> n);
    for (size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and out-of-range code points are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

std::optional<query> query::parse(const std::string& encoded, query_error& err,
                                  size_t max_params) {
  query q;
  size_t start = 0;
  while (start <= encoded.size()) {
    auto end = encoded.find('&', start);
    if (end == std::string::npos) end = encoded.size();
    auto pair = encoded.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq));
    auto value = url_decode(eq == std::string::npos ? "" : pair.substr(eq + 1));
    if (!key || !value) {
      err = {"InvalidParameterValue", "malformed percent-encoding in '" + pair.substr(0, 64) + "'"};
      return std::nullopt;
    }
    if (!valid_utf8(*key) || !valid_utf8(*value)) {
      err = {"InvalidParameterValue",
             "parameter '" + (valid_utf8(*key) ? *key : std::string("?")) + "' is not valid UTF-8"};
      return std::nullopt;
    }
    if (key->empty()) continue;
    if (q.params_.size() >= max_params) {
      err = {"InvalidParameterValue",
             "too many parameters (more than " + std::to_string(max_params) + ")"};
      return std::nullopt;
    }
    if (!q.params_.emplace(*key, *value).second) {
      err = {"InvalidParameterValue", "parameter '" + *key + "' is given more than once"};
      return std::nullopt;
    }
  }
  return q;
}

bool query::merge(const query& other, query_error& err) {
  for (const auto& [k, v] : other.params_)
    if (!params_.emplace(k, v).second) {
      err = {"InvalidParameterValue", "parameter '" + k + "' is given more than once"};
      return false;
    }
  return true;
}

void query::erase_prefixed(const std::string& prefix) {
  for (auto it = params_.lower_bound(prefix); it != params_.end() && it->first.rfind(prefix, 0) == 0;)
    it = params_.erase(it);
}

std::string query::canonical(const std::set<std::string>& except) const {
  std::string out;
  for (const auto& [key, value] : params_)
    if (!except.count(key))
      out += std::to_string(key.size()) + ":" + key + "=" + std::to_string(value.size()) + ":" + value + "\n";
  return out;
}

std::optional<std::string> query::get(const std::string& name) const {
  if (auto it = params_.find(name); it != params_.end()) return it->second;
  return std::nullopt;
}

std::optional<std::vector<int>> query::indexes(const std::string& prefix, query_error& err) const {
  std::set<int> found;
  auto dotted = prefix + ".";
  for (auto it = params_.lower_bound(dotted); it != params_.end() && it->first.rfind(dotted, 0) == 0; ++it) {
    auto rest = it->first.substr(dotted.size());
    auto digits = rest.substr(0, rest.find('.'));
    if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos ||
        digits[0] == '0') {
      err = {"InvalidParameterValue", "'" + it->first + "' is not a valid list parameter"};
      return std::nullopt;
    }
    int n = std::stoi(digits);
    if (n > max_list_index) {
      err = {"InvalidParameterValue", "'" + it->first + "': list index too large"};
      return std::nullopt;
    }
    found.insert(n);
  }
  return std::vector<int>(found.begin(), found.end());
}

std::optional<std::vector<std::string>> query::list(const std::string& prefix,
                                                    query_error& err) const {
  auto idx = indexes(prefix, err);
  if (!idx) return std::nullopt;
  std::vector<std::string> out;
  for (int n : *idx) {
    auto v = get(prefix + "." + std::to_string(n));
    if (!v) {
      err = {"InvalidParameterValue", "'" + prefix + "." + std::to_string(n) + "' has sub-fields; a value was expected"};
      return std::nullopt;
    }
    out.push_back(*v);
  }
  return out;
}

std::optional<std::vector<filter>> query::filters(query_error& err) const {
  auto idx = indexes("Filter", err);
  if (!idx) return std::nullopt;
  std::vector<filter> out;
  for (int n : *idx) {
    auto base = "Filter." + std::to_string(n);
    auto name = get(base + ".Name");
    if (!name || name->empty()) {
      err = {"MissingParameter", "the request must contain the parameter " + base + ".Name"};
      return std::nullopt;
    }
    auto values = list(base + ".Value", err);
    if (!values) return std::nullopt;
    out.push_back({*name, *values});
  }
  return out;
}

std::optional<std::vector<tag_specification>> query::tag_specifications(query_error& err) const {
  auto idx = indexes("TagSpecification", err);
  if (!idx) return std::nullopt;
  std::vector<tag_specification> out;
  for (int n : *idx) {
    auto base = "TagSpecification." + std::to_string(n);
    tag_specification spec;
    spec.resource_type = get(base + ".ResourceType").value_or("");
    auto tags = indexes(base + ".Tag", err);
    if (!tags) return std::nullopt;
    for (int m : *tags) {
      auto tbase = base + ".Tag." + std::to_string(m);
      auto key = get(tbase + ".Key");
      if (!key) {
        err = {"MissingParameter", "the request must contain the parameter " + tbase + ".Key"};
        return std::nullopt;
      }
      spec.tags.push_back({*key, get(tbase + ".Value").value_or("")});
    }
    out.push_back(std::move(spec));
  }
  return out;
}

std::optional<bool> query::boolean(const std::string& name, query_error& err) const {
  auto v = get(name);
  if (!v) return std::nullopt;
  if (*v == "true") return true;
  if (*v == "false") return false;
  err = {"InvalidParameterValue", "value '" + v->substr(0, 32) + "' for parameter " + name +
                                      " is not a boolean (true or false)"};
  return std::nullopt;
}

}  // namespace kumo::api
