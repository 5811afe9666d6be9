// What every operation starts with: the gateway, our address, the deadline, and the
// three protocol clients.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "core/mapping_policy.hpp"  // combined_errc, state_dir_for
#include "porthole/porthole.hpp"
#include "proto/natpmp_client.hpp"
#include "proto/pcp_client.hpp"
#include "proto/upnp_client.hpp"
#include "state/state_store.hpp"

namespace porthole::detail {

struct Session {
  Options options;
  GatewayInfo gateway;
  Deadline deadline;
  // Shared with probe threads, which may outlive a call that stopped waiting for them.
  // Held through the PortMapper interface: a unit test puts fakes here.
  std::shared_ptr<PortMapper> pcp;
  std::shared_ptr<PortMapper> natpmp;
  std::shared_ptr<PortMapper> upnp;
  // Makes a fresh client of a protocol (hold starts over with one after a router
  // restart, and removes mappings in parallel each through its own). open_session()
  // sets it to the real clients; a test sets one that makes fakes.
  std::function<std::shared_ptr<PortMapper>(Protocol)> make_client;

  std::shared_ptr<PortMapper> client(Protocol p) const;
  std::shared_ptr<PortMapper> new_client(Protocol p) const { return make_client(p); }
  void log(LogLevel level, std::string_view text) const { log_to(options.log, level, text); }
};

// The UPnP IGD cache in state directory `dir` (state/igd_cache.hpp), each failure a
// debug line in `log`, never an error.
UpnpCache upnp_cache_in(const std::string& dir, const LogFn& log);

// Checks the options (a bad --gateway is a usage error before anything is sent), finds
// the gateway and our address towards it.
Result<Session> open_session(const Options& options);

// The state of options.state_dir (or the default one), locked until the store is gone.
// Read before anything is sent: a corrupt file stops an operation there.
Result<StateStore> open_state(const Session& session);

// The three probes run at once, each in its own thread with its own client object
// (PCP, NAT-PMP and UPnP all answer within milliseconds of each other on a real
// router, and a silent one must not delay the others). Results are awaited one
// protocol at a time, in the caller's order of preference.
struct ProbeOutcome {
  Protocol protocol = Protocol::pcp;
  bool finished = false;  // false: gave up waiting (see ProbeRace::await)
  std::optional<Result<ProbeInfo>> result;
  std::chrono::milliseconds elapsed{0};
};

class ProbeRace {
 public:
  ProbeRace(Session& session, const std::vector<Protocol>& which);
  ~ProbeRace();
  ProbeRace(const ProbeRace&) = delete;
  ProbeRace& operator=(const ProbeRace&) = delete;

  // Waits for `p`'s probe. With `grace` set, waiting also ends `grace` after any
  // other probe succeeded (a protocol that stays silent while another has answered is
  // not worth the whole deadline). With `until` set, waiting ends then at the latest
  // (a caller that has its answer elsewhere gives the probes only a little longer).
  ProbeOutcome await(Protocol p, std::optional<std::chrono::milliseconds> grace,
                     std::optional<Deadline> until = std::nullopt);

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace porthole::detail
