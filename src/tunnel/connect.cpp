// porthole::connect_tunnel() (include/porthole/tunnel.hpp): the local listeners are
// bound first (a port in use fails before anything is sent), then punch() finds the
// path and hands over its connected UDP socket, on which a QUIC client connection
// pinned to the peer's ID runs (one reactor, this thread). Once the exposed-port list
// arrived and every forward's port is in it, the listeners are served: each accepted
// TCP connection becomes one stream, each local UDP source one flow of datagrams.
//
// A path that breaks (QUIC's idle timeout, the peer closing, an ICMP error on the
// socket) is reported and punched again through the rendezvous: a new socket and a new
// QUIC connection, the listeners kept.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "net/bound_udp_socket.hpp"
#include "net/reactor.hpp"
#include "net/tcp_socket.hpp"
#include "net/udp_batch.hpp"
#include "net/udp_socket.hpp"
#include "porthole/tunnel.hpp"
#include "tunnel/quic_connection.hpp"
#include "tunnel/tunnel_link.hpp"

namespace porthole {
namespace {

// Whether the other end of a socketpair is closed (POLLHUP / POLLRDHUP), not waiting.
bool peer_hung_up(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP)) != 0;
}

using detail::Clock;
using std::chrono::milliseconds;

// Between punches that found no path after a break.
constexpr milliseconds kRepunchPause{2000};

struct Listener {
  Forward forward;
  detail::TcpSocket tcp;
  detail::UdpSocket udp;
  int fd() const { return forward.proto == TunnelProto::tcp ? tcp.fd() : udp.fd(); }
};

std::string forward_text(const Forward& f) {
  return fmt::format("{}:{}:{}{}", f.bind.to_string(), f.local, f.remote,
                     f.proto == TunnelProto::udp ? "/udp" : "");
}

}  // namespace

// What a TunnelClient hands to its connector's thread: local ends to relay, and what it
// learnt (the exposed ports), under one mutex; `wake` is an eventfd the reactor watches.
struct TunnelClientInbox {
  struct Local {
    OwnedFd fd;  // our end of a socketpair: SOCK_STREAM for a stream, SOCK_SEQPACKET for a flow
    std::uint16_t port = 0;
    TunnelProto proto = TunnelProto::tcp;
  };
  std::mutex mutex;
  std::vector<Local> pending;
  std::vector<ExposedPort> exposed;
  bool connected = false;
  bool finished = false;
  // Notified (after the mutex is released) whenever connected or finished changes.
  std::condition_variable changed;
  OwnedFd wake;
};

namespace {

class Connector {
 public:
  Connector(const ConnectOptions& options, Identity identity, int stop_fd,
            const TunnelEventFn& on_event, PunchReport* report)
      : options_(options),
        identity_(std::move(identity)),
        stop_fd_(stop_fd),
        on_event_(on_event),
        report_(report) {}

  Status run();
  // Library mode (TunnelClient): no listeners; local ends arrive through the inbox.
  void set_inbox(TunnelClientInbox* inbox) { inbox_ = inbox; }

 private:
  void log(LogLevel level, const std::string& text) const {
    if (options_.punch.log) options_.punch.log(level, text);
  }
  void emit(const TunnelEvent& e) const {
    if (on_event_) on_event_(e);
  }
  Status bind_listeners();
  // Punches and makes the QUIC connection; the result of its handshake comes later.
  Status start_path();
  void on_socket_readable();
  void on_port_list(const std::vector<ExposedPort>& ports);
  void on_closed(const Error& error, bool by_peer, std::uint64_t app_code);
  void on_listener(std::size_t index);
  void on_inbox();
  void on_library_flow(std::size_t index);
  void drop_path();
  void finish(std::optional<Error> error) {
    if (!outcome_) outcome_ = std::move(error);
    done_ = true;
    reactor_.stop();
  }

  const ConnectOptions& options_;
  Identity identity_;
  int stop_fd_;
  const TunnelEventFn& on_event_;
  PunchReport* report_;

