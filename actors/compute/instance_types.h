// Instance types: Eucalyptus-style VM types an operator configures. The
// defaults are Eucalyptus's; kumod's --instance-type flag replaces them.
#pragma once

#include "actors/instance/instance.h"

#include <optional>
#include <string>
#include <vector>

namespace kumo::actors {

std::vector<instance::sizing> default_instance_types();
// "name:vcpus:memory_mib:disk_gib", e.g. "m1.small:1:256:5".
std::optional<instance::sizing> parse_instance_type(const std::string& text, std::string& error);

}  // namespace kumo::actors
