#include "net/tcp_table.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace porthole::detail {
namespace {

constexpr unsigned kListen = 0x0A;  // TCP_LISTEN in the kernel's state numbering

bool hex(std::string_view text, unsigned long& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

// "0164A8C0:A028": the address is the in_addr's 32 bits printed in host byte order.
bool endpoint(std::string_view text, std::string& ip, std::uint16_t& port) {
  const auto colon = text.find(':');
  unsigned long a = 0;
  unsigned long p = 0;
  if (colon != 8 || !hex(text.substr(0, 8), a) || !hex(text.substr(9), p) || p > 65535)
    return false;
  in_addr addr{};
  const auto v = static_cast<std::uint32_t>(a);
  std::memcpy(&addr, &v, sizeof(v));
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr, buf, sizeof(buf));
  ip = buf;
  port = static_cast<std::uint16_t>(p);
  return true;
}

}  // namespace

bool tcp_connection_listed_in(std::string_view table, std::uint16_t local_port,
                              const std::string& remote_ip, std::uint16_t remote_port) {
  std::istringstream in{std::string(table)};
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string slot, local, remote, state;
    if (!(words >> slot >> local >> remote >> state)) continue;
    std::string lip, rip;
    std::uint16_t lport = 0, rport = 0;
    unsigned long st = 0;
    if (!endpoint(local, lip, lport) || !endpoint(remote, rip, rport) || !hex(state, st)) continue;
    if (st != kListen && lport == local_port && rip == remote_ip && rport == remote_port)
      return true;
  }
  return false;
}

bool tcp_connection_listed(std::uint16_t local_port, const std::string& remote_ip,
                           std::uint16_t remote_port) {
  std::ifstream f("/proc/net/tcp");
  if (!f) return false;
  std::stringstream text;
  text << f.rdbuf();
  return tcp_connection_listed_in(text.str(), local_port, remote_ip, remote_port);
}

}  // namespace porthole::detail
