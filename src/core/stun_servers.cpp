#include <cstdlib>
#include <string>
#include <vector>

#include "porthole/porthole.hpp"

namespace porthole {

std::vector<std::string> default_stun_servers() {
  if (const char* env = std::getenv("PORTHOLE_STUN"); env && *env) {
    std::vector<std::string> out;
    std::string item;
    for (const char* p = env;; ++p) {
      if (*p == ',' || *p == ' ' || *p == '\0') {
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

}  // namespace porthole
