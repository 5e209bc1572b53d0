// A small XML writer for EC2 responses: elements, escaped text, nothing else.
#pragma once

#include <string>
#include <string_view>

namespace kumo::api {

// Escapes &, <, >, " and ' ; replaces control characters XML 1.0 forbids.
std::string xml_escape(std::string_view text);

class xml_writer {
 public:
  xml_writer& open(std::string_view name);
  xml_writer& close(std::string_view name);
  xml_writer& leaf(std::string_view name, std::string_view text);
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

constexpr const char* ec2_namespace = "http://ec2.amazonaws.com/doc/2016-11-15/";

// <?xml ...?><{Action}Response xmlns=...><requestId>..</requestId>{body}</...>
std::string ec2_response(std::string_view action, std::string_view request_id,
                         std::string_view body);
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
std::string ec2_error(std::string_view code, std::string_view message,
                      std::string_view request_id);

}  // namespace kumo::api
