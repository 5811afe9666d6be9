// Uses only the installed public headers and the exported target.
#include <cstdio>

#include <porthole/porthole.hpp>

int main() {
  auto spec = porthole::parse_port_spec("51820/udp");
  if (!spec || spec->port != 51820 || spec->transport != porthole::Transport::udp) return 1;
  auto bad = porthole::parse_port_spec("70000");
  if (bad || bad.error().code != porthole::Errc::usage) return 1;
  // A library call that reaches the protocol code, without sending anything: a usage
  // error is caught before any socket is opened.
  if (porthole::IpAddress::parse("not-an-address")) return 1;
  porthole::Options opts;
  auto v6 = porthole::IpAddress::parse("2001:db8::1");  // parsed, but not an IPv4 gateway
  if (!v6) return 1;
  opts.gateway = *v6;
  porthole::OpenRequest req;
  req.port = *spec;
  auto r = porthole::open(opts, req);
  if (r || r.error().code != porthole::Errc::usage) return 1;
  std::puts("consumer ok");
  return 0;
}
