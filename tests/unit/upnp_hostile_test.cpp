// UpnpClient against hostile and broken IGDs: FakeIgd (fake_igd.hpp) answers
// the description or one SOAP action the way a hostile router would. Each case checks
// a clear error, that it comes by the deadline (plus a generous margin), that memory
// stays bounded, and that the same router answering normally again still works.
//
// Memory: the client runs in a forked child (the fake keeps serving from this process's
// thread), which resets its peak RSS (/proc/self/clear_refs, "5") before the call and
// reports VmHWM after it. Without the bounds, an endless chunked body on loopback grows
// by hundreds of MB within the deadline.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fake_igd.hpp"
#include "forked_child.hpp"
#include "net/http_get.hpp"
#include "proto/upnp_client.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

using namespace porthole;
using namespace porthole::detail;
using porthole::test::FakeIgd;
using Hostile = FakeIgd::Hostile;
using namespace std::chrono_literals;

namespace {

constexpr auto kDeadline = 1500ms;
constexpr auto kMargin = 1000ms;  // scheduling on a loaded 2-core CI machine
constexpr long kMaxGrowthKib = 32 * 1024;

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
  return -1;
}

struct ChildRun {
  bool finished = false;
  std::string text;           // what the child's body returned
  long peak_growth_kib = -1;  // VmHWM after the body minus VmRSS before it
  std::chrono::milliseconds elapsed{0};
};

// Runs body in a forked child, measuring its time and its peak RSS growth.
ChildRun run_in_child(const std::function<std::string()>& body, std::chrono::seconds limit) {
  auto child = porthole::test::run_forked(
      [&] {
        long before = status_kib("VmRSS:");
        bool reset = false;
        {
          std::ofstream clear("/proc/self/clear_refs");
          clear << "5";  // resets VmHWM to the current RSS (proc(5))
          clear.flush();
          reset = clear.good();
        }
        auto start = Clock::now();
        std::string text = body();
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        long growth = reset ? status_kib("VmHWM:") - before : -1;
        return fmt::format("{}\n{}\n{}", growth, ms.count(), text);
      },
      limit);
  ChildRun run;
  run.finished = child.finished;
  std::istringstream lines(child.text);
  long ms = 0;
  lines >> run.peak_growth_kib >> ms;
  run.elapsed = std::chrono::milliseconds(ms);
  lines.ignore(1);
  std::getline(lines, run.text, '\0');
  return run;
}

// "code|protocol_code|message" of a failed call, or "ok|..." for a success.
template <class T>
std::string outcome(const Result<T>& r, std::string ok_text = {}) {
  if (r) return "ok|0|" + ok_text;
  return fmt::format("{}|{}|{}", static_cast<int>(r.error().code), r.error().protocol_code,
                     r.error().message);
}

MapParams wanted(std::uint16_t port) { return porthole::test::loopback_map_request(port); }

// The checks every hostile case shares: finished, by the deadline, within the memory cap.
void check_bounded(const ChildRun& run) {
  REQUIRE(run.finished);
  CHECK(run.elapsed <= kDeadline + kMargin);
  INFO("peak RSS growth " << run.peak_growth_kib << " KiB");
  CHECK(run.peak_growth_kib >= 0);  // clear_refs worked: the measurement means something
  CHECK(run.peak_growth_kib < kMaxGrowthKib);
}

// The router answering normally again: a fresh client probes and maps.
void check_router_still_works(FakeIgd& igd, const std::string& request) {
  igd.misbehave(request, Hostile::none);
  UpnpClient client(igd.gateway());
  auto out = client.map(wanted(5000), Clock::now() + 10s);
  REQUIRE(out.ok());
  CHECK(out->mapping.external_port == 5000);
  CHECK(out->mapping.external_ip == ip("203.0.113.7"));
}

struct HostileCase {
  Hostile how;
  Errc code;
  std::string message;  // part of the error message
};

// The hostile HTTP answers, and what porthole must say to each (max_body: the bound).
std::vector<HostileCase> hostile_http_cases(std::size_t max_body) {
  return {{Hostile::drip, Errc::timeout, "cut off at the deadline"},
          {Hostile::headers_never_end, Errc::timeout, "header block incomplete"},
          {Hostile::endless_chunks, Errc::internal,
           fmt::format("chunked body longer than {} bytes", max_body)},
          {Hostile::chunk_0x80000000, Errc::internal, "0x80000000 or more"},
          {Hostile::content_length_2e9, Errc::internal,
           fmt::format("Content-Length 2000000000 is more than the {} bytes allowed", max_body)}};
}

}  // namespace

