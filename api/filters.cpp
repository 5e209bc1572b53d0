#include "api/filters.h"

namespace kumo::api {

bool wildcard_match(std::string_view p, std::string_view t) {
  // Iterative glob with single-star backtracking: linear in practice.
  size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool check_filter_names(const std::vector<filter>& filters, const std::set<std::string>& allowed,
                        query_error& err) {
  // EC2's limits, which also bound what one Describe can cost.
  if (filters.size() > 50) {
    err = {"InvalidParameterValue", "at most 50 filters per request"};
    return false;
  }
  for (const auto& f : filters) {
    if (f.values.size() > 200) {
      err = {"InvalidParameterValue", "The filter '" + f.name + "' has more than 200 values"};
      return false;
    }
    for (const auto& v : f.values)
      if (v.size() > 255) {
        err = {"InvalidParameterValue", "a value of filter '" + f.name + "' is longer than 255 characters"};
        return false;
      }
    bool ok = allowed.count(f.name) || (allowed.count("tag:*") && f.name.rfind("tag:", 0) == 0 &&
                                        f.name.size() > 4);
    if (!ok) {
      err = {"InvalidParameterValue", "The filter '" + f.name + "' is invalid"};
      return false;
    }
    if (f.values.empty()) {
      err = {"InvalidParameterValue", "The filter '" + f.name + "' needs at least one value"};
      return false;
    }
  }
  return true;
}

bool matches(const std::vector<filter>& filters,
             const std::function<std::vector<std::string>(const std::string&)>& values_of) {
  for (const auto& f : filters) {
    bool any = false;
    for (const auto& have : values_of(f.name)) {
      for (const auto& want : f.values)
        if (wildcard_match(want, have)) {
          any = true;
          break;
        }
      if (any) break;
    }
    if (!any) return false;
  }
  return true;
}

}  // namespace kumo::api
