#include "core/session.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "codec/ip_address_format.hpp"
#include "net/route.hpp"
#include "state/igd_cache.hpp"

namespace porthole::detail {

std::shared_ptr<PortMapper> Session::client(Protocol p) const {
  switch (p) {
    case Protocol::pcp: return pcp;
    case Protocol::natpmp: return natpmp;
    case Protocol::upnp: return upnp;
  }
  return nullptr;
}

UpnpCache upnp_cache_in(const std::string& dir, const LogFn& log) {
  UpnpCache cache;
  cache.load = [dir, log]() -> std::optional<UpnpCachedIgd> {
    auto entry = load_igd_cache(dir);
    if (entry) return *entry;
    log_to(log, LogLevel::debug, fmt::format("upnp    cache ignored: {}", entry.error().message));
    return std::nullopt;
  };
  cache.save = [dir, log](const UpnpCachedIgd& entry) {
    if (auto st = save_igd_cache(dir, entry); !st)
      log_to(log, LogLevel::debug, fmt::format("upnp    cache not saved: {}", st.error().message));
  };
  cache.forget = [dir, log] {
    if (auto st = forget_igd_cache(dir); !st)
      log_to(log, LogLevel::debug,
             fmt::format("upnp    cache not removed: {}", st.error().message));
  };
  return cache;
}

Result<Session> open_session(const Options& options) {
  Session s;
  s.options = options;
  s.deadline = Clock::now() + options.timeout;
  if (options.timeout.count() <= 0) return make_error(Errc::usage, "the timeout must be positive");
  IpAddress gw;
  if (!options.gateway) {
    auto found = default_gateway();
    if (!found) return found.error();
    gw = *found;
  } else if (!options.gateway->is_v4()) {
    return make_error(Errc::usage,
                      fmt::format("--gateway '{}' is not an IPv4 address like 192.168.1.1",
                                  *options.gateway));
  } else {
    gw = *options.gateway;
  }
  auto local = local_ip_towards(gw);
  if (!local) return local.error();
  s.gateway.gateway_ip = gw;
  s.gateway.local_ip = *local;
  s.gateway.pcp_port = options.pcp_port;
  s.gateway.ssdp_port = options.ssdp_port;
  s.gateway.upnp_allow_lan = options.upnp_allow_lan;
  s.gateway.log = options.log;
  UpnpCache cache = options.upnp_cache ? upnp_cache_in(state_dir_for(options), options.log)
                                       : UpnpCache{};
  s.make_client = [gateway = s.gateway, cache](Protocol p) -> std::shared_ptr<PortMapper> {
    switch (p) {
      case Protocol::pcp: return std::make_shared<PcpClient>(gateway);
      case Protocol::natpmp: return std::make_shared<NatpmpClient>(gateway);
      case Protocol::upnp: return std::make_shared<UpnpClient>(gateway, cache);
    }
    return nullptr;
  };
  s.pcp = s.make_client(Protocol::pcp);
  s.natpmp = s.make_client(Protocol::natpmp);
  s.upnp = s.make_client(Protocol::upnp);
  s.log(LogLevel::debug, fmt::format("gateway {}, this host {}", gw, *local));
  return s;
}

Result<StateStore> open_state(const Session& session) {
  return StateStore::open(state_dir_for(session.options), session.deadline);
}

struct ProbeRace::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ProbeOutcome> outcomes;  // one per protocol asked
  std::vector<Clock::time_point> succeeded_at;
  Clock::time_point started = Clock::now();
  Deadline deadline;
};

ProbeRace::ProbeRace(Session& session, const std::vector<Protocol>& which)
    : shared_(std::make_shared<Shared>()) {
  shared_->deadline = session.deadline;
  shared_->outcomes.resize(which.size());
  shared_->succeeded_at.resize(which.size(), Clock::time_point::max());
  for (std::size_t i = 0; i < which.size(); ++i) {
    shared_->outcomes[i].protocol = which[i];
    std::shared_ptr<PortMapper> client = session.client(which[i]);
    // Detached: the thread owns what it touches (shared_ptrs), and its probe ends by
    // the session deadline, so a caller that stopped waiting never blocks on it.
    std::thread([shared = shared_, client, i, deadline = session.deadline] {
      auto t0 = Clock::now();
      auto result = client->probe(deadline);
      auto t1 = Clock::now();
      std::lock_guard lock(shared->mu);
      auto& o = shared->outcomes[i];
      o.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t0);
      if (result) shared->succeeded_at[i] = t1;
      o.result.emplace(std::move(result));
      o.finished = true;
      shared->cv.notify_all();
    }).detach();
  }
}

ProbeRace::~ProbeRace() = default;

ProbeOutcome ProbeRace::await(Protocol p, std::optional<std::chrono::milliseconds> grace,
                              std::optional<Deadline> until) {
  std::unique_lock lock(shared_->mu);
  std::size_t idx = 0;
  while (idx < shared_->outcomes.size() && shared_->outcomes[idx].protocol != p) ++idx;
  if (idx == shared_->outcomes.size()) {
    ProbeOutcome none;
    none.protocol = p;
    return none;
  }
  for (;;) {
    if (shared_->outcomes[idx].finished) return shared_->outcomes[idx];
    Clock::time_point wake = until ? std::min(*until, shared_->deadline) : shared_->deadline;
    if (grace) {
      for (std::size_t j = 0; j < shared_->outcomes.size(); ++j)
        if (j != idx && shared_->succeeded_at[j] != Clock::time_point::max())
          wake = std::min(wake, shared_->succeeded_at[j] + *grace);
    }
    if (Clock::now() >= wake) {
      ProbeOutcome o = shared_->outcomes[idx];
      o.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                        shared_->started);
      return o;  // not finished
    }
    shared_->cv.wait_until(lock, wake);
  }
}

}  // namespace porthole::detail
