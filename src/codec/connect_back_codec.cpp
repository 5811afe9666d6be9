// The connect-back control protocol: one line each way (see the header).
#include "codec/connect_back_codec.hpp"

#include <array>
#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "porthole/types.hpp"

namespace porthole::detail::connect_back {
namespace {

constexpr std::array<std::pair<Outcome, std::string_view>, 7> kOutcomes = {{
    {Outcome::connected, "connected"},
    {Outcome::refused, "refused"},
    {Outcome::timeout, "timeout"},
    {Outcome::unreachable, "unreachable"},
    {Outcome::denied, "denied"},
    {Outcome::busy, "busy"},
    {Outcome::bad_request, "bad-request"},
}};

Error bad(std::string message) { return make_error(Errc::usage, std::move(message)); }

// What goes on the wire and into logs: printable ASCII only, bounded.
std::string sanitise(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

// The line without its terminator; an error for bytes that cannot be in one.
Result<std::string_view> strip_line(std::string_view line) {
  if (line.size() > kMaxLine) return bad(fmt::format("line longer than {} bytes", kMaxLine));
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  for (char c : line)
    if (c < 0x20 || c >= 0x7f) return bad("a control or non-ASCII byte in the line");
  return line;
}

// Splits on single spaces; at most `max` fields, the last one keeps the rest.
std::vector<std::string_view> fields(std::string_view line, std::size_t max) {
  std::vector<std::string_view> out;
  while (!line.empty() && out.size() + 1 < max) {
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos) break;
    out.push_back(line.substr(0, sp));
    line.remove_prefix(sp + 1);
  }
  out.push_back(line);
  return out;
}

Result<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text.size() > 5 || ec != std::errc{} || end != text.data() + text.size() ||
      text[0] == '0' || value == 0 || value > 65535)
    return bad(fmt::format("port '{}' is not 1..65535", sanitise(text, 8)));
  return static_cast<std::uint16_t>(value);
}

Status check_token(std::string_view token) {
  if (token.size() < kMinToken || token.size() > kMaxToken)
    return bad(fmt::format("token of {} characters: {} to {} hex digits", token.size(), kMinToken,
                           kMaxToken));
  for (char c : token)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return bad("the token must be lowercase hex digits");
  return ok_status();
}

// An address field: IPv4 text, parsed once here.
Result<IpAddress> ipv4_field(std::string_view text) {
  auto ip = IpAddress::parse(text);
  if (!ip || !ip->is_v4())
    return bad(fmt::format("'{}' is not an IPv4 address", sanitise(text, 40)));
  return *ip;
}

}  // namespace

const char* outcome_name(Outcome o) noexcept {
  for (const auto& [outcome, name] : kOutcomes)
    if (outcome == o) return name.data();
  return "bad-request";
}

Result<std::string> encode_request(const Request& r) {
  if (!r.ip.is_v4()) return bad(fmt::format("'{}' is not an IPv4 address", r.ip));
  if (r.port == 0) return bad("port 0 is not a port");
  if (auto st = check_token(r.token); !st) return st.error();
  return fmt::format("{} CONNECT {} {} {}\n", kVersion, r.ip, r.port, r.token);
}

std::string encode_reply(const Reply& r) {
  const std::string detail = sanitise(r.detail, kMaxDetail);
  const IpAddress ip = r.observed_ip.is_v4() ? r.observed_ip : IpAddress();
  return fmt::format("{} {} {} {}\n", kVersion, outcome_name(r.outcome), ip,
                     detail.empty() ? std::string_view("-") : std::string_view(detail));
}

Result<Request> decode_request(std::string_view raw) {
  auto line = strip_line(raw);
  if (!line) return line.error();
  const auto f = fields(*line, 6);
  if (f.size() != 5 || f[0] != kVersion || f[1] != "CONNECT")
    return bad(fmt::format("expected '{} CONNECT IPV4 PORT TOKEN'", kVersion));
  Request r;
  auto ip = ipv4_field(f[2]);
  if (!ip) return ip.error();
  r.ip = *ip;
  auto port = parse_port(f[3]);
  if (!port) return port.error();
  r.port = *port;
  if (auto st = check_token(f[4]); !st) return st.error();
  r.token = std::string(f[4]);
  return r;
}

Result<Reply> decode_reply(std::string_view raw) {
  auto line = strip_line(raw);
  if (!line) return line.error();
  const auto f = fields(*line, 4);
  if (f.size() != 4 || f[0] != kVersion)
    return bad(fmt::format("expected '{} OUTCOME IPV4 DETAIL'", kVersion));
  Reply r;
  bool known = false;
  for (const auto& [outcome, name] : kOutcomes)
    if (f[1] == name) {
      r.outcome = outcome;
      known = true;
    }
  if (!known) return bad(fmt::format("unknown outcome '{}'", sanitise(f[1], 20)));
  auto ip = ipv4_field(f[2]);
  if (!ip) return ip.error();
  r.observed_ip = *ip;
  if (f[3].size() > kMaxDetail) return bad("detail too long");
  r.detail = f[3] == "-" ? std::string() : std::string(f[3]);
  return r;
}

std::optional<std::size_t> line_end(std::string_view buffer) noexcept {
  const auto nl = buffer.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  return nl;
}

std::string token_line(const Request& request) { return request.token + "\n"; }

}  // namespace porthole::detail::connect_back
