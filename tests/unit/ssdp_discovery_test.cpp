// discover_igd against a fake SSDP responder on 127.0.0.1 (a thread in this process).
// The gateway is 127.0.0.1 with ssdp_port set to the fake's port, so no multicast is
// sent and nothing leaves the loopback interface.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "proto/ssdp_discovery.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;
using namespace std::chrono_literals;

namespace {

struct Reply {
  std::string payload;
  std::string from_ip = "127.0.0.1";  // any 127/8 address: the whole block is on lo
};

int bound_udp_socket(const std::string& ip) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  REQUIRE(::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) == 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  return fd;
}

// Records every M-SEARCH; answers the first one with `replies` (each from its own
// source address), then, if `flood` is set, sends garbage without pause until the end.
class FakeSsdpResponder {
 public:
  explicit FakeSsdpResponder(std::vector<Reply> replies, bool flood = false)
      : replies_(std::move(replies)), flood_(flood) {
    fd_ = bound_udp_socket("127.0.0.1");
    sockaddr_in sa{};
    socklen_t len = sizeof(sa);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port_ = ntohs(sa.sin_port);
    // Sockets for other source addresses are made here, where REQUIRE may fail.
    for (const auto& r : replies_)
      if (r.from_ip != "127.0.0.1" && !senders_.count(r.from_ip))
        senders_[r.from_ip] = bound_udp_socket(r.from_ip);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeSsdpResponder() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    for (auto& [ip, fd] : senders_) ::close(fd);
  }
  FakeSsdpResponder(const FakeSsdpResponder&) = delete;
  FakeSsdpResponder& operator=(const FakeSsdpResponder&) = delete;

  GatewayInfo gateway(LogFn log = {}) const {
    GatewayInfo gw;
    gw.gateway_ip = ip("127.0.0.1");
    gw.local_ip = ip("127.0.0.1");
    gw.ssdp_port = port_;
    gw.log = std::move(log);
    return gw;
  }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  void run() {
    bool answered = false;
    sockaddr_in client{};
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5) == 1) {
        char buf[2048];
        sockaddr_in from{};
        socklen_t len = sizeof(from);
        ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0) {
          std::lock_guard<std::mutex> lock(mutex_);
          requests_.emplace_back(buf, static_cast<std::size_t>(n));
        }
        if (n > 0 && !answered) {
          answered = true;
          client = from;
          for (const auto& r : replies_) {
            int fd = r.from_ip == "127.0.0.1" ? fd_ : senders_.at(r.from_ip);
            ::sendto(fd, r.payload.data(), r.payload.size(), 0,
                     reinterpret_cast<const sockaddr*>(&client), sizeof(client));
          }
        }
      }
      if (flood_ && answered) {
        // Every datagram different, so that none is dropped as a duplicate.
        for (int i = 0; i < 50 && !stop_; ++i) {
          std::string junk = fmt::format("HTTP/1.1 200 OK\r\nnot a header {}\r\n\r\n", sent_++);
          ::sendto(fd_, junk.data(), junk.size(), 0, reinterpret_cast<const sockaddr*>(&client),
                   sizeof(client));
        }
      }
    }
  }

  std::vector<Reply> replies_;
  bool flood_;
  std::size_t sent_ = 0;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::map<std::string, int> senders_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

std::string answer(std::string_view st, std::string_view location) {
  return fmt::format(
      "HTTP/1.1 200 OK\r\n"
      "CACHE-CONTROL: max-age=120\r\n"
      "ST: {0}\r\n"
      "USN: uuid:aabbccdd-1111-2222-3333-444455556666::{0}\r\n"
      "EXT:\r\n"
      "SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\n"
      "LOCATION: {1}\r\n"
      "\r\n",
      st, location);
}

constexpr std::string_view kIgd2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2";

struct LogLines {
  std::mutex mutex;
  std::vector<std::string> lines;
  LogFn fn() {
    return [this](LogLevel, std::string_view text) {
      std::lock_guard<std::mutex> lock(mutex);
      lines.emplace_back(text);
    };
  }
  std::size_t count_containing(std::string_view needle) {
    std::lock_guard<std::mutex> lock(mutex);
    std::size_t n = 0;
    for (const auto& l : lines) n += l.find(needle) != std::string::npos;
    return n;
  }
};

Deadline in(std::chrono::milliseconds ms) { return Clock::now() + ms; }

}  // namespace

