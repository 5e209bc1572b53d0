// What an EC2 operation sees: an authenticated caller, typed-ish parameters,
// and one way to answer. Operations are registered once, by botocore name,
// in a table (see operations.cpp).
#pragma once

#include "api/ec2.h"
#include "api/query.h"
#include "api/xml.h"

#include <map>
#include <memory>
#include <string>

namespace kumo::api {

struct op_context {
  caf::event_based_actor* self = nullptr;  // the gateway, for requests to aggregates
  const actors::cloud_actors* cloud = nullptr;
  const ec2_config* cfg = nullptr;
  std::string action;
  std::string request_id;
  std::string account_id;
  std::string principal;  // arn:aws:iam::<account>:root
  query params;
  reply_fn done;

  void respond(const xml_writer& body) const;
  void fail(const std::string& code, const std::string& message, int status = 400) const;
  void fail(const query_error& e) const { fail(e.code, e.message); }
};

using op_ptr = std::shared_ptr<op_context>;
using op_handler = void (*)(const op_ptr&);

// Marks an operation as supporting DryRun: the gateway answers
// DryRunOperation when DryRun=true, after authentication.
struct operation {
  op_handler handler;
  bool dry_run = true;
};

using op_table = std::map<std::string, operation>;
const op_table& operations();

// Registration, one function per file of operations.
void register_region_ops(op_table& t);

}  // namespace kumo::api
