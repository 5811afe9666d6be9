// An in-process fake UPnP IGD on 127.0.0.1, for the router behaviours the lab's real
// miniupnpd cannot be made to show: SOAP faults on demand (725, 402, 501, 606, 718 for a
// port the router keeps to itself), odd external addresses, a device without a WAN
// connection service, a table end signalled by another fault than 713.
//
// One thread serves two loopback sockets: an SSDP responder (UDP, ephemeral port) that
// answers M-SEARCH with LOCATION http://127.0.0.1:<http_port>/rootDesc.xml, and an HTTP
// server (TCP, ephemeral port) that serves the description and answers the
// WANIPConnection SOAP actions porthole uses, on a port-mapping table of its own. Every
// request is recorded, so tests assert what porthole sent as well as what it concluded.
//
// It is the template for hostile-router tests: keep it small; add a knob per behaviour.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "porthole/porthole.hpp"
#include "proto/port_mapper.hpp"

namespace porthole::test {

class FakeIgd {
 public:
  struct Options {
    int igd_version = 2;      // 1: WANIPConnection:1 (no AddAnyPortMapping); 2: :2
    bool wan_service = true;  // false: an IGD without WANIPConnection/WANPPPConnection
    std::string external_ip = "203.0.113.7";  // GetExternalIPAddress, verbatim
    int conflict_code = 718;      // AddPortMapping on a port held by another host (or 501)
    int end_of_table_code = 713;  // GetGenericPortMappingEntry past the last entry
    // > 0: a router that grants at most this many seconds; a longer lease, or a
    // permanent one (0), is stored as this (IGDv2 routers do so with 604800).
    std::uint32_t max_lease = 0;
    // M-SEARCH for an earlier version of its types is answered too (UDA 1.1 s1.3.2, as
    // miniupnpd does); false: only its own version (a device that does not).
    bool answers_earlier_versions = true;
    // A description written by the test, served instead of the built-in one, and the
    // WAN connection services it names (each answers at its own control path). Empty:
    // the built-in description with one WANIPConnection:igd_version at /ctl/IPConn.
    std::string description;
    struct Service {
      std::string type;          // "urn:dslforum-org:service:WANPPPConnection:1"
      std::string control_path;  // "/ctl/ppp0", as the description writes it
      // false: a connection that is down: GetStatusInfo says Disconnected and every
      // mapping action answers 501 ActionFailed.
      bool connected = true;
      std::string external_ip = "203.0.113.7";  // GetExternalIPAddress, verbatim
    };
    std::vector<Service> services;
  };

  // One row of the router's table. Protocol as the router stores it ("TCP" / "UDP").
  struct Entry {
    std::string protocol = "TCP";
    std::uint16_t external_port = 0;
    std::string internal_client;
    std::uint16_t internal_port = 0;
    std::string description;
    std::uint32_t lease = 0;
  };

  // One request as the fake received it: a SOAP action with its arguments
  // (NewExternalPort, NewProtocol, ...), or action "GET" with args {"path": ...}.
  struct Request {
    std::string action;
    std::map<std::string, std::string> args;
    std::string path;                                // a SOAP action's control path
    std::string arg(const std::string& name) const;  // "" when absent
  };

  explicit FakeIgd(Options options);
  FakeIgd() : FakeIgd(Options{}) {}
  ~FakeIgd();
  FakeIgd(const FakeIgd&) = delete;
  FakeIgd& operator=(const FakeIgd&) = delete;

  // Where porthole finds it: gateway and local address 127.0.0.1, SSDP on the fake's
  // port. A loopback gateway makes discovery skip multicast, so nothing leaves lo.
  detail::GatewayInfo gateway(LogFn log = {}) const;
  std::uint16_t ssdp_port() const { return ssdp_port_; }
  std::uint16_t http_port() const { return http_port_; }

