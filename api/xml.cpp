#include "api/xml.h"

namespace kumo::api {

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += "\xEF\xBF\xBD";  // U+FFFD: XML 1.0 cannot carry it
        else
          out.push_back(c);
    }
  }
  return out;
}

xml_writer& xml_writer::open(std::string_view name) {
  out_ += "<";
  out_ += name;
  out_ += ">";
  return *this;
}

xml_writer& xml_writer::close(std::string_view name) {
  out_ += "</";
  out_ += name;
  out_ += ">";
  return *this;
}

xml_writer& xml_writer::leaf(std::string_view name, std::string_view text) {
  open(name);
  out_ += xml_escape(text);
  return close(name);
}

std::string ec2_response(std::string_view action, std::string_view request_id,
                         std::string_view body) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<";
  out += action;
  out += "Response xmlns=\"";
  out += ec2_namespace;
  out += "\"><requestId>";
  out += xml_escape(request_id);
  out += "</requestId>";
  out += body;
  out += "</";
  out += action;
  out += "Response>";
  return out;
}

std::string ec2_error(std::string_view code, std::string_view message,
                      std::string_view request_id) {
  xml_writer w;
  w.open("Response").open("Errors").open("Error").leaf("Code", code).leaf("Message", message);
  w.close("Error").close("Errors").leaf("RequestID", request_id).close("Response");
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + w.str();
}

}  // namespace kumo::api
