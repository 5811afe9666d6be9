// porthole::serve: the STUN server (UDP, with the rendezvous on its primary socket) and
// the connect-back checks (TCP) on one reactor in the calling thread; a local failure
// of either stops both.
#include <optional>

#include <fmt/format.h>

#include "net/reactor.hpp"
#include "porthole/verify.hpp"
#include "proto/connect_back_server.hpp"
#include "proto/rendezvous_server.hpp"
#include "proto/stun_server.hpp"

namespace porthole {

Status serve(const ServeOptions& options, int stop_fd) {
  if (stop_fd < 0) return make_error(Errc::usage, "serve needs a stop file descriptor");
  detail::StunServerConfig stun;
  stun.listen = {options.listen_ip, options.listen_port};
  if (options.alt_ip) stun.alt_listen = detail::stun::Endpoint{*options.alt_ip, options.alt_port};
  stun.log = options.log;
  auto stun_server = detail::StunServer::open(stun);
  if (!stun_server) return stun_server.error();

  detail::ConnectBackConfig cb;
  cb.listen_ip = options.listen_ip;
  // The same port number as the STUN server (which may have been chosen by the kernel).
  cb.port = stun_server->addresses().front().port;
  if (!options.listen_ip.is_unspecified()) cb.source_ip = options.listen_ip;
  cb.log = options.log;
  auto cb_server = detail::ConnectBackServer::open(cb);
  if (!cb_server) return cb_server.error();

  std::optional<detail::RendezvousResponder> rendezvous;
  if (options.rendezvous) {
    detail::RendezvousConfig rc;
    rc.max_peers = options.rendezvous_max_peers;
    rc.log = options.log;
    rendezvous.emplace(rc);
    detail::attach_rendezvous(*stun_server, *rendezvous, options.log);
    if (options.log)
      options.log(LogLevel::info,
                  fmt::format("rendezvous on {} (at most {} peers online)",
                              stun_server->addresses().front().to_string(), rc.max_peers));
  }

  detail::Reactor reactor;
  stun_server->attach(reactor);
  cb_server->attach(reactor);
  reactor.stop_on(stop_fd);
  Status st = reactor.run();
  cb_server->detach();
  stun_server->detach();
  if (rendezvous && options.log) {
    const auto& c = rendezvous->counters();
    options.log(LogLevel::info,
                fmt::format("rendezvous: {} received, {} registered, {} forwarded, {} refused, "
                            "{} dropped, {} rate-limited, {} online",
                            c.received, c.registered, c.forwarded, c.refused, c.dropped,
                            c.rate_limited, rendezvous->online()));
  }
  if (!st) return st;
  return stun_server->failure();
}

}  // namespace porthole