TEST_CASE("hostile IGD: a bad SOAP answer is cut off, bounded, with a clear error",
          "[upnp][hostile]") {
  const auto c = GENERATE(from_range(hostile_http_cases(kMaxSoapReplyBytes)));
  const std::string action = GENERATE("GetExternalIPAddress", "AddPortMapping");
  INFO(action << ", case " << static_cast<int>(c.how));
  FakeIgd igd;
  igd.misbehave(action, c.how);
  auto run = run_in_child(
      [&] {
        UpnpClient client(igd.gateway());
        return outcome(client.map(wanted(5000), Clock::now() + kDeadline));
      },
      10s);
  check_bounded(run);
  CHECK_THAT(run.text, Catch::StartsWith(fmt::format("{}|", static_cast<int>(c.code))));
  CHECK_THAT(run.text, Catch::Contains(c.message) && Catch::Contains("UPnP " + action) &&
                           Catch::Contains("POST http://127.0.0.1:"));
  CHECK(igd.requests(action).size() == 1);
  check_router_still_works(igd, action);
}

TEST_CASE("hostile IGD: a bad description is cut off, bounded, with a clear error",
          "[upnp][hostile]") {
  const auto c = GENERATE(from_range(hostile_http_cases(kDefaultMaxHttpBody)));
  INFO("case " << static_cast<int>(c.how));
  FakeIgd igd;
  igd.misbehave("GET", c.how);
  auto run = run_in_child(
      [&] {
        UpnpClient client(igd.gateway());
        return outcome(client.probe(Clock::now() + kDeadline));
      },
      10s);
  check_bounded(run);
  CHECK_THAT(run.text, Catch::StartsWith(fmt::format("{}|", static_cast<int>(c.code))));
  CHECK_THAT(run.text, Catch::Contains(c.message) && Catch::Contains("GET http://127.0.0.1:"));
  // The description never arrived: no SOAP request was made.
  CHECK(igd.requests("GetExternalIPAddress").empty());
  check_router_still_works(igd, "GET");
}

namespace {

std::string http_answer(std::string_view status, std::string_view body) {
  return fmt::format("HTTP/1.1 {}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{}",
                     status, body.size(), body);
}

std::string ip_answer(std::string_view inner) {
  return http_answer(
      "200 OK",
      fmt::format("<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/"
                  "soap/envelope/\"><s:Body><u:GetExternalIPAddressResponse xmlns:u=\"urn:"
                  "schemas-upnp-org:service:WANIPConnection:2\">{}",
                  inner));
}

}  // namespace

TEST_CASE("hostile IGD: malformed and truncated SOAP XML gives no external address",
          "[upnp][hostile]") {
  const std::string inner = GENERATE(
      as<std::string>{},
      "<NewExternalIPAddress><![CDATA[",             // CDATA at the end
      "<NewExternalIPAddress><![CDATA[203.0.113.7",  // CDATA never closed
      "<a:",                                         // a prefix, then the end
      "<NewExternalIPAddress",                       // a name, then the end
      "<" + std::string(200, 'N') + ">203.0.113.7</" + std::string(200, 'N') + ">",
      "<NewExternalIPAddress>" + std::string(5000, '9') + "</NewExternalIPAddress>",
      "<NewExternalIPAddress>127.0.0.1</NewExternalIPAddress>",  // loopback
      "<NewExternalIPAddress>0.0.0.0</NewExternalIPAddress>",
      "<NewExternalIPAddress>203.0.113.7\x1b[2J</NewExternalIPAddress>", std::string(60000, '<'));
  INFO(inner.substr(0, 80));
  FakeIgd igd;
  igd.misbehave("GetExternalIPAddress", Hostile::raw, ip_answer(inner));
  UpnpClient client(igd.gateway());
  const auto start = Clock::now();
  auto info = client.probe(Clock::now() + kDeadline);
  CHECK(Clock::now() - start <= kDeadline + kMargin);
  REQUIRE(info.ok());  // the service exists, it just names no usable address
  CHECK(!info->external_ip.has_value());
}

