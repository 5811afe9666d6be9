#include <cstdlib>
#include <string>
#include <unistd.h>

#include "porthole/porthole.hpp"

namespace porthole {

std::string default_state_dir() {
  if (const char* dir = std::getenv("PORTHOLE_STATE_DIR"); dir && *dir) return dir;
  if (::geteuid() == 0) return "/var/lib/porthole";
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/porthole";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.local/state/porthole";
  return "/tmp/porthole-" + std::to_string(::geteuid());
}

}  // namespace porthole
