#include "cli_output.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <porthole/text.hpp>

namespace porthole::cli {

using nlohmann::json;

// The description of a UPnP row is the router's text, set by any LAN host: invalid
// UTF-8 becomes U+FFFD, so the JSON stays valid. (The addresses are parsed ones.)
json mapping_json(const Mapping& m) {
  return json{{"protocol", protocol_name(m.protocol)},
              {"transport", transport_name(m.transport)},
              {"internal_ip", m.internal_ip.to_string()},
              {"internal_port", m.internal_port},
              {"external_ip", ip_json(m.external_ip)},
              {"external_port", m.external_port},
              {"lifetime", m.lifetime},
              {"expires_at", m.expires_at},
              {"description", replace_invalid_utf8(m.description)}};
}

std::string lifetime_text(std::uint32_t s) {
  if (s == 0) return "permanent";
  if (s % 3600 == 0) return fmt::format("{} s ({} h)", s, s / 3600);
  return fmt::format("{} s", s);
}

// Text output escapes what came from the router (escape_text): no raw ESC or newline
// reaches the terminal.
std::string external_text(const Mapping& m) {
  return fmt::format("{}:{}", ip_text(m.external_ip, "?"), m.external_port);
}

json ip_json(const std::optional<IpAddress>& ip) {
  return ip ? json(ip->to_string()) : json(nullptr);
}

std::string ip_text(const std::optional<IpAddress>& ip, std::string_view unknown) {
  return ip ? ip->to_string() : std::string(unknown);
}

// Any other string that is not UTF-8 (a message quoting the router) gets U+FFFD too,
// rather than an exception from the JSON writer.
std::string dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

json error_json(const Error& e) {
  return {{"code", static_cast<int>(e.code)},
          {"name", errc_name(e.code)},
          {"protocol_code", e.protocol_code},
          {"message", e.message}};
}

std::string render_error_json(const Error& e) { return dump({{"error", error_json(e)}}); }

void print_warnings(const std::vector<std::string>& warnings, int verbosity) {
  if (verbosity < 0) return;
  for (const auto& w : warnings) fmt::print(stderr, "porthole: warning: {}\n", w);
}

int fail(const Error& e, bool as_json) {
  if (as_json) fmt::print("{}", render_error_json(e));
  fmt::print(stderr, "porthole: {}\n", e.message);
  return static_cast<int>(e.code);
}

}  // namespace porthole::cli
