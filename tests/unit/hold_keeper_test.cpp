// hold's keeper driven by a test clock, with fake PortMappers in the Session: renewal
// on schedule, a router reboot (epoch loss), a protocol switch, the back-off and its
// recovery, and the stop that removes everything at once. Fakes stand in for what the
// lab cannot make a router do on cue; the lab tests (tests/lab/scenarios/hold*.py)
// cover the real routers.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/hold_keeper.hpp"
#include "core/mapping_policy.hpp"
#include "net/clock.hpp"
#include "net/reactor.hpp"
#include "state/state_store.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// A protocol client that answers (or not) as the test says. Called from the keeper's
// worker threads: everything under one mutex.
class FakeMapper final : public PortMapper {
 public:
  // The epoch advances with `clock`, one per second, as a server's does (RFC 6887 s8.5).
  FakeMapper(Protocol p, const TestClock& clock) : protocol_(p), clock_(clock), t0_(clock.now()) {}
  Protocol protocol() const override { return protocol_; }
  Result<ProbeInfo> probe(Deadline) override { return ProbeInfo{ip("198.51.100.7"), epoch()}; }
  Result<MapOutcome> map(const MapParams& params, Deadline) override {
    if (before_map_) before_map_(params);  // set before the keeper starts, never after
    std::unique_lock lock(mu_);
    ++maps_;
    if (block_maps_) {
      // A router that says nothing for as long as the test wants (bounded).
      ++maps_in_flight_;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !block_maps_; });
      --maps_in_flight_;
      cv_.notify_all();
      return make_error(Errc::no_service, "no answer (fake)");
    }
    if (silent_) return make_error(Errc::no_service, "no answer (fake)");
    if (refuse_maps_) return make_error(Errc::refused, "not allowed (fake)");
    MapOutcome o;
    o.mapping = {protocol_,          params.transport,     params.internal_ip, params.internal_port,
                 ip("198.51.100.7"), params.internal_port, params.lifetime,    0,
                 params.description};
    o.epoch = epoch_locked();
    o.nonce = params.nonce;  // a PCP server echoes the request's nonce (RFC 6887 s11.1)
    return o;
  }
  Status unmap(const Mapping& m, const Nonce&, Deadline) override {
    std::unique_lock lock(mu_);
    ++unmaps_in_flight_;
    ++unmaps_;
    peak_in_flight_ = std::max(peak_in_flight_, unmaps_in_flight_);
    cv_.notify_all();
    // Waits (a bounded while) for `expect_parallel` removals to be in flight at once:
    // removals sent one after the other never get there. With first_alone, the first
    // removal does not wait (hold sends one UPnP removal alone before the others).
    if (!(first_alone_ && unmaps_ == 1))
      cv_.wait_for(lock, std::chrono::seconds(3),
                   [&] { return peak_in_flight_ >= expect_parallel_; });
    --unmaps_in_flight_;
    for (auto p : refuse_unmap_)
      if (p == m.internal_port) return make_error(Errc::refused, "not yours (fake)");
    return ok_status();
  }

  void block_maps(bool b) {
    std::lock_guard lock(mu_);
    block_maps_ = b;
    cv_.notify_all();
  }
  // Waits (bounded) until `n` map() calls are blocked; true when they are.
  bool wait_maps_in_flight(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return maps_in_flight_ == n; });
  }
  int maps_in_flight() {
    std::lock_guard lock(mu_);
    return maps_in_flight_;
  }
  void set_silent(bool s) {
    std::lock_guard lock(mu_);
    silent_ = s;
  }
  void refuse_maps(bool r) {
    std::lock_guard lock(mu_);
    refuse_maps_ = r;
  }
  // From now on the epoch counts from `e` (a server that restarted).
  void set_epoch(std::uint32_t e) {
    std::lock_guard lock(mu_);
    epoch_ = e;
    t0_ = clock_.now();
  }
  std::uint32_t epoch() {
    std::lock_guard lock(mu_);
    return epoch_locked();
  }
  int maps() {
    std::lock_guard lock(mu_);
    return maps_;
  }
  int peak_in_flight() {
    std::lock_guard lock(mu_);
    return peak_in_flight_;
  }
  void expect_parallel(int n, bool first_alone = false) {
    std::lock_guard lock(mu_);
    expect_parallel_ = n;
    first_alone_ = first_alone;
  }
  int unmaps() {
    std::lock_guard lock(mu_);
    return unmaps_;
  }
  void before_map(std::function<void(const MapParams&)> f) { before_map_ = std::move(f); }
  void refuse_unmap(std::vector<std::uint16_t> ports) {
    std::lock_guard lock(mu_);
    refuse_unmap_ = std::move(ports);
  }

 private:
  std::uint32_t epoch_locked() const {
    return epoch_ + static_cast<std::uint32_t>(
                        std::chrono::duration_cast<seconds>(clock_.now() - t0_).count());
  }
  Protocol protocol_;
  const TestClock& clock_;
  Clock::time_point t0_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool silent_ = false;
  bool refuse_maps_ = false;
  bool block_maps_ = false;
  int maps_in_flight_ = 0;
  std::uint32_t epoch_ = 1000;
  int maps_ = 0;
  int unmaps_in_flight_ = 0;
  int peak_in_flight_ = 0;
  int expect_parallel_ = 1;
  bool first_alone_ = false;
  int unmaps_ = 0;
  std::function<void(const MapParams&)> before_map_;
  std::vector<std::uint16_t> refuse_unmap_;
};

