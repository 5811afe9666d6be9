#include <catch2/catch.hpp>

#include <string>

#include "codec/url_check.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

constexpr const char* kGateway = "192.168.1.1";
constexpr const char* kLocal = "192.168.1.100";

Result<HttpUrl> check(std::string_view url, bool lan = false) {
  return check_device_url(url, kGateway, lan, kLocal, 24, "LOCATION");
}

}  // namespace

TEST_CASE("parse_ipv4_strict accepts dotted quads only", "[url]") {
  CHECK(parse_ipv4_strict("192.168.1.1") == 0xc0a80101u);
  CHECK(parse_ipv4_strict("0.0.0.0") == 0u);
  CHECK(parse_ipv4_strict("255.255.255.255") == 0xffffffffu);
  const char* const kBad[] = {"",           "1.2.3",    "1.2.3.4.5",  "256.1.1.1",
                              "0177.0.0.1", "01.2.3.4", "0x7f.0.0.1", "2130706433",
                              "127.1",      "1.2.3.4 ", " 1.2.3.4",   "1..2.3",
                              "1.2.3.",     "1.2.3.-4", "1.2.3.4/24", "1111.1.1.1"};
  for (const char* text : kBad) {
    INFO(text);
    CHECK_FALSE(parse_ipv4_strict(text).has_value());
  }
}

TEST_CASE("parse_http_url splits host, port and path", "[url]") {
  auto u = parse_http_url("http://192.168.1.1:5000/rootDesc.xml");
  REQUIRE(u.ok());
  CHECK(u->host == "192.168.1.1");
  CHECK(u->port == 5000);
  CHECK(u->path == "/rootDesc.xml");
  CHECK(u->to_string() == "http://192.168.1.1:5000/rootDesc.xml");

  auto d = parse_http_url("HTTP://10.0.0.138");
  REQUIRE(d.ok());
  CHECK(d->port == 80);
  CHECK(d->path == "/");

  auto q = parse_http_url("http://10.0.0.138:49000?x=1");
  REQUIRE(q.ok());
  CHECK(q->port == 49000);
  CHECK(q->path == "/?x=1");

  auto ctl = parse_http_url("http://192.168.1.1:5000/ctl/IPConn");
  REQUIRE(ctl.ok());
  CHECK(ctl->path == "/ctl/IPConn");
}

TEST_CASE("parse_http_url refuses what is not http://IPv4[:port]/path", "[url]") {
  const char* const kBad[] = {
      "https://192.168.1.1/x",             // other scheme
      "ftp://192.168.1.1/x",               //
      "//192.168.1.1/x",                   // no scheme
      "192.168.1.1:5000/x",                //
      "http://",                           // empty host
      "http:///x",                         //
      "http://:5000/x",                    //
      "http://[::1]:5000/x",               // IPv6 literal
      "http://[::ffff:127.0.0.1]:5000/x",  // IPv4-mapped loopback
      "http://[fe80::1%25eth0]/x",         //
      "http://user@192.168.1.1/x",         // userinfo
      "http://user:pw@192.168.1.1/x",      //
      "http://192.168.1.1:5000@127.0.0.1/x",
      "http://router.lan:5000/x",            // DNS name
      "http://localhost/x",                  //
      "http://2130706433/x",                 // integer form of 127.0.0.1
      "http://0177.0.0.1/x",                 // octal form
      "http://127.1/x",                      // short form
      "http://192.168.1.1:/x",               // empty port
      "http://192.168.1.1:0/x",              // zero port
      "http://192.168.1.1:65536/x",          // port too large
      "http://192.168.1.1:123456/x",         //
      "http://192.168.1.1:50a0/x",           // garbage port
      "http://192.168.1.1:-1/x",             //
      "http://192.168.1.1:80:81/x",          //
      "http://192.168.1.1/x#frag",           // fragment
      "http://192.168.1.1/a b",              // space
      "http://192.168.1.1/a\r\nHost: evil",  // header injection
      "http://192.168.1.1\\@127.0.0.1/",     // backslash
      "http://192.168.1.1/\xc3\xa9",         // non-ASCII
      "garbage",                             //
      "",                                    //
  };
  for (const char* url : kBad) {
    INFO(url);
    auto r = parse_http_url(url);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.error().code == Errc::no_service);
  }
}

TEST_CASE("overlong URLs are refused", "[url]") {
  std::string base = "http://192.168.1.1:5000/";
  std::string at_limit = base + std::string(kMaxDeviceUrlLength - base.size(), 'a');
  CHECK(parse_http_url(at_limit).ok());
  auto r = parse_http_url(at_limit + "a");
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("longer than 1024"));
  // The message quotes only an excerpt of the URL.
  CHECK(r.error().message.size() < 400);
}

TEST_CASE("check_device_url accepts the gateway", "[url]") {
  auto r = check("http://192.168.1.1:5000/rootDesc.xml");
  REQUIRE(r.ok());
  CHECK(r->host == "192.168.1.1");
  CHECK(r->port == 5000);
  CHECK(check("http://192.168.1.1/ctl/IPConn", true).ok());
}

