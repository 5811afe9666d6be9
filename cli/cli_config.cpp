#include "cli_config.hpp"

#include <cstdlib>
#include <fstream>
#include <string_view>
#include <sys/stat.h>

namespace porthole::cli {
namespace {

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string unquoted(std::string s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
    return s.substr(1, s.size() - 2);
  return s;
}

// The key a line of the file sets, as CLI11's ConfigBase::from_config reads it ("name =
// value", or a bare name, which it takes as a flag set to true), with its section
// prefixed ("open.lifetime"); empty for blank, comment and section lines.
std::string line_key(const std::string& raw, std::string& section) {
  std::string line = trimmed(raw);
  if (line.size() < 3) return {};  // CLI11 skips such short lines too
  if (line.front() == '[' && line.back() == ']') {
    section = line.substr(1, line.size() - 2);
    if (section.size() > 1 && section.front() == '[' && section.back() == ']')
      section = section.substr(1, section.size() - 2);
    section = trimmed(section);
    if (section == "default") section.clear();
    return {};
  }
  if (line.front() == ';' || line.front() == '#') return {};
  std::string name = line.substr(0, line.find('='));
  if (const auto hash = name.find('#'); hash != std::string::npos) name.erase(hash);
  name = unquoted(trimmed(name));
  return section.empty() ? name : section + "." + name;
}

// Whether `full` is "SECTION.KEY" (compared in place: no string is built per line).
bool is_section_key(std::string_view full, std::string_view section, std::string_view key) {
  return full.size() == section.size() + 1 + key.size() && full.starts_with(section) &&
         full[section.size()] == '.' && full.ends_with(key);
}

}  // namespace

std::vector<std::string> default_config_files() {
  std::vector<std::string> files;
  const char* sys = std::getenv("PORTHOLE_SYSTEM_CONFIG");
  const std::string system = sys != nullptr ? sys : "/etc/porthole/porthole.conf";
  if (!system.empty() && is_file(system)) files.push_back(system);
  std::string user_dir;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] == '/')
    user_dir = xdg;
  else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0')
    user_dir = std::string(home) + "/.config";
  if (!user_dir.empty()) {
    const std::string user = user_dir + "/porthole/porthole.conf";
    if (is_file(user)) files.push_back(user);
  }
  return files;
}

bool locate_config_key(const std::vector<std::string>& files, const std::string& key,
                       const std::string& section, ConfigLocation& where) {
  // The file read last wins (CLI11 reads them from the last one back and keeps the
  // first value it sees), so it is the one to blame.
  // CLI11 names a section it cannot place "SECTION.++" (its opening): find its header.
  const bool header = key.size() > 3 && key.compare(key.size() - 3, 3, ".++") == 0;
  const std::string header_of = header ? key.substr(0, key.size() - 3) : std::string();
  for (auto f = files.rbegin(); f != files.rend(); ++f) {
    std::ifstream in(*f);
    std::string raw;
    std::string current;
    int number = 0;
    while (std::getline(in, raw)) {
      ++number;
      const std::string before = current;
      const std::string full = line_key(raw, current);
      if (header && full.empty() && current == header_of && before != current) {
        where = {*f, number, header_of};
        return true;
      }
      if (full.empty()) continue;
      const bool dotted = key.find('.') != std::string::npos;
      const bool hit = dotted ? full == key
                              : full == key ||
                                    (!section.empty() && is_section_key(full, section, key));
      if (hit) {
        where.file = *f;
        where.line = number;
        const auto dot = full.rfind('.');
        where.section = dot == std::string::npos ? std::string() : full.substr(0, dot);
        return true;
      }
    }
  }
  return false;
}

}  // namespace porthole::cli
