// A bounded HTTP/1.1 GET, for the UPnP device description (miniupnpc's own miniwget
// has no overall deadline). The device is untrusted: every wait is cut at the deadline,
// the header block and the body are bounded, and chunk sizes are parsed overflow-safe.
#pragma once

#include <cstddef>
#include <string>

#include "codec/http_response.hpp"  // the answer's parser, kMaxHttpHeaderBytes
#include "codec/url_check.hpp"
#include "net/deadline.hpp"
#include "porthole/error.hpp"

namespace porthole::detail {

// GETs url.path from url.host:url.port ("Connection: close") and returns the body of a
// 200 answer: by Content-Length, chunked (RFC 9112 s7.1), or up to the close. The bytes
// go through HttpResponseParser as they arrive.
// Errors:
//  Errc::timeout     the deadline ran out (connecting, or with the answer incomplete:
//                    a router that drips bytes or never ends its headers)
//  Errc::no_service  connection refused or reset, or a status other than 200
//                    (protocol_code = the HTTP status)
//  Errc::internal    a malformed answer: header block over kMaxHttpHeaderBytes, body
//                    over max_body (announced or actual), chunk size >= 0x80000000,
//                    bad chunk framing, early close; or a local socket failure
// Only the IPv4 literal in url.host is contacted; callers check it with
// check_device_url first.
Result<std::string> http_get(const HttpUrl& url, Deadline deadline,
                             std::size_t max_body = kDefaultMaxHttpBody);

}  // namespace porthole::detail
