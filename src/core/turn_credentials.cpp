// load_turn_credentials (include/porthole/punch.hpp): the $PORTHOLE_TURN file, checked
// like the identity key file (src/core/identity.cpp): ours, regular, mode 0600 or less.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "porthole/punch.hpp"

namespace porthole {
namespace {

constexpr std::size_t kMaxCredentialsFile = 4096;

Error credentials_error(const std::string& file, const std::string& what) {
  return make_error(Errc::state, fmt::format("TURN credentials file {} {}", file, what));
}

std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

}  // namespace

Result<TurnServer> load_turn_credentials(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP) return credentials_error(file, "is a symbolic link; refusing to follow it");
    return credentials_error(file, fmt::format("cannot be opened: {}", std::strerror(errno)));
  }
  OwnedFd owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return credentials_error(file, fmt::format("cannot be read: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return credentials_error(file, "is not a regular file");
  if (st.st_uid != ::geteuid())
    return credentials_error(file, fmt::format("is owned by uid {}, not by us (uid {})", st.st_uid,
                                               ::geteuid()));
  if (st.st_mode & 077)
    return credentials_error(
        file, fmt::format("is accessible by group or others (mode {:04o}); it holds a "
                          "password: chmod 600 it",
                          st.st_mode & 07777));
  std::string text;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return credentials_error(file, fmt::format("cannot be read: {}", std::strerror(errno)));
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxCredentialsFile)
      return credentials_error(file, "is longer than 4 KiB: not a credentials file");
  }
  TurnServer out;
  std::size_t line_no = 0;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto nl = text.find('\n', at);
    std::string line = trimmed(
        text.substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    at = nl == std::string::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      return credentials_error(file, fmt::format("line {}: expected KEY=VALUE", line_no));
    const std::string key = trimmed(line.substr(0, eq));
    std::string value = trimmed(line.substr(eq + 1));
    if (key == "user")
      out.user = std::move(value);
    else if (key == "password")
      out.password = std::move(value);
    else if (key == "server")
      out.server = std::move(value);
    else
      return credentials_error(file,
                               fmt::format("line {}: unknown key \"{}\" (user, password, server)",
                                           line_no, key.substr(0, 32)));
  }
  if (out.user.empty() || out.password.empty())
    return credentials_error(file, "needs both user=... and password=...");
  return out;
}

}  // namespace porthole
