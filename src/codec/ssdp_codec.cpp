#include "codec/ssdp_codec.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "codec/url_check.hpp"
#include "codec/ascii.hpp"

namespace porthole::detail::ssdp {
namespace {

Error bad(std::string message) {
  return make_error(Errc::internal, fmt::format("not an SSDP search response: {}", message));
}

// Stores a header value; a second, different value for the same header is ambiguous
// (which LOCATION would miniupnpc or a proxy pick?), so the datagram is refused.
bool store(std::string& slot, bool& seen, std::string_view value) {
  if (seen) return slot == value;
  slot = std::string(value);
  seen = true;
  return true;
}

}  // namespace

std::string build_msearch(std::string_view search_target, int mx_seconds) {
  int mx = std::clamp(mx_seconds, 1, 5);
  std::string st;
  st.reserve(search_target.size());
  for (char c : search_target)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) st.push_back(c);
  return fmt::format(
      "M-SEARCH * HTTP/1.1\r\n"
      "HOST: {}:{}\r\n"
      "MAN: \"ssdp:discover\"\r\n"
      "MX: {}\r\n"
      "ST: {}\r\n"
      "\r\n",
      kMulticastIp, kPort, mx, st);
}

Result<SearchResponse> parse_search_response(std::span<const std::uint8_t> datagram) {
  return parse_search_response(
      std::string_view(reinterpret_cast<const char*>(datagram.data()), datagram.size()));
}

Result<SearchResponse> parse_search_response(std::string_view datagram) {
  if (datagram.size() > kMaxDatagram)
    return bad(fmt::format("{} bytes, more than {}", datagram.size(), kMaxDatagram));

  SearchResponse out;
  bool seen_location = false, seen_st = false, seen_usn = false, seen_server = false;
  bool first = true;
  std::size_t pos = 0;
  while (pos < datagram.size()) {
    std::size_t nl = datagram.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? datagram.size() : nl;
    std::string_view line = datagram.substr(pos, end - pos);
    pos = nl == std::string_view::npos ? datagram.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLine)
      return bad(fmt::format("a line of {} bytes, more than {}", line.size(), kMaxLine));
    for (char ch : line) {
      auto c = static_cast<unsigned char>(ch);
      if ((c < 0x20 && c != '\t') || c == 0x7f) return bad("control byte in a line");
    }

    if (first) {
      // UDA 1.3.3: "HTTP/1.1 200 OK". The reason phrase is not checked.
      constexpr std::string_view kStatus = "HTTP/1.1 200";
      if (line.substr(0, kStatus.size()) != kStatus ||
          (line.size() > kStatus.size() && line[kStatus.size()] != ' '))
        return bad(fmt::format("status line '{}'", printable_excerpt(line, 80)));
      first = false;
      continue;
    }
    if (line.empty()) break;  // end of the header block; a response has no body
    if (line.front() == ' ' || line.front() == '\t')
      return bad("folded header line");  // obs-fold (RFC 7230 s3.2.4): not for SSDP
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || trim_blanks(line.substr(0, colon)).empty())
      return bad(fmt::format("header line '{}'", printable_excerpt(line, 80)));
    std::string_view name = trim_blanks(line.substr(0, colon));
    std::string_view value = trim_blanks(line.substr(colon + 1));
    bool consistent = true;
    if (ascii_iequals(name, "LOCATION"))
      consistent = store(out.location, seen_location, value);
    else if (ascii_iequals(name, "ST"))
      consistent = store(out.st, seen_st, value);
    else if (ascii_iequals(name, "USN"))
      consistent = store(out.usn, seen_usn, value);
    else if (ascii_iequals(name, "SERVER"))
      consistent = store(out.server, seen_server, value);
    if (!consistent)
      return bad(fmt::format("two different {} headers", printable_excerpt(name, 40)));
  }
  if (first) return bad("empty datagram");
  if (out.location.empty()) return bad("no LOCATION header");
  return out;
}

TargetKind classify_target(std::string_view st_or_usn) {
  std::string_view t = trim_blanks(st_or_usn);
  if (std::size_t sep = t.find("::"); sep != std::string_view::npos) t = t.substr(sep + 2);
  struct Known {
    std::string_view prefix;
    TargetKind kind;
  };
  static constexpr Known kKnown[] = {
      {"urn:schemas-upnp-org:device:InternetGatewayDevice:", TargetKind::igd_device},
      {"urn:schemas-upnp-org:service:WANIPConnection:", TargetKind::wan_ip_service},
      {"urn:schemas-upnp-org:service:WANPPPConnection:", TargetKind::wan_ppp_service},
      // The DSL Forum's names of the same (TR-064), which some routers answer with.
      {"urn:dslforum-org:device:InternetGatewayDevice:", TargetKind::igd_device},
      {"urn:dslforum-org:service:WANIPConnection:", TargetKind::wan_ip_service},
      {"urn:dslforum-org:service:WANPPPConnection:", TargetKind::wan_ppp_service},
  };
  for (const auto& k : kKnown) {
    if (!ascii_istarts_with(t, k.prefix)) continue;
    std::string_view version = t.substr(k.prefix.size());
    if (version == "1" || version == "2") return k.kind;
    return TargetKind::other;
  }
  return TargetKind::other;
}

bool denotes_igd(const SearchResponse& response) {
  if (!response.st.empty()) return classify_target(response.st) != TargetKind::other;
  return classify_target(response.usn) != TargetKind::other;
}

}  // namespace porthole::detail::ssdp