  // Scripting; call before the client acts or between its calls.
  void add_entry(Entry entry);
  // A port the router keeps for itself: AddPortMapping on it answers conflict_code,
  // GetSpecificPortMappingEntry answers 714 and the table does not show it.
  void reserve_port(std::string protocol, std::uint16_t port);
  // The next `times` AddPortMapping / AddAnyPortMapping requests answer SOAP fault `code`.
  void fail_next_add(int code, int times = 1);
  // Every AddPortMapping / AddAnyPortMapping with a lease other than 0 answers `code`.
  void fail_add_with_lease(int code);
  // Every request for SOAP action `action` answers fault `code` (0: back to normal).
  void fail_action(std::string action, int code);
  // The service of Options::services at `control_path` goes up or down, with this
  // external address (a multi-WAN router's failover).
  void set_service(const std::string& control_path, bool connected, std::string external_ip);

  // Hostile answers. The request is recorded as usual; then, instead of the
  // answer, the fake plays the router below until porthole hangs up (or the fake stops).
  enum class Hostile {
    none,                // back to normal
    drip,                // a valid answer, one byte a second
    headers_never_end,   // a status line, then a header line every 100 ms, forever
    endless_chunks,      // chunked, 4 KiB chunks as fast as porthole reads them, forever
    chunk_0x80000000,    // chunked, first chunk size 80000000 (hex), then a trickle
    content_length_2e9,  // Content-Length: 2000000000, then a trickle
    raw,                 // `raw` verbatim, then close
  };
  // `request` is "GET" (the description) or a SOAP action name.
  void misbehave(std::string request, Hostile how, std::string raw = {});

  // Observations.
  std::vector<Request> requests() const;                         // in arrival order
  std::vector<Request> requests(std::string_view action) const;  // only this action
  std::vector<Entry> table() const;
  std::size_t msearch_count() const;

 private:
  void run();
  void answer_msearch(std::string_view text, const sockaddr_in& from);
  void serve_connection(int fd);
  void play_hostile(int fd, Hostile how, const std::string& raw);
  bool hostile_send(int fd, std::string_view bytes);
  bool hostile_pause(int fd, int ms);
  std::string handle_http(std::string_view method, std::string_view path,
                          std::string_view soap_action, std::string_view body);
  std::string handle_soap(const std::string& action, const std::map<std::string, std::string>& args,
                          const Options::Service& service);
  std::string description_xml() const;
  bool is_reserved(const std::string& protocol, std::uint16_t port) const;
  std::vector<Entry>::iterator find_entry(const std::string& protocol, std::uint16_t port);

  const Options options_;
  int udp_fd_ = -1;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: the destructor's stop signal
  std::uint16_t ssdp_port_ = 0;
  std::uint16_t http_port_ = 0;

  mutable std::mutex mutex_;  // guards everything below
  std::vector<Entry> table_;
  std::set<std::pair<std::string, std::uint16_t>> reserved_;
  std::deque<int> add_faults_;
  int lease_fault_ = 0;
  std::map<std::string, int> action_faults_;
  std::vector<Options::Service> services_;  // Options::services, as set_service changed them
  std::map<std::string, std::pair<Hostile, std::string>> hostile_;
  std::vector<Request> requests_;
  std::size_t msearches_ = 0;

  std::thread thread_;  // last: started once everything above exists
};

// What a test asks the client for: this host (127.0.0.1, where the fake sees it) port
// `port` to the same external port, a 3600 s lease.
detail::MapParams loopback_map_request(std::uint16_t port);

// For tests of the public calls (porthole::open, close, list) against a fake:
// their options (gateway 127.0.0.1, the fake's SSDP port, the state in `state_dir`), an
// `open TCP port --via upnp`, a new empty directory under /tmp, and a file's text.
Options fake_igd_options(const FakeIgd& igd, const std::string& state_dir);
OpenRequest tcp_via_upnp(std::uint16_t port);
std::string fresh_test_dir();
std::string read_text(const std::string& path);

}  // namespace porthole::test
