// The SOAP request a UPnP control point sends (UDA 1.1 s3.2.1): the envelope around one
// action of a service, with the SOAPAction header that names it. Pure: no sockets.
//
// miniupnpc's simpleUPnPcommand writes argument values and the service type into the
// XML unescaped; a description with '&' or '<', or a service type with a '"' (the
// device chose it), made a request the router could not parse. Here every value is
// escaped, and a service type or action a header line cannot carry is refused.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "porthole/error.hpp"

namespace porthole::detail {

// One <Name>value</Name> argument, in the order the service's SCPD lists them.
using SoapArgument = std::pair<std::string_view, std::string_view>;

struct SoapRequest {
  std::string soap_action;  // the SOAPAction header value, quoted: "\"service#action\""
  std::string body;         // the envelope, as miniupnpc lays it out
};

// Errc::usage when service or action is empty or holds bytes outside printable ASCII
// (they would end up in a header line), or an argument name is not a plain XML name.
Result<SoapRequest> build_soap_request(std::string_view service, std::string_view action,
                                       const std::vector<SoapArgument>& args);

// Text with &, <, >, " and ' written as entities (XML 1.0 s2.4), so it stays character
// data or an attribute value.
std::string xml_escape(std::string_view text);

}  // namespace porthole::detail
