// libFuzzer target: a SOAP answer as it comes off the control connection, through
// porthole's bounded HTTP parser (HttpResponseParser reading 200 and 500 answers, at
// most kMaxSoapReplyBytes of body) and read_soap_reply, the wrapper around miniupnpc's
// reply parser (ParseNameValue, the parser of every UPNP_* call). It must never crash,
// leak or read out of bounds, whatever the XML (truncated, CDATA at the end, element
// names over 64 bytes, "<a:", ...).
// Properties: a body is never over the bound; an accepted answer is a success (fault 0)
// or a fault with an errorCode of 1..9999 that the answer holds; names and values are
// no longer than miniupnpc's fields; every refusal is Errc::internal.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "codec/http_response.hpp"
#include "codec/igd_xml.hpp"
#include "fuzz_check.hpp"

using namespace porthole;
using namespace porthole::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  HttpResponseParser http(kMaxSoapReplyBytes, true);
  Status st = http.feed(bytes);
  if (st && !http.done()) st = http.finish_at_eof();
  if (!st) return 0;
  PORTHOLE_FUZZ_CHECK(http.status() == 200 || http.status() == 500);
  PORTHOLE_FUZZ_CHECK(http.body().size() <= kMaxSoapReplyBytes);

  auto reply = read_soap_reply(http.body(), http.status());
  if (!reply) {
    PORTHOLE_FUZZ_CHECK(reply.error().code == Errc::internal);
    return 0;
  }
  PORTHOLE_FUZZ_CHECK(reply->fault >= 0 && reply->fault <= 9999);
  PORTHOLE_FUZZ_CHECK(reply->fault == 0 || reply->value("errorCode").has_value());
  PORTHOLE_FUZZ_CHECK(http.status() == 200 || reply->fault != 0);
  for (const auto& [name, value] : reply->values)
    PORTHOLE_FUZZ_CHECK(name.size() < 64 && value.size() < 128);
  // A GetListOfPortMappings answer: its PortMappingList goes through miniupnpc too.
  if (reply->port_listing) {
    PORTHOLE_FUZZ_CHECK(reply->port_listing->size() <= kMaxSoapReplyBytes);
    auto rows = read_port_listing(*reply->port_listing);
    if (!rows) {
      PORTHOLE_FUZZ_CHECK(rows.error().code == Errc::internal);
    } else {
      for (const auto& row : *rows)
        PORTHOLE_FUZZ_CHECK(row.external_port != 0 && row.description.size() < 64 &&
                            row.internal_ip.size() < 64);
    }
  }
  return 0;
}
