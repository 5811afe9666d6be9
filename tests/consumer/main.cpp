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
  porthole::Options opts;
  opts.gateway = "not-an-address";
  porthole::OpenRequest req;
  req.port = *spec;
  auto r = porthole::open(opts, req);
  if (r || r.error().code != porthole::Errc::usage) return 1;
  std::puts("consumer ok");
  return 0;
}