TEST_CASE("hostile IGD: SOAP faults that are not UPnP errors are clear errors", "[upnp][hostile]") {
  struct Case {
    std::string answer;
    Errc code;
    int protocol_code;
    const char* message;
  };
  const auto fault = [](std::string_view code) {
    return http_answer("500 Internal Server Error",
                       fmt::format("<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>"
                                   "{}</errorCode></UPnPError></detail></s:Fault></s:Body>"
                                   "</s:Envelope>",
                                   code));
  };
  const auto c = GENERATE_COPY(
      Case{fault("899"), Errc::refused, 899, "(899)"},  // unknown: shown with its code
      Case{fault("12345678901234567890"), Errc::internal, 0, "not a UPnP error code"},
      Case{fault("0"), Errc::internal, 0, "not a UPnP error code"},
      Case{fault("seven"), Errc::internal, 0, "'seven'"},
      Case{http_answer("500 Internal Server Error", "<html>oops</html>"), Errc::internal, 500,
           "HTTP status 500 without a UPnP errorCode"},
      Case{http_answer("404 Not Found", ""), Errc::no_service, 404, "HTTP status 404"},
      Case{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", Errc::internal, 0,
           "connection closed after 5 of 100 body bytes"},
      Case{"SSH-2.0-OpenSSH\r\n\r\n", Errc::internal, 0, "not an HTTP/1.x answer"});
  INFO(c.answer.substr(0, 60));
  FakeIgd igd;
  igd.misbehave("AddPortMapping", Hostile::raw, c.answer);
  UpnpClient client(igd.gateway());
  auto out = client.map(wanted(5000), Clock::now() + kDeadline);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == c.code);
  CHECK(out.error().protocol_code == c.protocol_code);
  CHECK_THAT(out.error().message, Catch::Contains(c.message));
  CHECK(igd.requests("AddPortMapping").size() == 1);  // no retry on a broken answer
}

TEST_CASE("hostile IGD: porthole never sends SUBSCRIBE, only GET and the SOAP actions",
          "[upnp][hostile]") {
  FakeIgd igd;
  igd.add_entry({"TCP", 6000, "10.0.0.9", 6000, "someone else", 0});
  UpnpClient client(igd.gateway());
  const auto d = Clock::now() + 10s;
  REQUIRE(client.probe(d).ok());
  REQUIRE(client.map(wanted(5000), d).ok());
  REQUIRE(client.list(d).ok());
  Mapping m;
  m.transport = Transport::tcp;
  m.internal_ip = ip("127.0.0.1");
  m.internal_port = 5000;
  m.external_port = 5000;
  REQUIRE(client.unmap(m, Nonce{}, d).ok());
  const auto requests = igd.requests();
  CHECK(requests.size() >= 6);
  for (const auto& r : requests) {
    INFO(r.action);
    CHECK(r.action != "SUBSCRIBE");
    CHECK((r.action == "GET" || r.action == "GetExternalIPAddress" ||
           r.action == "GetSpecificPortMappingEntry" || r.action == "AddPortMapping" ||
           r.action == "GetGenericPortMappingEntry" || r.action == "GetListOfPortMappings" ||
           r.action == "DeletePortMapping"));
  }
}

TEST_CASE("UPnP: descriptions with XML specials reach the router intact", "[upnp][fake_igd]") {
  // miniupnpc wrote them unescaped: "a<b" made a request no router could parse.
  FakeIgd igd;
  UpnpClient client(igd.gateway());
  MapParams p = wanted(5000);
  p.description = "R&D <web> \"x\"";
  REQUIRE(client.map(p, Clock::now() + 10s).ok());
  auto adds = igd.requests("AddPortMapping");
  REQUIRE(adds.size() == 1);
  // The fake does not decode entities: it shows what went over the wire.
  CHECK(adds[0].arg("NewPortMappingDescription") == "R&amp;D &lt;web&gt; &quot;x&quot;");
}

TEST_CASE("read_soap_reply: miniupnpd's answers, and faults as routers write them",
          "[upnp][soap]") {
  // Bodies of miniupnpd 2.3.1's answers in the lab (fuzz/corpus/soap_reply/lab_*).
  const std::string open =
      "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/"
      "envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>";
  const std::string close = "</s:Body></s:Envelope>\r\n";
  auto ok = read_soap_reply(
      open +
          "<u:GetExternalIPAddressResponse xmlns:u=\"urn:schemas-upnp-org:service:"
          "WANIPConnection:2\"><NewExternalIPAddress>203.0.113.2</NewExternalIPAddress>"
          "</u:GetExternalIPAddressResponse>" +
          close,
      200);
  REQUIRE(ok.ok());
  CHECK(ok->fault == 0);
  CHECK(ok->value("NewExternalIPAddress") == std::optional<std::string>("203.0.113.2"));
  CHECK_FALSE(ok->value("NewInternalClient").has_value());

  const std::string code = GENERATE(as<std::string>{}, "718", " 718 ", "\r\n718\t");
  auto fault = read_soap_reply(
      open +
          "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
          "<detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>" +
          code +
          "</errorCode><errorDescription>ConflictInMappingEntry</errorDescription>"
          "</UPnPError></detail></s:Fault>" +
          close,
      500);
  REQUIRE(fault.ok());
  CHECK(fault->fault == 718);

  // Some routers send the fault with status 200: the errorCode decides.
  auto in_200 = read_soap_reply("<errorCode>606</errorCode>", 200);
  REQUIRE(in_200.ok());
  CHECK(in_200->fault == 606);

  auto too_big = read_soap_reply(std::string(kMaxSoapReplyBytes + 1, ' '), 200);
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.error().code == Errc::internal);
}