  detail::Reactor reactor_;
  std::vector<Listener> listeners_;
  bool listening_ = false;
  OwnedFd socket_;
  std::optional<PunchResult> punched_;
  std::unique_ptr<detail::TunnelLink> link_;
  // Whether the tunnel can carry a new connection or datagram now.
  bool link_up() const { return link_ && link_->established() && !link_->closed(); }
  std::unique_ptr<detail::UdpBatch> rx_;  // receives on a UDP path (not a relayed one)
  std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(65536);  // one per read, reused
  std::vector<std::unique_ptr<detail::TunnelLink>> retired_;
  std::string strategy_;       // of the punch that found the path
  bool reconnecting_ = false;  // the path broke: the next connection is "reconnected"
  bool done_ = false;
  std::optional<Error> outcome_;
  Clock::time_point connect_started_{};
  detail::Reactor::TimerId handshake_timer_ = 0;
  TunnelClientInbox* inbox_ = nullptr;
  struct LibraryFlow {
    OwnedFd fd;
    std::uint16_t port = 0;
  };
  std::vector<LibraryFlow> library_flows_;
};

Status Connector::bind_listeners() {
  for (const auto& f : options_.forwards) {
    Listener l;
    l.forward = f;
    if (f.proto == TunnelProto::tcp) {
      auto s = detail::tcp_listen(f.bind.to_string(), f.local, 64);
      if (!s)
        return make_error(Errc::usage,
                          fmt::format("-L {}: cannot listen on {}:{}: {}", forward_text(f),
                                      f.bind.to_string(), f.local, s.error().message));
      l.tcp = std::move(*s);
    } else {
      auto s = detail::open_bound_udp_socket(f.bind.to_string(), f.local);
      if (!s)
        return make_error(Errc::usage,
                          fmt::format("-L {}: cannot bind UDP {}:{}: {}", forward_text(f),
                                      f.bind.to_string(), f.local, s.error().message));
      l.udp = std::move(*s);
    }
    listeners_.push_back(std::move(l));
  }
  return ok_status();
}

void Connector::on_listener(std::size_t index) {
  Listener& l = listeners_[index];
  if (l.forward.proto == TunnelProto::tcp) {
    for (;;) {
      auto conn = detail::tcp_accept(l.tcp);
      if (!conn.valid()) break;
      // Between paths a connection cannot be carried: it is closed, the program retries.
      if (link_up()) link_->add_tcp(std::move(conn), l.forward.remote);
    }
    return;
  }
  auto& buf = buffer_;
  for (;;) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    ssize_t n = ::recvfrom(l.udp.fd(), buf.data(), buf.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&sa), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto from = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa), len);
    if (!from || !link_ || link_->closed()) continue;
    link_->on_local_udp(l.udp.fd(), l.forward.remote, *from,
                        std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)));
  }
}

void Connector::on_port_list(const std::vector<ExposedPort>& ports) {
  for (const auto& f : options_.forwards) {
    const ExposedPort want{f.remote, f.proto};
    if (std::find(ports.begin(), ports.end(), want) == ports.end()) {
      finish(make_error(Errc::peer_refused,
                        fmt::format("-L {}: {} does not expose port {}", forward_text(f),
                                    options_.peer.to_string(), to_string(want))));
      return;
    }
  }
  if (handshake_timer_ != 0) {
    reactor_.cancel(handshake_timer_);
    handshake_timer_ = 0;
  }
  TunnelEvent c;
  c.type = reconnecting_ ? TunnelEventType::reconnected : TunnelEventType::connected;
  c.peer_id = options_.peer.to_string();
  c.path = path_kind_name(punched_->path);
  c.strategy = strategy_;
  c.peer = punched_->peer;
  c.elapsed = std::chrono::duration_cast<milliseconds>(reactor_.now() - connect_started_);
  emit(c);
  reconnecting_ = false;
  if (inbox_) {
    {
      std::lock_guard lock(inbox_->mutex);
      inbox_->exposed = ports;
      inbox_->connected = true;
    }
    inbox_->changed.notify_all();
  }
  if (listening_) return;
  listening_ = true;
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    TunnelEvent e;
    e.type = TunnelEventType::listening;
    e.local = Endpoint{listeners_[i].forward.bind, listeners_[i].forward.local};
    e.remote_port = listeners_[i].forward.remote;
    e.proto = listeners_[i].forward.proto;
    emit(e);
    reactor_.watch(listeners_[i].fd(), true, false, [this, i](bool, bool) { on_listener(i); });
  }
}