std::string temp_dir() {
  char tmpl[] = "/tmp/porthole-keeper-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  REQUIRE(d != nullptr);
  return d;
}

// A keeper on a test clock over three fakes; no socket is opened (no announcements).
struct Rig {
  TestClock clock;
  Reactor reactor{clock};
  std::shared_ptr<FakeMapper> pcp = std::make_shared<FakeMapper>(Protocol::pcp, clock);
  std::shared_ptr<FakeMapper> natpmp = std::make_shared<FakeMapper>(Protocol::natpmp, clock);
  std::shared_ptr<FakeMapper> upnp = std::make_shared<FakeMapper>(Protocol::upnp, clock);
  Session session;
  HoldRequest request;
  std::vector<HoldEvent> events;
  HoldEventFn on_event = [this](const HoldEvent& e) { events.push_back(e); };
  std::unique_ptr<Keeper> keeper;

  Rig(std::vector<std::uint16_t> ports, Via via, std::uint32_t lifetime) {
    session.options.timeout = milliseconds(1000);
    session.options.state_dir = temp_dir();
    session.gateway.gateway_ip = ip("192.0.2.1");  // never sent to: the clients are fakes
    session.gateway.local_ip = ip("192.0.2.10");
    session.pcp = pcp;
    session.natpmp = natpmp;
    session.upnp = upnp;
    session.make_client = [this](Protocol p) -> std::shared_ptr<PortMapper> {
      return p == Protocol::pcp ? pcp : p == Protocol::natpmp ? natpmp : upnp;
    };
    request.announce_port = 0;
    for (auto port : ports) {
      OpenRequest r;
      r.port = {port, Transport::tcp};
      r.via = via;
      r.lifetime = lifetime;
      request.mappings.push_back(r);
    }
  }
  void start() {
    keeper = std::make_unique<Keeper>(session, request, on_event, reactor);
    keeper->start();
    turn();
  }
  void turn() { REQUIRE(reactor.run_ready().ok()); }
  void advance(milliseconds d) {
    clock.advance(d);
    turn();
  }
  int count(HoldEventKind k) const {
    int n = 0;
    for (const auto& e : events) n += e.kind == k;
    return n;
  }
};

}  // namespace

TEST_CASE("keeper renews on schedule, by the test clock", "[hold_keeper]") {
  Rig rig({8080}, Via::natpmp, 100);
  rig.start();
  CHECK(rig.count(HoldEventKind::mapped) == 1);
  CHECK(rig.count(HoldEventKind::ready) == 1);
  CHECK(rig.natpmp->maps() == 1);
  // RFC 6886 s3.3: halfway to expiry, 50 s.
  rig.advance(seconds(49));
  CHECK(rig.natpmp->maps() == 1);
  rig.advance(seconds(2));
  CHECK(rig.natpmp->maps() == 2);
  CHECK(rig.count(HoldEventKind::renewed) == 1);
  rig.advance(seconds(51));
  CHECK(rig.natpmp->maps() == 3);
  CHECK(rig.count(HoldEventKind::renewed) == 2);
  CHECK(rig.pcp->maps() == 0);
}

TEST_CASE("keeper: an epoch that went back (router reboot) makes every mapping again",
          "[hold_keeper]") {
  Rig rig({8080, 8081}, Via::natpmp, 100);
  rig.start();
  CHECK(rig.count(HoldEventKind::mapped) == 2);
  rig.natpmp->set_epoch(3);  // RFC 6886 s3.6: far less than 1000 + 51 s
  rig.advance(seconds(51));
  CHECK(rig.count(HoldEventKind::remapped) == 2);
  CHECK(rig.count(HoldEventKind::renewed) == 0);
  // Then renewals as usual, from the new grant.
  rig.advance(seconds(51));
  CHECK(rig.count(HoldEventKind::renewed) == 2);
}

