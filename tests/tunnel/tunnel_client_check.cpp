// TunnelClient (include/porthole/tunnel.hpp) from a program of its own, for the lab
// scenario tunnel_library: opens a stream to an exposed TCP port and sends an HTTP GET,
// opens a datagram flow to an exposed UDP port and sends numbered datagrams until each
// is answered, opens and closes many flows (the tunnel's ends of them must be closed too),
// and asks for a port that is not exposed. One JSON line per step:
//   tunnel_client_check PEER_ID RENDEZVOUS STUN STATE_DIR TCP_PORT UDP_PORT OTHER_PORT
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <porthole/tunnel.hpp>

namespace {

void line(const nlohmann::json& j) {
  std::puts(j.dump().c_str());
  std::fflush(stdout);
}

std::uint16_t port_arg(const char* text) { return static_cast<std::uint16_t>(std::atoi(text)); }

// The HTTP answer's bytes, up to the service's close.
nlohmann::json http_get(porthole::TunnelClient& client, std::uint16_t port) {
  auto fd = client.open_stream(port);
  if (!fd) return {{"step", "stream"}, {"error", fd.error().message}};
  const std::string request = "GET / HTTP/1.0\r\nHost: lab\r\n\r\n";
  if (::send(fd->get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size()))
    return {{"step", "stream"}, {"error", "send"}};
  ::shutdown(fd->get(), SHUT_WR);
  std::string answer;
  char buf[4096];
  for (;;) {
    pollfd p{fd->get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    ssize_t n = ::recv(fd->get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  return {{"step", "stream"},
          {"bytes", answer.size()},
          {"status_line", answer.substr(0, answer.find("\r\n"))}};
}

// Datagrams "n-<i>" until each is answered (resent: UDP may drop), at most 5 s each.
nlohmann::json datagrams(porthole::TunnelClient& client, std::uint16_t port, int count) {
  auto fd = client.open_datagrams(port);
  if (!fd) return {{"step", "datagrams"}, {"error", fd.error().message}};
  int answered = 0;
  nlohmann::json answers = nlohmann::json::array();
  for (int i = 0; i < count; ++i) {
    const std::string out = fmt::format("n-{}", i);
    bool got = false;
    for (int tries = 0; tries < 25 && !got; ++tries) {
      ::send(fd->get(), out.data(), out.size(), MSG_NOSIGNAL);
      pollfd p{fd->get(), POLLIN, 0};
      while (::poll(&p, 1, 200) > 0) {
        char buf[2048];
        ssize_t n = ::recv(fd->get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        std::string in(buf, static_cast<std::size_t>(n));
        if (in.find(out) != std::string::npos) {
          got = true;
          if (answers.size() < 2) answers.push_back(in);
          break;
        }
      }
    }
    if (got) ++answered;
  }
  return {{"step", "datagrams"}, {"sent", count}, {"answered", answered}, {"sample", answers}};
}

// Descriptors this process has open (the tunnel thread's included).
std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// `count` flows opened, each used once and closed: the tunnel closes its ends as well,
// so the process's descriptors come back to what they were (within 10 s).
nlohmann::json flows_reaped(porthole::TunnelClient& client, std::uint16_t port, int count) {
  const std::size_t before = open_fds();
  for (int i = 0; i < count; ++i) {
    auto fd = client.open_datagrams(port);
    if (!fd) return {{"step", "reaped"}, {"error", fd.error().message}};
    const std::string out = fmt::format("r-{}", i);
    ::send(fd->get(), out.data(), out.size(), MSG_NOSIGNAL);
  }  // each closed here
  std::size_t after = open_fds();
  for (int tries = 0; tries < 100 && after > before; ++tries) {
    ::usleep(100000);
    after = open_fds();
  }
  return {{"step", "reaped"}, {"flows", count}, {"fds_before", before}, {"fds_after", after}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr,
                 "usage: %s PEER_ID RENDEZVOUS STUN STATE_DIR TCP_PORT UDP_PORT OTHER_PORT\n",
                 argv[0]);
    return 2;
  }
  auto peer = porthole::parse_peer_id(argv[1]);
  if (!peer) {
    line({{"step", "connect"}, {"error", peer.error().message}});
    return 2;
  }
  porthole::ConnectOptions options;
  options.peer = *peer;
  options.punch.rendezvous = argv[2];
  options.punch.stun_servers = {argv[3]};
  options.punch.state_dir = argv[4];
  options.punch.map = false;
  auto client = porthole::TunnelClient::connect(options);
  if (!client) {
    line({{"step", "connect"},
          {"error", client.error().message},
          {"code", static_cast<int>(client.error().code)}});
    return static_cast<int>(client.error().code);
  }
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : (*client)->exposed()) ports.push_back(porthole::to_string(p));
  line({{"step", "connect"}, {"connected", (*client)->connected()}, {"exposed", ports}});
  line(http_get(**client, port_arg(argv[5])));
  line(datagrams(**client, port_arg(argv[6]), 5));
  line(flows_reaped(**client, port_arg(argv[6]), 200));
  auto other = (*client)->open_stream(port_arg(argv[7]));
  line({{"step", "not-exposed"},
        {"refused", !other && other.error().code == porthole::Errc::peer_refused},
        {"error", other ? "" : other.error().message}});
  (*client)->close();
  line({{"step", "closed"}, {"connected", (*client)->connected()}});
  return 0;
}
