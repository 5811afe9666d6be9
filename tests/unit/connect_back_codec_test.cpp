// The connect-back control protocol: golden lines, every rejection, the size property
// behind "no amplification", and the /proc/net/tcp reader used for the handshake proof.
#include <catch2/catch.hpp>

#include <string>

#include "codec/connect_back_codec.hpp"
#include "net/tcp_table.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace cb = porthole::detail::connect_back;
using porthole::Errc;

namespace {
const std::string kToken = "0123456789abcdef0123456789abcdef";
}

TEST_CASE("connect-back request: golden line and round trip", "[connect_back]") {
  auto line = cb::encode_request({ip("203.0.113.2"), 41000, kToken});
  REQUIRE(line.ok());
  CHECK(*line == "PORTHOLE/1 CONNECT 203.0.113.2 41000 " + kToken + "\n");
  auto back = cb::decode_request(*line);
  REQUIRE(back.ok());
  CHECK(back->ip == "203.0.113.2");
  CHECK(back->port == 41000);
  CHECK(back->token == kToken);
  // CRLF and a missing final newline are accepted too.
  CHECK(cb::decode_request("PORTHOLE/1 CONNECT 1.2.3.4 1 " + kToken + "\r\n").ok());
  CHECK(cb::decode_request("PORTHOLE/1 CONNECT 1.2.3.4 65535 " + kToken).ok());
}

TEST_CASE("connect-back request: what is refused, with a reason", "[connect_back]") {
  const char* bad[] = {
      "",
      "GET / HTTP/1.1\r\n",
      "PORTHOLE/2 CONNECT 1.2.3.4 80 0123456789abcdef\n",
      "PORTHOLE/1 LISTEN 1.2.3.4 80 0123456789abcdef\n",
      "PORTHOLE/1 CONNECT example.com 80 0123456789abcdef\n",
      "PORTHOLE/1 CONNECT 1.2.3 80 0123456789abcdef\n",
      "PORTHOLE/1 CONNECT 1.2.3.4 0 0123456789abcdef\n",
      "PORTHOLE/1 CONNECT 1.2.3.4 65536 0123456789abcdef\n",
      "PORTHOLE/1 CONNECT 1.2.3.4 080 0123456789abcdef\n",
      "PORTHOLE/1 CONNECT 1.2.3.4 -1 0123456789abcdef\n",
      "PORTHOLE/1 CONNECT 1.2.3.4 80 0123456789abcde\n",   // 15 digits
      "PORTHOLE/1 CONNECT 1.2.3.4 80 0123456789ABCDEF\n",  // uppercase
      "PORTHOLE/1 CONNECT 1.2.3.4 80 0123456789abcdeg\n",
      "PORTHOLE/1 CONNECT 1.2.3.4 80 0123456789abcdef extra\n",
      "PORTHOLE/1  CONNECT 1.2.3.4 80 0123456789abcdef\n",
  };
  for (const char* text : bad) {
    INFO(text);
    auto r = cb::decode_request(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::usage);
    CHECK_FALSE(r.error().message.empty());
  }
  CHECK_FALSE(cb::decode_request("PORTHOLE/1 CONNECT 1.2.3.4 80 " + std::string(65, 'a')).ok());
  CHECK_FALSE(cb::decode_request(std::string(cb::kMaxLine + 1, 'a')).ok());
  CHECK_FALSE(
      cb::decode_request(std::string("PORTHOLE/1 CONNECT 1.2.3.4 80 ") + kToken + '\0' + "\n")
          .ok());
  CHECK_FALSE(cb::decode_request(std::string("PORTHOLE/1 CONNECT 1.2.3.4 80 \xff") + kToken).ok());
  CHECK_FALSE(cb::encode_request({ip("1.2.3.4"), 0, kToken}).ok());
  CHECK_FALSE(cb::encode_request({ip("2001:db8::1"), 80, kToken}).ok());  // IPv4 only
  CHECK_FALSE(cb::encode_request({ip("1.2.3.4"), 80, "short"}).ok());
}