void Connector::drop_path() {
  if (handshake_timer_ != 0) {
    reactor_.cancel(handshake_timer_);
    handshake_timer_ = 0;
  }
  if (socket_.valid()) reactor_.unwatch(socket_.get());
  // The link may be the one calling: it goes at the next turn, not under its own feet.
  if (link_) retired_.push_back(std::move(link_));
  reactor_.add_timer(reactor_.now(), [this] { retired_.clear(); });
  socket_ = OwnedFd();
  if (punched_ && punched_->mapping) {
    if (auto st = release_punch_mapping(options_.punch, *punched_->mapping); !st)
      log(LogLevel::warning, "could not remove the gateway mapping: " + st.error().message);
  }
  punched_.reset();
}

void Connector::on_closed(const Error& error, bool by_peer, std::uint64_t app_code) {
  if (!listening_) {
    // The first connection never came up: that is the answer.
    // Refused by the peer: our certificate proves our key, so what it refused is our
    // ID (a TLS alert, RFC 9001 s4.8, or our application close code).
    if (by_peer && (app_code == detail::kQuicCloseNotAllowed ||
                    (error.code == Errc::peer_refused && app_code == 0)))
      finish(
          make_error(Errc::peer_refused, fmt::format("{} refused us: our ID {} is not allowed ({})",
                                                     options_.peer.to_string(),
                                                     identity_.id().to_string(), error.message)));
    else if (error.code == Errc::peer_refused)
      finish(make_error(Errc::peer_refused, error.message));
    else
      finish(
          make_error(Errc::punch_failed,
                     fmt::format("no tunnel to {}: {}", options_.peer.to_string(),
                                 error.message.empty() ? "the connection closed" : error.message)));
    return;
  }
  if (error.code == Errc::peer_refused || (by_peer && app_code == detail::kQuicCloseNotAllowed)) {
    finish(make_error(Errc::peer_refused,
                      fmt::format("{} refused us: {}", options_.peer.to_string(), error.message)));
    return;
  }
  std::string reason = error.code == Errc::timeout ? "idle timeout"
                       : by_peer                   ? "closed by the peer"
                                                   : error.message;
  if (reason.empty()) reason = "the connection closed";
  if (!reconnecting_) {
    TunnelEvent e;
    e.type = TunnelEventType::path_lost;
    e.reason = reason;
    emit(e);
  }
  reconnecting_ = true;
  if (inbox_) {
    std::lock_guard lock(inbox_->mutex);
    inbox_->connected = false;  // until on_port_list of the next connection
  }
  drop_path();
  // Punch again from the loop (punch() blocks: the listeners wait meanwhile).
  reactor_.add_timer(reactor_.now(), [this] {
    if (done_) return;
    if (auto st = start_path(); !st) {
      if (st.error().code == Errc::usage || st.error().code == Errc::state ||
          st.error().code == Errc::peer_refused) {
        finish(st.error());
        return;
      }
      if (reactor_.stopping()) return;
      log(LogLevel::info, "no path yet: " + st.error().message);
      reactor_.add_timer_in(kRepunchPause, [this] {
        if (!done_ && !link_) on_closed(make_error(Errc::punch_failed, "retry"), false, 0);
      });
    }
  });
}

void Connector::on_socket_readable() {
  if (rx_) {
    // A UDP path: recvmmsg(2) batches, until the socket is drained.
    for (;;) {
      auto n = rx_->receive_each([this](std::span<const std::uint8_t> bytes, const Endpoint&) {
        if (link_) link_->on_datagram(bytes, punched_->peer);
      });
      if (!n) log(LogLevel::debug, "tunnel socket: " + n.error().message);
      if (!n || *n == 0 || !link_ || rx_->drained()) return;
    }
  }
  auto& buf = buffer_;
  for (;;) {
    ssize_t n = ::recv(socket_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // ICMP errors on the connected socket (port or host unreachable): the path is
      // gone if they go on; QUIC's idle timeout decides, this only tells -v.
      log(LogLevel::debug, fmt::format("tunnel socket: {}", std::strerror(errno)));
      continue;
    }
    if (!link_) break;
    link_->on_datagram(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)),
                       punched_->peer);
    if (!link_) break;
  }
}