TEST_CASE("keeper switches protocol when the one in use stops answering", "[hold_keeper]") {
  Rig rig({8080}, Via::automatic, 100);
  rig.start();
  CHECK(rig.count(HoldEventKind::mapped) == 1);
  REQUIRE(rig.keeper->held().front().mapping.protocol == Protocol::pcp);
  rig.pcp->set_silent(true);
  for (int i = 0; i < 30 && rig.count(HoldEventKind::protocol_switched) == 0; ++i)
    rig.advance(seconds(5));
  REQUIRE(rig.count(HoldEventKind::protocol_switched) == 1);
  const HoldEvent* sw = nullptr;
  for (const auto& e : rig.events)
    if (e.kind == HoldEventKind::protocol_switched) sw = &e;
  REQUIRE(sw != nullptr);
  CHECK(sw->previous_protocol == Protocol::pcp);
  REQUIRE(sw->mapping);
  CHECK(sw->mapping->protocol == Protocol::natpmp);
  CHECK(rig.count(HoldEventKind::lost) == 1);
  CHECK(rig.keeper->held().front().mapped);
  CHECK(rig.upnp->maps() == 0);  // NAT-PMP answered first
}

TEST_CASE("keeper backs off doubling up to retry_max, then recovers", "[hold_keeper]") {
  Rig rig({8080}, Via::natpmp, 100);
  rig.request.retry_min = milliseconds(1000);
  rig.request.retry_max = milliseconds(4000);
  rig.natpmp->set_silent(true);
  rig.start();
  for (auto step : {1000, 2000, 4000, 4000}) rig.advance(milliseconds(step));
  std::vector<long long> waits;
  for (const auto& e : rig.events)
    if (e.kind == HoldEventKind::error && e.retry_in) waits.push_back(e.retry_in->count());
  CHECK(waits == std::vector<long long>{1000, 2000, 4000, 4000, 4000});
  CHECK(rig.count(HoldEventKind::mapped) == 0);
  rig.natpmp->set_silent(false);
  rig.advance(milliseconds(3000));
  CHECK(rig.count(HoldEventKind::mapped) == 0);  // not due yet: 4 s after the last try
  rig.advance(milliseconds(1000));
  CHECK(rig.count(HoldEventKind::mapped) == 1);
  CHECK(rig.keeper->held().front().backoff == milliseconds(0));
}

TEST_CASE("keeper: a stop ends the loop while an exchange is still in flight", "[hold_keeper]") {
  Rig rig({8080}, Via::natpmp, 100);
  rig.natpmp->block_maps(true);
  bool started = false;
  std::thread stopper([&] {
    started = rig.natpmp->wait_maps_in_flight(1);
    notify_fd(rig.reactor.stop_fd());  // as SIGTERM's handler or signalfd would
  });
  rig.start();  // the first attempt: its map() blocks on a worker; the stop ends the turn
  stopper.join();
  CHECK(started);
  CHECK(rig.reactor.stopping());
  CHECK(rig.natpmp->maps_in_flight() == 1);  // the loop did not wait for the exchange
  CHECK(rig.count(HoldEventKind::mapped) == 0);
  CHECK(rig.count(HoldEventKind::error) == 0);  // an abandoned exchange reports nothing
  rig.natpmp->block_maps(false);
  CHECK(rig.natpmp->wait_maps_in_flight(0));
}

TEST_CASE("keeper stop: every removal at once, the unremoved stay in the state file",
          "[hold_keeper]") {
  Rig rig({8080, 8081, 8082}, Via::natpmp, 100);
  rig.start();
  REQUIRE(rig.count(HoldEventKind::mapped) == 3);
  rig.natpmp->expect_parallel(3);
  rig.natpmp->refuse_unmap({8081, 8082});
  auto st = rig.keeper->release();
  CHECK(rig.natpmp->peak_in_flight() == 3);  // all three were in flight together
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::refused);
  CHECK(st.error().message.find("2 of 3 mappings not removed") != std::string::npos);
  CHECK(rig.count(HoldEventKind::released) == 1);
  CHECK(rig.count(HoldEventKind::stopping) == 1);
  auto store = StateStore::open(rig.session.options.state_dir, Clock::now() + seconds(2));
  REQUIRE(store.ok());
  const auto& gw = rig.session.gateway;
  CHECK_FALSE(store->find(gw.gateway_ip, gw.local_ip, Transport::tcp, 8080).has_value());
  CHECK(store->find(gw.gateway_ip, gw.local_ip, Transport::tcp, 8081).has_value());
  CHECK(store->find(gw.gateway_ip, gw.local_ip, Transport::tcp, 8082).has_value());
}

