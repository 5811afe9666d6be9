// What every command shares in printing: results on stdout (text for people, JSON with
// --json for scripts), diagnostics on stderr. Each command's own rendering lives in its
// cli/cmd_<name>.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <porthole/porthole.hpp>

#include "cli_args.hpp"

namespace porthole::cli {

// One mapping as the JSON of open, close, list and hold prints it.
nlohmann::json mapping_json(const Mapping& m);
// "7200 s (2 h)", "permanent".
std::string lifetime_text(std::uint32_t seconds);
// "203.0.113.2:8080", "?" for an unknown address.
std::string external_text(const Mapping& m);
// An address that may be unknown: its text in JSON, or null.
nlohmann::json ip_json(const std::optional<IpAddress>& ip);
// The same for text output: its text, or `unknown`.
std::string ip_text(const std::optional<IpAddress>& ip, std::string_view unknown);
// Indented JSON and a newline.
std::string dump(const nlohmann::json& j);
// {"code", "name", "protocol_code", "message"} of an error.
nlohmann::json error_json(const Error& error);
// With --json an error is also an object on stdout, so scripts always get JSON.
std::string render_error_json(const Error& error);

// Warnings on stderr, unless -q.
void print_warnings(const std::vector<std::string>& warnings, int verbosity);
// Reports `error` (JSON on stdout with --json, the message on stderr); its exit status.
int fail(const Error& error, bool as_json);

// The usual end of a command: the result rendered on stdout (unless -q), its warnings
// on stderr, exit 0; or the error and its exit status.
template <class T, class Render>
int report(const Result<T>& r, const Invocation& inv, Render render) {
  if (!r) return fail(r.error(), inv.json);
  if (inv.verbosity >= 0 || inv.json) fmt::print("{}", render(*r, inv.json));
  print_warnings(r->warnings, inv.verbosity);
  return 0;
}

}  // namespace porthole::cli
