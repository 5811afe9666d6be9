#include "cli_output.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace porthole::cli {

using nlohmann::json;

json mapping_json(const Mapping& m) {
  return json{{"protocol", protocol_name(m.protocol)},
              {"transport", transport_name(m.transport)},
              {"internal_ip", m.internal_ip},
              {"internal_port", m.internal_port},
              {"external_ip", m.external_ip.empty() ? json(nullptr) : json(m.external_ip)},
              {"external_port", m.external_port},
              {"lifetime", m.lifetime},
              {"expires_at", m.expires_at},
              {"description", m.description}};
}

std::string lifetime_text(std::uint32_t s) {
  if (s == 0) return "permanent";
  if (s % 3600 == 0) return fmt::format("{} s ({} h)", s, s / 3600);
  return fmt::format("{} s", s);
}

std::string external_text(const Mapping& m) {
  return fmt::format("{}:{}", m.external_ip.empty() ? "?" : m.external_ip, m.external_port);
}

std::string dump(const json& j) { return j.dump(2) + "\n"; }

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