TEST_CASE("connect-back: the token line is always shorter than the request", "[connect_back]") {
  // No amplification: what the server sends to the target is smaller than what the
  // requester had to send, for the shortest request and the longest token.
  for (std::size_t n : {cb::kMinToken, cb::kMaxToken}) {
    cb::Request r{ip("1.2.3.4"), 1, std::string(n, 'a')};
    auto line = cb::encode_request(r);
    REQUIRE(line.ok());
    CHECK(cb::token_line(r).size() < line->size());
    CHECK(cb::token_line(r) == std::string(n, 'a') + "\n");
  }
  CHECK(
      cb::encode_request({ip("255.255.255.255"), 65535, std::string(cb::kMaxToken, 'f')})->size() <=
      cb::kMaxLine);
}

TEST_CASE("connect-back reply: golden lines and round trip", "[connect_back]") {
  CHECK(cb::encode_reply({cb::Outcome::connected, ip("203.0.113.2"), "198.51.100.10:40001"}) ==
        "PORTHOLE/1 connected 203.0.113.2 198.51.100.10:40001\n");
  CHECK(cb::encode_reply({cb::Outcome::busy, ip("203.0.113.2"), ""}) ==
        "PORTHOLE/1 busy 203.0.113.2 -\n");
  // Hostile detail text is made printable and bounded; a bad observed address is not sent.
  auto odd = cb::encode_reply(
      {cb::Outcome::denied, ip("2001:db8::1"), "a\nb\x01" + std::string(300, 'x')});
  CHECK(odd.rfind("PORTHOLE/1 denied 0.0.0.0 a?b?", 0) == 0);
  CHECK(odd.size() <= cb::kMaxLine);
  CHECK(odd.find('\n') == odd.size() - 1);
  for (auto o : {cb::Outcome::connected, cb::Outcome::refused, cb::Outcome::timeout,
                 cb::Outcome::unreachable, cb::Outcome::denied, cb::Outcome::busy,
                 cb::Outcome::bad_request}) {
    auto line = cb::encode_reply({o, ip("198.51.100.20"), "some detail: here"});
    auto back = cb::decode_reply(line);
    REQUIRE(back.ok());
    CHECK(back->outcome == o);
    CHECK(back->observed_ip == "198.51.100.20");
    CHECK(back->detail == "some detail: here");
  }
  CHECK(cb::decode_reply("PORTHOLE/1 connected 1.2.3.4 -\n")->detail.empty());
  CHECK_FALSE(cb::decode_reply("PORTHOLE/1 maybe 1.2.3.4 -\n").ok());
  CHECK_FALSE(cb::decode_reply("PORTHOLE/1 connected nowhere -\n").ok());
  CHECK_FALSE(cb::decode_reply("PORTHOLE/1 connected 1.2.3.4\n").ok());
  CHECK_FALSE(cb::decode_reply("HTTP/1.1 400 Bad Request\r\n").ok());
}

TEST_CASE("connect-back: line_end finds the first newline only", "[connect_back]") {
  CHECK_FALSE(cb::line_end("PORTHOLE/1 CONN").has_value());
  CHECK(cb::line_end("ab\ncd\n") == 2u);
  CHECK(cb::line_end("\n") == 0u);
}

TEST_CASE("TCP table: a connection is found by local port and remote endpoint", "[tcp_table]") {
  // Captured format of /proc/net/tcp: 192.168.1.100:41000 <- 198.51.100.10:40001
  // established (01), and a listener (0A) on 41000.
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n"
      "   0: 00000000:A028 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
      "       0 1 1 0000000000000000 100 0 0 10 0\n"
      "   1: 6401A8C0:A028 0A6433C6:9C41 01 00000000:00000000 00:00000000 00000000     0 "
      "       0 2 1 0000000000000000 20 4 30 10 -1\n";
  using porthole::detail::tcp_connection_listed_in;
  CHECK(tcp_connection_listed_in(table, 41000, "198.51.100.10", 40001));
  CHECK_FALSE(tcp_connection_listed_in(table, 41000, "198.51.100.10", 40002));
  CHECK_FALSE(tcp_connection_listed_in(table, 41001, "198.51.100.10", 40001));
  CHECK_FALSE(tcp_connection_listed_in(table, 41000, "0.0.0.0", 0));  // the listener
  CHECK_FALSE(tcp_connection_listed_in("garbage\n1: zz:yy 00 q\n", 1, "0.0.0.0", 0));
}
