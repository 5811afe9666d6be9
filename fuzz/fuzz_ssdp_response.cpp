// libFuzzer target: ssdp::parse_search_response on any datagram, then what discovery
// does with an accepted one (classify ST/USN, check LOCATION against the gateway).
// Properties: the two overloads agree; an accepted response fits the bounds and its
// values are trimmed, single-line and free of control bytes; a LOCATION that passes
// the URL policy is on the gateway. The same bytes, as a search target, must not
// break the M-SEARCH we build out of its request line and headers.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "codec/ssdp_codec.hpp"
#include "codec/url_check.hpp"
#include "fuzz_check.hpp"

namespace ssdp = porthole::detail::ssdp;
using porthole::detail::check_device_url;

namespace {

void check_value(const std::string& value) {
  PORTHOLE_FUZZ_CHECK(value.size() <= ssdp::kMaxLine);
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    PORTHOLE_FUZZ_CHECK(c >= 0x20 || c == '\t');
    PORTHOLE_FUZZ_CHECK(c != 0x7f);
  }
  if (!value.empty()) {
    PORTHOLE_FUZZ_CHECK(value.front() != ' ' && value.front() != '\t');
    PORTHOLE_FUZZ_CHECK(value.back() != ' ' && value.back() != '\t');
  }
}

void check_msearch(std::string_view target, int mx) {
  const std::string request = ssdp::build_msearch(target, mx);
  // Exactly the six line ends of the request line, four headers and the blank line.
  PORTHOLE_FUZZ_CHECK(std::count(request.begin(), request.end(), '\r') == 6);
  PORTHOLE_FUZZ_CHECK(std::count(request.begin(), request.end(), '\n') == 6);
  PORTHOLE_FUZZ_CHECK(request.rfind("M-SEARCH * HTTP/1.1\r\n", 0) == 0);
  PORTHOLE_FUZZ_CHECK(request.size() >= 4 &&
                      request.compare(request.size() - 4, 4, "\r\n\r\n") == 0);
  for (std::size_t i = 0; i < request.size(); ++i) {
    auto c = static_cast<unsigned char>(request[i]);
    if (c == '\r') PORTHOLE_FUZZ_CHECK(i + 1 < request.size() && request[i + 1] == '\n');
    PORTHOLE_FUZZ_CHECK(c >= 0x20 || c == '\r' || c == '\n');
    PORTHOLE_FUZZ_CHECK(c != 0x7f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ssdp::parse_search_response(std::span<const std::uint8_t>(data, size));
  auto parsed_text = ssdp::parse_search_response(text);
  PORTHOLE_FUZZ_CHECK(parsed.ok() == parsed_text.ok());

  if (parsed) {
    const ssdp::SearchResponse& r = *parsed;
    PORTHOLE_FUZZ_CHECK(size <= ssdp::kMaxDatagram);
    PORTHOLE_FUZZ_CHECK(text.rfind("HTTP/1.1 200", 0) == 0);
    PORTHOLE_FUZZ_CHECK(!r.location.empty());
    for (const std::string* v : {&r.location, &r.st, &r.usn, &r.server}) check_value(*v);
    PORTHOLE_FUZZ_CHECK(r.location == parsed_text->location && r.st == parsed_text->st &&
                        r.usn == parsed_text->usn && r.server == parsed_text->server);

    // Discovery's next steps.
    const bool igd = ssdp::denotes_igd(r);
    if (!r.st.empty())
      PORTHOLE_FUZZ_CHECK(igd == (ssdp::classify_target(r.st) != ssdp::TargetKind::other));
    auto url = check_device_url(r.location, "192.168.1.1", false, "192.168.1.100", 24, "LOCATION");
    if (url) PORTHOLE_FUZZ_CHECK(url->host == "192.168.1.1");
  } else {
    PORTHOLE_FUZZ_CHECK(parsed.error().code == porthole::Errc::internal);
    PORTHOLE_FUZZ_CHECK(parsed.error().message == parsed_text.error().message);
  }

  (void)ssdp::classify_target(text.substr(0, 512));
  check_msearch(text.substr(0, 512), static_cast<int>(size % 16) - 4);
  return 0;
}