TEST_CASE("keeper stop: UPnP removals concurrent, at most 4 at a time", "[hold_keeper]") {
  std::vector<std::uint16_t> ports;
  for (std::uint16_t p = 9000; p < 9040; ++p) ports.push_back(p);
  Rig rig(ports, Via::upnp, 100);
  rig.start();
  REQUIRE(rig.count(HoldEventKind::mapped) == 40);
  rig.upnp->expect_parallel(4, true);
  auto st = rig.keeper->release();
  CHECK(st.ok());
  CHECK(rig.upnp->unmaps() == 40);
  CHECK(rig.upnp->peak_in_flight() == 4);  // together, and never more than 4
  CHECK(rig.count(HoldEventKind::released) == 40);
  auto store = StateStore::open(rig.session.options.state_dir, Clock::now() + seconds(2));
  REQUIRE(store.ok());
  CHECK(store->mappings().empty());
}

TEST_CASE("keeper records the intent with a PCP nonce of its own before the first MAP",
          "[hold_keeper]") {
  Rig rig({8080}, Via::pcp, 100);
  const auto& gw = rig.session.gateway;
  bool had_nonce = false;
  bool pending_with_that_nonce = false;
  Nonce sent{};
  rig.pcp->before_map([&](const MapParams& params) {
    had_nonce = params.have_nonce;
    sent = params.nonce;
    auto store = StateStore::open(rig.session.options.state_dir, Clock::now() + seconds(2));
    if (!store) return;
    auto rec = store->find(gw.gateway_ip, gw.local_ip, Transport::tcp, 8080);
    pending_with_that_nonce = rec && rec->pending && rec->has_nonce && rec->nonce == params.nonce;
  });
  rig.start();
  REQUIRE(rig.count(HoldEventKind::mapped) == 1);
  CHECK(had_nonce);
  CHECK(sent != Nonce{});
  CHECK(pending_with_that_nonce);
  auto store = StateStore::open(rig.session.options.state_dir, Clock::now() + seconds(2));
  REQUIRE(store.ok());
  auto rec = store->find(gw.gateway_ip, gw.local_ip, Transport::tcp, 8080);
  REQUIRE(rec.has_value());
  CHECK_FALSE(rec->pending);  // the outcome, after the answer
  CHECK(rec->nonce == sent);
}

TEST_CASE("keeper: a refused MAP takes its intent back out of the state", "[hold_keeper]") {
  Rig rig({8080}, Via::natpmp, 100);
  rig.natpmp->refuse_maps(true);
  rig.start();
  CHECK(rig.count(HoldEventKind::mapped) == 0);
  auto store = StateStore::open(rig.session.options.state_dir, Clock::now() + seconds(2));
  REQUIRE(store.ok());
  CHECK(store->mappings().empty());
}

TEST_CASE("mapping policy shared by open and hold", "[hold_keeper]") {
  using V = std::vector<Protocol>;
  CHECK(protocol_order(Via::automatic, std::nullopt) ==
        V{Protocol::pcp, Protocol::natpmp, Protocol::upnp});
  CHECK(protocol_order(Via::automatic, Protocol::upnp) ==
        V{Protocol::upnp, Protocol::pcp, Protocol::natpmp});
  CHECK(protocol_order(Via::natpmp, Protocol::upnp) == V{Protocol::natpmp});
  CHECK(lease_for(Protocol::pcp, 0) == 86400);
  CHECK(lease_for(Protocol::natpmp, 0) == 86400);
  CHECK(lease_for(Protocol::upnp, 0) == 0);
  CHECK(lease_for(Protocol::pcp, 600) == 600);
  CHECK(check_ports({0, Transport::tcp}, std::nullopt).error().code == Errc::usage);
  CHECK(check_ports({80, Transport::tcp}, std::uint16_t{0}).error().code == Errc::usage);
  CHECK(check_ports({80, Transport::udp}, std::nullopt).ok());
  CHECK(combined_errc({make_error(Errc::no_service, "a"), make_error(Errc::refused, "b")}) ==
        Errc::refused);
  CHECK(combined_errc({make_error(Errc::no_service, "a"), make_error(Errc::timeout, "b")}) ==
        Errc::timeout);
  CHECK(combined_errc({make_error(Errc::no_service, "a")}) == Errc::no_service);
  Options o;
  o.state_dir = "/tmp/x";
  CHECK(state_dir_for(o) == "/tmp/x");
  CHECK(state_dir_for(Options{}) == default_state_dir());
}