Status Connector::start_path() {
  connect_started_ = reactor_.now();
  PunchReport scratch;
  PunchReport& report = report_ ? *report_ : scratch;
  auto r = punch(options_.punch, options_.peer, stop_fd_, &report);
  if (!r) return r.error();
  strategy_ = report.strategy;
  punched_ = std::move(*r);
  socket_ = std::move(punched_->socket);
  detail::QuicConfig config;
  config.server = false;
  config.identity = &identity_;
  config.expect_peer = options_.peer;
  config.local = punched_->local;
  config.remote = punched_->peer;
  config.idle_timeout = detail::kTunnelIdle;
  config.keepalive = detail::kTunnelKeepalive;
  auto conn = detail::QuicConnection::client(config, reactor_.now());
  if (!conn) return conn.error();
  detail::TunnelLinkConfig lc;
  lc.server = false;
  lc.udp_flow_idle = options_.udp_flow_idle;
  lc.log = options_.punch.log;
  detail::TunnelLink::Callbacks cb;
  cb.port_list = [this](const std::vector<ExposedPort>& ports) { on_port_list(ports); };
  cb.closed = [this](const Error& e, bool by_peer, std::uint64_t code) {
    on_closed(e, by_peer, code);
  };
  cb.tcp_done = [this] {
    if (options_.once) finish(std::nullopt);
  };
  const int fd = socket_.get();
  // A UDP path goes out in GSO batches (net/udp_batch.hpp); a relayed one is an AF_UNIX
  // datagram socket (punch.hpp), one send(2) a packet.
  sockaddr_storage own{};
  socklen_t own_len = sizeof own;
  const bool udp = ::getsockname(fd, reinterpret_cast<sockaddr*>(&own), &own_len) == 0 &&
                   own.ss_family != AF_UNIX;
  auto batch = udp ? std::make_shared<detail::UdpBatch>(fd) : nullptr;
  rx_ = udp ? std::make_unique<detail::UdpBatch>(fd) : nullptr;
  if (rx_) {
    rx_->request_buffers(detail::kTunnelSocketBuffer);
    rx_->enable_gro();  // the peer's GSO bursts may arrive whole (net/udp_batch.hpp)
  }
  link_ = std::make_unique<detail::TunnelLink>(
      reactor_, std::move(*conn),
      [this, fd, batch, peer = punched_->peer](const detail::DatagramBuffer& packets) {
        if (batch) {
          if (auto sent = batch->send(packets, peer); !sent)
            log(LogLevel::debug, "tunnel send: " + sent.error().message);
          return;
        }
        for (std::size_t i = 0; i < packets.size(); ++i)
          if (::send(fd, packets[i].data(), packets[i].size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            log(LogLevel::debug, fmt::format("tunnel send: {}", std::strerror(errno)));
      },
      lc, cb);
  reactor_.watch(fd, true, false, [this](bool, bool) { on_socket_readable(); });
  // The handshake and the port list get the punch's timeout.
  handshake_timer_ = reactor_.add_timer_in(options_.punch.timeout, [this] {
    handshake_timer_ = 0;
    if (link_) link_->close(detail::kQuicCloseNormal, "handshake timeout");
    if (!listening_)
      finish(make_error(Errc::punch_failed,
                        fmt::format("no tunnel to {}: the QUIC handshake did not complete",
                                    options_.peer.to_string())));
  });
  link_->pump();
  return ok_status();
}

// The TunnelClient's new local ends: a stream becomes a QUIC stream as a local TCP
// connection would, a datagram socket a flow; without a tunnel up they are closed (the
// caller reads EOF), as a listener's connections are between paths.
void Connector::on_inbox() {
  std::uint64_t count = 0;
  (void)::read(inbox_->wake.get(), &count, sizeof count);
  std::vector<TunnelClientInbox::Local> items;
  {
    std::lock_guard lock(inbox_->mutex);
    items.swap(inbox_->pending);
  }
  for (auto& item : items) {
    if (!link_up()) continue;  // closes item.fd
    if (item.proto == TunnelProto::tcp) {
      link_->add_tcp(detail::TcpSocket(item.fd.release()), item.port);
      continue;
    }
    // A slot a closed flow left, else a new one: as many slots as flows open at once.
    std::size_t index = 0;
    while (index < library_flows_.size() && library_flows_[index].fd.valid()) ++index;
    if (index == library_flows_.size()) library_flows_.emplace_back();
    library_flows_[index] = LibraryFlow{std::move(item.fd), item.port};
    reactor_.watch(library_flows_[index].fd.get(), true, false,
                   [this, index](bool, bool) { on_library_flow(index); });
  }
}

void Connector::on_library_flow(std::size_t index) {
  auto& flow = library_flows_[index];
  for (;;) {
    ssize_t n = ::recv(flow.fd.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    // An empty datagram reads as 0 bytes too: only a hang-up is the end.
    if (n == 0 && !peer_hung_up(flow.fd.get())) {
      if (link_up()) link_->on_local_udp(flow.fd.get(), flow.port, Endpoint{}, {});
      continue;
    }
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      // The caller closed its end (or an error): the flow ends here and its slot is free.
      reactor_.unwatch(flow.fd.get());
      if (link_) link_->forget_local_udp(flow.fd.get());
      flow = LibraryFlow{};
      return;
    }
    if (!link_up()) continue;
    // A connected socketpair: the flow's source is "none" (port 0), and answers go back
    // with send(2) (TunnelLink::on_quic_datagram).
    link_->on_local_udp(flow.fd.get(), flow.port, Endpoint{},
                        std::span<const std::uint8_t>(buffer_.data(), static_cast<std::size_t>(n)));
  }
}

Status Connector::run() {
  if (auto st = bind_listeners(); !st) return st;
  if (stop_fd_ >= 0) reactor_.stop_on(stop_fd_);
  if (inbox_) reactor_.watch(inbox_->wake.get(), true, false, [this](bool, bool) { on_inbox(); });
  if (auto st = start_path(); !st) return st;
  auto st = reactor_.run();
  if (link_ && !link_->closed()) link_->close(detail::kQuicCloseNormal, "connect stopped");
  drop_path();
  retired_.clear();
  if (outcome_) return *outcome_;
  if (!st) return st.error();
  return ok_status();
}

}  // namespace

Status connect_tunnel(const ConnectOptions& options, int stop_fd, const TunnelEventFn& on_event,
                      PunchReport* report) {
  if (options.forwards.empty())
    return make_error(Errc::usage, "connect: name at least one -L [BIND:]LOCAL:REMOTE[/udp]");
  if (options.punch.rendezvous.empty())
    return make_error(Errc::usage, "connect: --rendezvous is required");
  auto identity = Identity::load_or_create(options.punch.state_dir);
  if (!identity) return identity.error();
  if (identity->id() == options.peer)
    return make_error(Errc::usage, "that is this host's own peer ID: name the other peer");
  Connector c(options, std::move(*identity), stop_fd, on_event, report);
  return c.run();
}

struct TunnelClient::Impl {
  ConnectOptions options;
  TunnelEventFn on_event;
  TunnelClientInbox inbox;
  OwnedFd stop;
  std::thread thread;
  Status outcome = ok_status();
  PunchReport report;
};

Result<std::unique_ptr<TunnelClient>> TunnelClient::connect(const ConnectOptions& options,
                                                            TunnelEventFn on_event) {
  if (options.punch.rendezvous.empty())
    return make_error(Errc::usage, "TunnelClient: a rendezvous is required");
  auto identity = Identity::load_or_create(options.punch.state_dir);
  if (!identity) return identity.error();
  if (identity->id() == options.peer)
    return make_error(Errc::usage, "that is this host's own peer ID: name the other peer");
  std::unique_ptr<TunnelClient> client(new TunnelClient());
  client->impl_ = std::make_unique<Impl>();
  Impl& impl = *client->impl_;
  impl.options = options;
  impl.options.forwards.clear();  // the library's ends come through the inbox
  impl.options.once = false;
  impl.on_event = std::move(on_event);
  impl.inbox.wake = OwnedFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  impl.stop = OwnedFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl.inbox.wake.valid() || !impl.stop.valid())
    return make_error(Errc::internal, fmt::format("eventfd: {}", std::strerror(errno)));
  impl.thread = std::thread([&impl, id = std::move(*identity)]() mutable {
    TunnelEventFn forward = [&impl](const TunnelEvent& e) {
      if (impl.on_event) impl.on_event(e);
    };
    Connector c(impl.options, std::move(id), impl.stop.get(), forward, &impl.report);
    c.set_inbox(&impl.inbox);
    Status st = c.run();
    {
      std::lock_guard lock(impl.inbox.mutex);
      impl.outcome = st;
      impl.inbox.finished = true;
      impl.inbox.connected = false;
    }
    impl.inbox.changed.notify_all();
  });
  std::unique_lock lock(impl.inbox.mutex);
  impl.inbox.changed.wait(lock, [&impl] { return impl.inbox.connected || impl.inbox.finished; });
  if (!impl.inbox.connected) {
    Status st = impl.inbox.finished && !impl.outcome
                    ? impl.outcome
                    : Status(make_error(Errc::internal, "the tunnel ended"));
    lock.unlock();
    impl.thread.join();
    return st.error();
  }
  return client;
}

