#include "api/ec2_params.h"

#include <map>

namespace kumo::api {

const std::set<std::string>* model_parameters(const std::string& action) {
  static const std::map<std::string, std::set<std::string>> table = {
#include "ec2_params.inc"
  };
  auto it = table.find(action);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace kumo::api
