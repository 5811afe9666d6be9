// The config files (porthole(1) FILES): which are read, and where in them a bad key or
// value is. CLI11 reads them (App::set_config, TOML or INI); this file only finds them
// and, for an error, the file and line it came from.
#pragma once

#include <string>
#include <vector>

namespace porthole::cli {

// The system file ($PORTHOLE_SYSTEM_CONFIG, for tests, else /etc/porthole/porthole.conf)
// and the user's ($XDG_CONFIG_HOME/porthole/porthole.conf, XDG_CONFIG_HOME defaulting to
// ~/.config), those that exist, in the order they are read (a later one wins).
std::vector<std::string> default_config_files();

// A config error located: "FILE:LINE: " in front of what to say, or empty when no file
// in `files` (lowest priority first) holds the key. `key` is the option's long name
// without dashes ("lifetime") or CLI11's dotted full name ("open.lifetime");
// `section` the subcommand the option belongs to ("" for the global options), used
// when `key` has no dots.
struct ConfigLocation {
  std::string file;
  int line = 0;
  std::string section;  // where the key was found: "" (top level) or "open"
};
bool locate_config_key(const std::vector<std::string>& files, const std::string& key,
                       const std::string& section, ConfigLocation& where);

}  // namespace porthole::cli
