#include "codec/soap_envelope.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "codec/url_check.hpp"

namespace porthole::detail {
namespace {

bool printable_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x7f;
  });
}

// The argument names porthole writes (NewExternalPort, ...): letters and digits only.
bool plain_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

}  // namespace

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
      default: out += c;
    }
  }
  return out;
}

Result<SoapRequest> build_soap_request(std::string_view service, std::string_view action,
                                       const std::vector<SoapArgument>& args) {
  if (service.empty() || !printable_ascii(service) || service.find('"') != std::string_view::npos)
    return make_error(Errc::usage, fmt::format("SOAP service type '{}' cannot go into a "
                                               "SOAPAction header",
                                               printable_excerpt(service)));
  if (!plain_name(action))
    return make_error(Errc::usage,
                      fmt::format("'{}' is not a SOAP action name", printable_excerpt(action)));
  SoapRequest out;
  out.soap_action = fmt::format("\"{}#{}\"", service, action);
  // The layout of miniupnpc's simpleUPnPcommand (prefixes s: and u:), which every IGD
  // porthole has met accepts.
  out.body = fmt::format(
      "<?xml version=\"1.0\"?>\r\n"
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\">"
      "<s:Body><u:{} xmlns:u=\"{}\">",
      action, xml_escape(service));
  for (const auto& [name, value] : args) {
    if (!plain_name(name))
      return make_error(Errc::usage,
                        fmt::format("'{}' is not a SOAP argument name", printable_excerpt(name)));
    out.body += fmt::format("<{0}>{1}</{0}>", name, xml_escape(value));
  }
  out.body += fmt::format("</u:{}></s:Body></s:Envelope>\r\n", action);
  return out;
}

}  // namespace porthole::detail
