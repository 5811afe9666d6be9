#include "tunnel/gateway_keeper.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

namespace porthole::detail {

namespace {

// hold's events, as expose reports them (docs: the "mapping" event of `expose --json`).
std::optional<GatewayKeeperEvent> translate(const HoldEvent& e) {
  GatewayKeeperEvent out;
  out.message = e.message;
  if (e.mapping && e.mapping->external_ip)
    out.external = Endpoint{*e.mapping->external_ip, e.mapping->external_port};
  switch (e.kind) {
    case HoldEventKind::mapped:
    case HoldEventKind::remapped:
    case HoldEventKind::external_address_changed:
    case HoldEventKind::protocol_switched: out.what = "mapped"; return out;
    case HoldEventKind::renewed: out.what = "renewed"; return out;
    case HoldEventKind::lost: out.what = "lost"; return out;
    case HoldEventKind::released: out.what = "removed"; return out;
    case HoldEventKind::error:
    case HoldEventKind::ready:
    case HoldEventKind::stopping: return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

GatewayKeeper::GatewayKeeper(Reactor& reactor, const ExposeOptions& options, std::uint16_t port,
                             EventFn fn)
    : reactor_(reactor), fn_(std::move(fn)) {
  notify_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  Options o;
  o.gateway = options.punch.gateway;
  o.state_dir = options.punch.state_dir;
  o.log = options.punch.log;
  o.pcp_port = options.punch.pcp_port;
  o.ssdp_port = options.punch.ssdp_port;
  o.upnp_allow_lan = options.punch.upnp_allow_lan;
  o.stun_servers = options.punch.stun_servers;
  o.timeout = std::chrono::milliseconds(2000);
  HoldRequest request;
  OpenRequest r;
  r.port = PortSpec{port, Transport::udp};
  r.lifetime = options.lifetime;
  r.description = "porthole expose";
  request.mappings.push_back(r);
  if (notify_fd_ >= 0)
    reactor_.watch(notify_fd_, true, false, [this](bool, bool) {
      drain_fd(notify_fd_);
      deliver();
    });
  thread_ = std::thread([this, o, request] {
    auto on_event = [this](const HoldEvent& e) {
      auto t = translate(e);
      {
        std::lock_guard lock(mu_);
        if (t) queue_.push_back(*t);
        if (e.kind == HoldEventKind::ready || e.kind == HoldEventKind::mapped) first_done_ = true;
      }
      cv_.notify_all();
      if (notify_fd_ >= 0) notify_fd(notify_fd_);
    };
    auto st = hold(o, request, on_event, stop_fd_);
    std::lock_guard lock(mu_);
    if (!st) queue_.push_back({"lost", std::nullopt, st.error().message});
    first_done_ = true;
    cv_.notify_all();
  });
}

GatewayKeeper::~GatewayKeeper() {
  stop();
  if (notify_fd_ >= 0) ::close(notify_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void GatewayKeeper::wait_first(std::chrono::milliseconds budget) {
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, budget, [this] { return first_done_; });
  }
  deliver();
}

void GatewayKeeper::deliver() {
  std::deque<GatewayKeeperEvent> events;
  {
    std::lock_guard lock(mu_);
    events.swap(queue_);
  }
  for (const auto& e : events) fn_(e);
}

void GatewayKeeper::stop() {
  if (!thread_.joinable()) return;
  if (stop_fd_ >= 0) notify_fd(stop_fd_);
  thread_.join();
  if (notify_fd_ >= 0) reactor_.unwatch(notify_fd_);
  deliver();
}

}  // namespace porthole::detail
