// EC2 filter semantics, shared by every Describe*: a resource matches when
// every filter matches; a filter matches when any of its values matches any
// of the resource's values under that name; values may use * and ? wildcards.
#pragma once

#include "api/query.h"

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kumo::api {

bool wildcard_match(std::string_view pattern, std::string_view text);

// Refuses filter names outside `allowed` ("tag:*" allows any "tag:KEY").
bool check_filter_names(const std::vector<filter>& filters, const std::set<std::string>& allowed,
                        query_error& err);

// `values_of(name)` gives the resource's values for one filter name.
bool matches(const std::vector<filter>& filters,
             const std::function<std::vector<std::string>(const std::string&)>& values_of);

}  // namespace kumo::api