TEST_CASE("discovery returns the valid answer after garbage, strangers and hostile ones",
          "[ssdp][discovery]") {
  FakeSsdpResponder fake({
      {"complete garbage \x01\x02\x03"},
      {"NOTIFY * HTTP/1.1\r\nLOCATION: http://127.0.0.1:5000/x\r\n\r\n"},
      {answer("urn:schemas-upnp-org:device:MediaRenderer:1", "http://127.0.0.1:8080/dmr.xml")},
      {answer(kIgd2, "http://[::1]:5000/rootDesc.xml")},
      {answer(kIgd2, "http://127.0.0.2:5000/rootDesc.xml")},
      {answer(kIgd2, "http://evil.example:5000/rootDesc.xml")},
      {answer(kIgd2, "http://127.0.0.1:5000/rootDesc.xml")},
  });
  LogLines log;
  auto found = discover_igd(fake.gateway(log.fn()), in(5s));
  REQUIRE(found.ok());
  CHECK(found->location == "http://127.0.0.1:5000/rootDesc.xml");
  CHECK(found->url.host == "127.0.0.1");
  CHECK(found->url.port == 5000);
  CHECK(found->url.path == "/rootDesc.xml");
  CHECK(found->st == kIgd2);
  CHECK(found->server == "Debian/12 UPnP/1.1 MiniUPnPd/2.3.1");
  CHECK(found->from_ip == ip("127.0.0.1"));
  CHECK(found->elapsed < 5s);
  // Each ignored answer was logged: 2 malformed, 1 stranger, 3 hostile LOCATIONs.
  CHECK(log.count_containing("ignored") == 6);
  CHECK(log.count_containing("not an IGD") == 1);
  CHECK(log.count_containing("refused") == 3);
}

// The search target of each recorded M-SEARCH, checking the fixed headers on the way.
std::vector<std::string> search_targets(const std::vector<std::string>& requests) {
  std::vector<std::string> targets;
  for (const auto& r : requests) {
    CHECK_THAT(r, Catch::StartsWith("M-SEARCH * HTTP/1.1\r\n"));
    CHECK_THAT(r, Catch::Contains("\r\nMAN: \"ssdp:discover\"\r\n"));
    CHECK_THAT(r, Catch::Contains("\r\nMX: 1\r\n"));
    auto st = r.find("\r\nST: ");
    REQUIRE(st != std::string::npos);
    targets.push_back(r.substr(st + 6, r.find("\r\n", st + 6) - st - 6));
  }
  return targets;
}

TEST_CASE("discovery asks for IGD:1 and WANIPConnection:1 first, then for the :2 types too",
          "[ssdp][discovery]") {
  // Nobody answers: all three rounds go out, then discovery gives up (about 1.8 s).
  FakeSsdpResponder fake({});
  auto found = discover_igd(fake.gateway(), in(5s));
  REQUIRE_FALSE(found.ok());
  const auto targets = search_targets(fake.requests());
  const std::string igd1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1";
  const std::string igd2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2";
  const std::string wan1 = "urn:schemas-upnp-org:service:WANIPConnection:1";
  const std::string wan2 = "urn:schemas-upnp-org:service:WANIPConnection:2";
  // Unicast only (a loopback gateway): 2 in the first round, 4 in each later one.
  using Strings = std::vector<std::string>;
  REQUIRE(targets.size() == 10);
  CHECK(Strings(targets.begin(), targets.begin() + 2) == Strings{igd1, wan1});
  CHECK(Strings(targets.begin() + 2, targets.begin() + 6) == Strings{igd1, igd2, wan1, wan2});
  CHECK(Strings(targets.begin() + 6, targets.end()) == Strings{igd1, igd2, wan1, wan2});
}