TunnelClient::~TunnelClient() { close(); }

void TunnelClient::close() {
  if (!impl_ || !impl_->thread.joinable()) return;
  const std::uint64_t one = 1;
  (void)::write(impl_->stop.get(), &one, sizeof one);
  impl_->thread.join();
}

bool TunnelClient::connected() const {
  std::lock_guard lock(impl_->inbox.mutex);
  return impl_->inbox.connected && !impl_->inbox.finished;
}

std::vector<ExposedPort> TunnelClient::exposed() const {
  std::lock_guard lock(impl_->inbox.mutex);
  return impl_->inbox.exposed;
}

Result<OwnedFd> TunnelClient::open(std::uint16_t port, TunnelProto proto) {
  int fds[2] = {-1, -1};
  {
    std::lock_guard lock(impl_->inbox.mutex);
    if (impl_->inbox.finished)
      return impl_->outcome ? make_error(Errc::internal, "the tunnel was closed")
                            : impl_->outcome.error();
    const ExposedPort want{port, proto};
    if (std::find(impl_->inbox.exposed.begin(), impl_->inbox.exposed.end(), want) ==
        impl_->inbox.exposed.end())
      return make_error(Errc::peer_refused,
                        fmt::format("{} does not expose port {}", impl_->options.peer.to_string(),
                                    to_string(want)));
    // A flow is SOCK_SEQPACKET: datagrams keep their bounds, and the caller's close is
    // seen (an AF_UNIX SOCK_DGRAM pair never tells), so the flow is ended and its slot
    // freed.
    const int type = proto == TunnelProto::tcp ? SOCK_STREAM : SOCK_SEQPACKET;
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
      return make_error(Errc::internal, fmt::format("socketpair: {}", std::strerror(errno)));
    // The caller's end blocks as an ordinary socket would; ours does not.
    const int flags = ::fcntl(fds[0], F_GETFL);
    if (flags >= 0) (void)::fcntl(fds[0], F_SETFL, flags & ~O_NONBLOCK);
    impl_->inbox.pending.push_back({OwnedFd(fds[1]), port, proto});
  }
  const std::uint64_t one = 1;
  (void)::write(impl_->inbox.wake.get(), &one, sizeof one);
  return OwnedFd(fds[0]);
}

Result<OwnedFd> TunnelClient::open_stream(std::uint16_t port) {
  return open(port, TunnelProto::tcp);
}

Result<OwnedFd> TunnelClient::open_datagrams(std::uint16_t port) {
  return open(port, TunnelProto::udp);
}

}  // namespace porthole
