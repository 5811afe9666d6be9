#include "core/stun_servers.hpp"

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "codec/stun_codec.hpp"
#include "porthole/porthole.hpp"

namespace porthole {

std::vector<std::string> default_stun_servers() {
  if (const char* env = std::getenv("PORTHOLE_STUN"); env && *env) {
    std::vector<std::string> out;
    std::string item;
    // Commas and any white space separate entries, so a value from `$(cat file)` with
    // its trailing newline, or one entry a line, reads as typed.
    for (const char* p = env;; ++p) {
      if (*p == ',' || std::isspace(static_cast<unsigned char>(*p)) || *p == '\0') {
        if (!item.empty()) out.push_back(std::move(item));
        item.clear();
        if (*p == '\0') break;
      } else {
        item += *p;
      }
    }
    if (!out.empty()) return out;
  }
  // Public servers that answer Binding requests on UDP. Only Google's answers on 19302.
  return {"stun.l.google.com:19302", "stun.cloudflare.com:3478"};
}

namespace detail {

Result<std::vector<StunServerEntry>> configured_stun_servers(const Options& options) {
  const std::vector<std::string> names = options.stun_servers.empty() ? default_stun_servers()
                                                                      : options.stun_servers;
  if (names.empty()) return make_error(Errc::usage, "no STUN server configured");
  std::vector<StunServerEntry> out;
  for (const auto& name : names) {
    auto hp = parse_host_port(name, stun::kDefaultPort);
    if (!hp)
      // hp's message quotes the entry, cut to a readable length: a huge value is not
      // echoed whole.
      return make_error(Errc::usage, fmt::format("STUN server {}", hp.error().message));
    out.push_back({name, std::move(*hp)});
  }
  return out;
}

}  // namespace detail
}  // namespace porthole