TEST_CASE("discovery: the first answer ends the search after the first round's two datagrams",
          "[ssdp][discovery]") {
  FakeSsdpResponder fake({{answer(kIgd2, "http://127.0.0.1:5000/rootDesc.xml")}});
  auto found = discover_igd(fake.gateway(), in(5s));
  REQUIRE(found.ok());
  // Give the rest of the first round a moment to arrive at the fake.
  std::this_thread::sleep_for(50ms);
  CHECK(search_targets(fake.requests()) ==
        std::vector<std::string>{"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                                 "urn:schemas-upnp-org:service:WANIPConnection:1"});
}

TEST_CASE("discovery accepts an answer from another IP when LOCATION is on the gateway",
          "[ssdp][discovery]") {
  // An HA router pair: the standby answers, the description lives on the gateway.
  FakeSsdpResponder fake(
      {{answer("urn:schemas-upnp-org:service:WANIPConnection:1", "http://127.0.0.1:49000/igd.xml"),
        "127.0.0.2"}});
  auto found = discover_igd(fake.gateway(), in(5s));
  REQUIRE(found.ok());
  CHECK(found->from_ip == ip("127.0.0.2"));
  CHECK(found->url.port == 49000);
  CHECK(found->st == "urn:schemas-upnp-org:service:WANIPConnection:1");
}

TEST_CASE("discovery accepts LF-only answers with mixed-case headers", "[ssdp][discovery]") {
  FakeSsdpResponder fake(
      {{"HTTP/1.1 200 OK\n"
        "location: http://127.0.0.1:1780/desc.xml\n"
        "St: urn:schemas-upnp-org:device:InternetGatewayDevice:1\n"
        "\n"}});
  auto found = discover_igd(fake.gateway(), in(5s));
  REQUIRE(found.ok());
  CHECK(found->location == "http://127.0.0.1:1780/desc.xml");
}

TEST_CASE("discovery with only hostile answers times out naming the refusal", "[ssdp][discovery]") {
  FakeSsdpResponder fake({{answer(kIgd2, "http://[::1]:5000/rootDesc.xml")}});
  auto start = Clock::now();
  auto found = discover_igd(fake.gateway(), in(400ms));
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().code == Errc::no_service);
  CHECK_THAT(found.error().message, Catch::Contains("no usable UPnP IGD answered M-SEARCH on "
                                                    "127.0.0.1"));
  CHECK_THAT(found.error().message, Catch::Contains("http://[::1]:5000/rootDesc.xml"));
  CHECK_THAT(found.error().message, Catch::Contains("refused"));
  CHECK(Clock::now() - start < 400ms + 3s);  // sanity bound only
}

TEST_CASE("discovery looks at a repeated answer once", "[ssdp][discovery]") {
  // Unicast and multicast M-SEARCHes both reach a real router: answers come in pairs.
  const std::string hostile = answer(kIgd2, "http://127.0.0.9:5000/rootDesc.xml");
  FakeSsdpResponder fake({{hostile}, {hostile}, {hostile}});
  LogLines log;
  auto found = discover_igd(fake.gateway(log.fn()), in(300ms));
  REQUIRE_FALSE(found.ok());
  CHECK_THAT(found.error().message, Catch::Contains("http://127.0.0.9:5000/rootDesc.xml"));
  CHECK(log.count_containing("ignored: LOCATION") == 1);
  CHECK(log.count_containing("2 duplicate answers ignored") == 1);
}

TEST_CASE("discovery with no answer says so", "[ssdp][discovery]") {
  FakeSsdpResponder fake({});
  auto found = discover_igd(fake.gateway(), in(300ms));
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().code == Errc::no_service);
  CHECK_THAT(found.error().message,
             Catch::StartsWith("no UPnP IGD answered M-SEARCH on 127.0.0.1 within"));
  CHECK(fake.requests().size() >= 4);  // the fake did hear us
}

TEST_CASE("discovery with only other devices says they were ignored", "[ssdp][discovery]") {
  FakeSsdpResponder fake(
      {{answer("urn:schemas-upnp-org:device:MediaServer:1", "http://127.0.0.1:8200/desc.xml")},
       {answer("upnp:rootdevice", "http://127.0.0.1:8200/desc.xml")}});
  auto found = discover_igd(fake.gateway(), in(300ms));
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().code == Errc::no_service);
  CHECK_THAT(found.error().message, Catch::Contains("2 from other device types"));
}

TEST_CASE("a flood of answers cannot stretch discovery past the deadline", "[ssdp][discovery]") {
  FakeSsdpResponder fake({}, /*flood=*/true);
  LogLines log;
  auto start = Clock::now();
  auto found = discover_igd(fake.gateway(log.fn()), in(400ms));
  auto took = Clock::now() - start;
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().code == Errc::no_service);
  CHECK_THAT(found.error().message, Catch::Contains("malformed"));
  CHECK(took < 400ms + 3s);  // sanity bound only
  // The log is bounded too: the first few are logged, then one line says so.
  CHECK(log.count_containing("ignored") <= 33);
  CHECK(log.count_containing("further ignored answers are not logged") == 1);
}

TEST_CASE("discovery refuses a gateway that is not an IPv4 address", "[ssdp][discovery]") {
  GatewayInfo gw;
  gw.gateway_ip = ip("2001:db8::1");
  auto found = discover_igd(gw, in(300ms));
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().code == Errc::usage);
}
