// IAM identity policies: parsing (MalformedPolicyDocument) and evaluation.
// Pure functions: the gateway evaluates a caller's effective policies (the
// user's own plus those of every group it belongs to) before an operation
// runs. AWS's order: an explicit Deny wins, then an Allow, else deny.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kumo::actors::iam {

struct statement {
  bool allow = false;
  bool not_action = false;            // NotAction: every action but these
  std::vector<std::string> actions;   // "ec2:Describe*", "iam:*", "*" (case-insensitive)
  std::vector<std::string> resources; // "*" or ARNs with * and ? wildcards (case-sensitive)
};

struct policy {
  std::vector<statement> statements;
};

// Parses a policy document. Refuses (nullopt, `error` says why) what kumo
// cannot evaluate faithfully: Principal (not allowed in identity policies),
// NotResource, Condition, unknown keys, a missing Effect/Action/Resource.
std::optional<policy> parse_policy(const std::string& document, std::string& error);

enum class verdict { allow, explicit_deny, implicit_deny };

// `action` is "service:Operation" (e.g. "ec2:RunInstances"); every resource
// of the request must be allowed and none denied.
verdict evaluate(const std::vector<policy>& policies, const std::string& action,
                 const std::vector<std::string>& resources);

// Parses each document (skipping ones that no longer parse) and evaluates.
verdict evaluate_documents(const std::vector<std::string>& documents, const std::string& action,
                           const std::vector<std::string>& resources);

// IAM's glob: '*' any run of characters, '?' any one character.
bool wildcard_match(std::string_view pattern, std::string_view text, bool ignore_case);

}  // namespace kumo::actors::iam