TEST_CASE("check_device_url refuses hostile hosts", "[url]") {
  struct Case {
    const char* url;
    const char* reason;
  };
  const Case kCases[] = {
      {"http://127.0.0.1:5000/x", "loopback"},
      {"http://127.53.0.1/x", "loopback"},
      {"http://[::1]:5000/x", "IPv6"},
      {"http://[::ffff:127.0.0.1]:5000/x", "IPv6"},
      {"http://router.example.com/x", "not an IPv4 literal"},
      {"http://203.0.113.7/x", "not on the gateway"},        // a public host
      {"http://192.168.2.1/x", "not on the gateway"},        // another subnet
      {"http://192.168.1.50:8080/x", "not on the gateway"},  // the LAN, not allowed here
      {"http://169.254.169.254/latest/meta-data", "link-local"},
      {"http://0.0.0.0:5000/x", "0.0.0.0"},
      {"http://239.255.255.250:1900/x", "multicast"},
      {"http://255.255.255.255/x", "broadcast"},
      {"http://admin@192.168.1.1/x", "userinfo"},
  };
  for (const auto& c : kCases) {
    INFO(c.url);
    auto r = check(c.url);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::no_service);
    CHECK_THAT(r.error().message, Catch::Contains(c.reason));
    CHECK_THAT(r.error().message, Catch::StartsWith("LOCATION "));
    CHECK_THAT(r.error().message, Catch::EndsWith(": refused"));
  }
}

TEST_CASE("the refusal names the URL and the gateway", "[url]") {
  auto r = check("http://127.0.0.1:5000/x");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message ==
        "LOCATION http://127.0.0.1:5000/x is a loopback address, not the gateway "
        "192.168.1.1: refused");
}

TEST_CASE("with the LAN option, hosts in the local subnet are accepted", "[url]") {
  auto r = check("http://192.168.1.50:8080/desc.xml", true);
  REQUIRE(r.ok());
  CHECK(r->host == "192.168.1.50");

  // Still refused: another subnet, a public host, loopback, our own address, and the
  // subnet's network and broadcast addresses.
  CHECK_FALSE(check("http://192.168.2.50/x", true).ok());
  CHECK_FALSE(check("http://8.8.8.8/x", true).ok());
  CHECK_FALSE(check("http://127.0.0.1/x", true).ok());
  CHECK_FALSE(check("http://169.254.1.1/x", true).ok());
  auto self = check("http://192.168.1.100:22/x", true);
  REQUIRE_FALSE(self.ok());
  CHECK_THAT(self.error().message, Catch::Contains("own address"));
  CHECK_FALSE(check("http://192.168.1.255/x", true).ok());
  CHECK_FALSE(check("http://192.168.1.0/x", true).ok());

  // A silly prefix does not turn the whole internet into "the LAN".
  CHECK_FALSE(check_device_url("http://8.8.8.8/x", kGateway, true, kLocal, 0).ok());
  CHECK_FALSE(check_device_url("http://8.8.8.8/x", kGateway, true, kLocal, 33).ok());
  CHECK_FALSE(check_device_url("http://192.168.1.50/x", kGateway, true, "", 24).ok());
}

TEST_CASE("a loopback gateway (a test fake) is accepted only as itself", "[url]") {
  CHECK(check_device_url("http://127.0.0.1:4000/x", "127.0.0.1", false, "127.0.0.1", 8).ok());
  auto other = check_device_url("http://127.0.0.2:4000/x", "127.0.0.1", false, "127.0.0.1", 8);
  REQUIRE_FALSE(other.ok());
  CHECK_THAT(other.error().message, Catch::Contains("loopback"));
  CHECK_FALSE(check_device_url("http://127.0.0.2:4000/x", "127.0.0.1", true, "127.0.0.1", 8).ok());
}

TEST_CASE("a gateway that is no single host never matches", "[url]") {
  CHECK_FALSE(check_device_url("http://0.0.0.0/x", "0.0.0.0", false, kLocal, 24).ok());
  CHECK_FALSE(
      check_device_url("http://239.255.255.250/x", "239.255.255.250", false, kLocal, 24).ok());
  auto bad_gw = check_device_url("http://192.168.1.1/x", "router", false, kLocal, 24);
  REQUIRE_FALSE(bad_gw.ok());
  CHECK(bad_gw.error().code == Errc::internal);
}

TEST_CASE("printable_excerpt escapes and cuts untrusted text", "[url]") {
  CHECK(printable_excerpt("plain text") == "plain text");
  CHECK(printable_excerpt("a\x1b[31mb\r\n") == "a\\x1b[31mb\\x0d\\x0a");
  CHECK(printable_excerpt("back\\slash") == "back\\x5cslash");
  CHECK(printable_excerpt("\xff") == "\\xff");
  CHECK(printable_excerpt(std::string(300, 'x'), 10) == "xxxxxxxxxx...");
  // Messages built from hostile URLs carry no raw control bytes.
  auto r = check("http://192.168.1.1/\x1b]0;pwned\x07");
  REQUIRE_FALSE(r.ok());
  for (char c : r.error().message) CHECK(static_cast<unsigned char>(c) >= 0x20);
}
