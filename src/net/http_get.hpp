// Bounded HTTP/1.1 requests to a UPnP device: GET for the device description, POST
// for the SOAP control calls (miniupnpc's own miniwget and simpleUPnPcommand have no
// overall deadline and no size bound). The device is untrusted: every wait is cut at
// the deadline, the header block and the body are bounded, and chunk sizes are parsed
// overflow-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// Any request, under the same bounds. Header names and values, like the path, must be
// printable ASCII (nothing a device wrote can split a header line): else Errc::usage,
// nothing sent. A body goes with its Content-Length.
struct HttpRequest {
  std::string_view method = "GET";
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // beyond Host etc.
  std::string_view body;
  bool read_500 = false;  // a 500 answer is read too (SOAP faults, UDA 1.1 s3.2.2)
  // When set, the TCP connection must be up by then (Errc::timeout otherwise), however
  // far off the deadline is: a URL remembered from an earlier run is given a short
  // chance before porthole looks for the device afresh.
  std::optional<Deadline> connect_by;
};

struct HttpAnswer {
  int status = 0;  // 200, or 500 with read_500
  std::string body;
};

// Errors as http_get's, messages starting with the method.
Result<HttpAnswer> http_request(const HttpUrl& url, const HttpRequest& request, Deadline deadline,
                                std::size_t max_body = kDefaultMaxHttpBody);

// http_request in two halves: send() connects and sends the whole request; answer() reads
// the reply, once. Between the two the caller may send other requests or write a file
// while the device works on this one (the kernel keeps what arrives meanwhile). Errors as
// http_request's, from the half that met them. Dropping an exchange closes its connection.
class HttpExchange {
 public:
  static Result<HttpExchange> send(const HttpUrl& url, const HttpRequest& request,
                                   Deadline deadline);
  Result<HttpAnswer> answer(Deadline deadline, std::size_t max_body = kDefaultMaxHttpBody);

  HttpExchange(HttpExchange&&) noexcept;
  HttpExchange& operator=(HttpExchange&&) noexcept;
  ~HttpExchange();

 private:
  struct State;
  explicit HttpExchange(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace porthole::detail
