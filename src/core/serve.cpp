// porthole::serve: the STUN server (UDP) and the connect-back checks (TCP), each in its
// own poll loop; either failing stops both.
#include <thread>

#include <fmt/format.h>

#include "porthole/verify.hpp"
#include "proto/connect_back_server.hpp"
#include "proto/stun_server.hpp"

namespace porthole {

Status serve(const ServeOptions& options, const std::atomic<bool>& stop) {
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
  cb.source_ip = options.listen_ip == "0.0.0.0" ? std::string() : options.listen_ip;
  cb.log = options.log;
  auto cb_server = detail::ConnectBackServer::open(cb);
  if (!cb_server) return cb_server.error();

  std::atomic<bool> both_stop{false};
  Status cb_status = ok_status();
  std::thread cb_thread([&] {
    cb_status = cb_server->serve(both_stop);
    both_stop = true;
  });
  // Both loops watch both_stop: the caller's stop, or the other loop's failure.
  std::thread relay([&] {
    while (!stop.load() && !both_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds{50});
    both_stop = true;
  });
  Status stun_status = stun_server->serve(both_stop);
  both_stop = true;
  relay.join();
  cb_thread.join();
  if (!stun_status) return stun_status;
  return cb_status;
}

}  // namespace porthole
