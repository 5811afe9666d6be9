// PCP codec (RFC 6887): golden bytes, every response check of RFC 6887 s8.3, the epoch
// rule, the retransmission and renewal schedules.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/pcp_codec.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace pcp = porthole::detail::pcp;
using Bytes = std::vector<std::uint8_t>;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

const pcp::Nonce kNonce = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c};

pcp::MapRequest sample_request() {
  pcp::MapRequest r;
  r.client_ip = ip("192.168.1.100");
  r.lifetime = 7200;
  r.nonce = kNonce;
  r.protocol = pcp::iana::tcp;
  r.internal_port = 8080;
  r.suggested_external_port = 8080;
  return r;
}

// A MAP success as miniupnpd sends it (it rewrites the request buffer in place): the
// request's nonce/protocol/port, the assigned port 8081 and address 203.0.113.2.
Bytes map_success() {
  return {
      0x02, 0x81, 0x00, 0x00,  // version 2 | R=1, opcode 1 (MAP) | reserved | result 0
      0x00, 0x00, 0x1c, 0x20,  // lifetime 7200
      0x00, 0x00, 0x30, 0x39,  // epoch 12345
      0x00, 0x00, 0x00, 0x00,  // reserved (96 bits)
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0x00, 0x00,  //
      0x01, 0x02, 0x03, 0x04,  // mapping nonce (96 bits)
      0x05, 0x06, 0x07, 0x08,  //
      0x09, 0x0a, 0x0b, 0x0c,  //
      0x06, 0x00, 0x00, 0x00,  // protocol 6 (TCP) | reserved (24 bits)
      0x1f, 0x90, 0x1f, 0x91,  // internal port 8080 | assigned external port 8081
      0x00, 0x00, 0x00, 0x00,  // assigned external IP ::ffff:203.0.113.2
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0xff, 0xff,  //
      0xcb, 0x00, 0x71, 0x02,  //
  };
}

Bytes with_option(Bytes b, std::uint8_t code, std::uint16_t length, std::size_t data_bytes) {
  b.push_back(code);
  b.push_back(0x00);
  b.push_back(static_cast<std::uint8_t>(length >> 8));
  b.push_back(static_cast<std::uint8_t>(length & 0xff));
  for (std::size_t i = 0; i < data_bytes; ++i) b.push_back(static_cast<std::uint8_t>(0xa0 + i));
  return b;
}

std::string drop_reason(const Bytes& bytes) {
  auto r = pcp::decode_response(bytes);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

std::chrono::steady_clock::time_point at(double secs) {
  return std::chrono::steady_clock::time_point{} +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(secs));
}

}  // namespace

TEST_CASE("PCP MAP request: golden bytes, every field big-endian", "[pcp]") {
  const Bytes expected = {
      0x02, 0x01, 0x00, 0x00,  // version 2 | R=0, opcode 1 (MAP) | reserved (16 bits)
      0x00, 0x00, 0x1c, 0x20,  // requested lifetime 7200 = 0x00001c20, network order
      0x00, 0x00, 0x00, 0x00,  // client IP ::ffff:192.168.1.100
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0xff, 0xff,  //
      0xc0, 0xa8, 0x01, 0x64,  //
      0x01, 0x02, 0x03, 0x04,  // mapping nonce (96 bits)
      0x05, 0x06, 0x07, 0x08,  //
      0x09, 0x0a, 0x0b, 0x0c,  //
      0x06, 0x00, 0x00, 0x00,  // protocol 6 (TCP) | reserved (24 bits)
      0x1f, 0x90, 0x1f, 0x90,  // internal port 8080 | suggested external port 8080
      0x00, 0x00, 0x00, 0x00,  // suggested external IP: none = IPv4 all-zeros
      0x00, 0x00, 0x00, 0x00,  // ::ffff:0.0.0.0 (RFC 6887 s5, s11.1)
      0x00, 0x00, 0xff, 0xff,  //
      0x00, 0x00, 0x00, 0x00,  //
  };
  auto encoded = pcp::encode_map_request(sample_request());
  REQUIRE(encoded.ok());
  CHECK(encoded->size() == pcp::kMapMessageSize);
  CHECK(*encoded == expected);
  // libplum's bug: lifetime in host byte order would put 0x20 0x1c first on x86.
  CHECK((*encoded)[4] == 0x00);
  CHECK((*encoded)[7] == 0x20);
}

TEST_CASE("PCP MAP request: suggested address, UDP, delete", "[pcp]") {
  auto req = sample_request();
  req.protocol = pcp::iana::udp;
  req.lifetime = 0x01020304;  // asymmetric, to see the byte order of all four bytes
  req.suggested_external_port = 0;
  req.suggested_external_ip = ip("203.0.113.2");
  auto encoded = pcp::encode_map_request(req);
  REQUIRE(encoded.ok());
  const Bytes& b = *encoded;
  CHECK(Bytes(b.begin() + 4, b.begin() + 8) == Bytes{0x01, 0x02, 0x03, 0x04});
  CHECK(b[36] == 17);
  CHECK(b[42] == 0x00);
  CHECK(b[43] == 0x00);
  CHECK(Bytes(b.begin() + 44, b.end()) ==
        Bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 2});

  req.lifetime = 0;  // a delete (s15)
  auto del = pcp::encode_map_request(req);
  REQUIRE(del.ok());
  CHECK(Bytes(del->begin() + 4, del->begin() + 8) == Bytes{0, 0, 0, 0});
}

TEST_CASE("PCP MAP request: bad arguments are usage errors", "[pcp]") {
  // (Addresses are parsed IpAddress values: text that is none cannot get this far.)
  auto req = sample_request();
  req.internal_port = 0;
  auto r3 = pcp::encode_map_request(req);
  REQUIRE_FALSE(r3.ok());
  CHECK(r3.error().code == porthole::Errc::usage);
}

TEST_CASE("PCP ANNOUNCE request: golden bytes", "[pcp]") {
  const Bytes expected = {
      0x02, 0x00, 0x00, 0x00,  // version 2 | R=0, opcode 0 (ANNOUNCE) | reserved
      0x00, 0x00, 0x00, 0x00,  // requested lifetime 0
      0x00, 0x00, 0x00, 0x00,  // client IP ::ffff:10.0.0.7
      0x00, 0x00, 0x00, 0x00,  //
      0x00, 0x00, 0xff, 0xff,  //
      0x0a, 0x00, 0x00, 0x07,  //
  };
  const auto encoded = pcp::encode_announce_request(ip("10.0.0.7"));
  CHECK(encoded == expected);
}

TEST_CASE("PCP response: decode a MAP success", "[pcp]") {
  auto r = pcp::decode_response(map_success());
  REQUIRE(r.ok());
  CHECK(r->version == 2);
  CHECK(r->opcode == pcp::opcode::map);
  CHECK(r->result_code == pcp::result::success);
  CHECK(r->lifetime == 7200);
  CHECK(r->epoch == 12345);
  CHECK_FALSE(r->unsupported_version());
  REQUIRE(r->map.has_value());
  CHECK(r->map->nonce == kNonce);
  CHECK(r->map->protocol == pcp::iana::tcp);
  CHECK(r->map->internal_port == 8080);
  CHECK(r->map->external_port == 8081);
  CHECK(r->map->external_ip == ip("203.0.113.2"));
  CHECK(r->options.empty());
  CHECK(pcp::answers(*r, pcp::key_of(sample_request())));
}

TEST_CASE("PCP response: a non-IPv4 assigned address has no dotted form", "[pcp]") {
  Bytes b = map_success();
  b[44] = 0x20;  // 2001:db8::... instead of ::ffff:a.b.c.d
  b[45] = 0x01;
  b[46] = 0x0d;
  b[47] = 0xb8;
  auto r = pcp::decode_response(b);
  REQUIRE(r.ok());
  REQUIRE(r->map.has_value());
  CHECK(!r->map->external_ip.has_value());
  CHECK(r->map->external_address[0] == 0x20);
}

TEST_CASE("PCP response: decode an ANNOUNCE answer and an error result", "[pcp]") {
  Bytes announce = {
      0x02, 0x80, 0x00, 0x00,  // version 2 | R=1, opcode 0 | reserved | SUCCESS
      0x00, 0x00, 0x00, 0x00,  // lifetime 0
      0x00, 0x01, 0x00, 0x00,  // epoch 65536
      0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0,  // reserved
  };
  auto a = pcp::decode_response(announce);
  REQUIRE(a.ok());
  CHECK(a->opcode == pcp::opcode::announce);
  CHECK(a->epoch == 65536);
  CHECK_FALSE(a->map.has_value());
  CHECK(pcp::answers(*a, pcp::announce_key()));
  CHECK_FALSE(pcp::answers(*a, pcp::key_of(sample_request())));

  Bytes refused = map_success();
  refused[3] = pcp::result::no_resources;
  refused[7] = 30;  // short-lifetime error: 30 s
  refused[6] = 0;
  auto n = pcp::decode_response(refused);
  REQUIRE(n.ok());
  CHECK(n->result_code == 8);
  CHECK(n->lifetime == 30);
  CHECK(pcp::answers(*n, pcp::key_of(sample_request())));
}

TEST_CASE("PCP response: length checks (s8.3)", "[pcp]") {
  SECTION("too short") {
    Bytes b = map_success();
    b.resize(20);
    CHECK_THAT(drop_reason(b), Catch::Contains("shorter than"));
  }
  SECTION("too long") {
    Bytes b = map_success();
    b.resize(1104, 0);
    CHECK_THAT(drop_reason(b), Catch::Contains("longer than"));
  }
  SECTION("1100 bytes is still allowed") {
    // 60 bytes of MAP, then one optional option (code 128) filling the rest.
    Bytes b = with_option(map_success(), 128, 1100 - 60 - 4, 1100 - 60 - 4);
    REQUIRE(b.size() == 1100);
    auto r = pcp::decode_response(b);
    REQUIRE(r.ok());
    REQUIRE(r->options.size() == 1);
    CHECK(r->options[0].data.size() == 1036);
  }
  SECTION("not a multiple of 4") {
    Bytes b = map_success();
    b.push_back(0);
    b.push_back(0);
    CHECK_THAT(drop_reason(b), Catch::Contains("multiple of 4"));
  }
  SECTION("MAP body cut short") {
    Bytes b = map_success();
    b.resize(56);
    CHECK_THAT(drop_reason(b), Catch::Contains("too short for a MAP"));
  }
  SECTION("empty") { CHECK_FALSE(pcp::decode_response(Bytes{}).ok()); }
}

TEST_CASE("PCP response: header checks", "[pcp]") {
  SECTION("R bit clear: a request, e.g. our own echoed back") {
    Bytes b = map_success();
    b[1] = 0x01;
    CHECK_THAT(drop_reason(b), Catch::Contains("R bit"));
    auto own = pcp::encode_map_request(sample_request());
    REQUIRE(own.ok());
    CHECK_FALSE(pcp::decode_response(*own).ok());
  }
  SECTION("version 1 with a result other than UNSUPP_VERSION") {
    Bytes b = map_success();
    b[0] = 1;
    CHECK_THAT(drop_reason(b), Catch::Contains("version 1"));
  }
  SECTION("an opcode porthole never sends (PEER)") {
    Bytes b = map_success();
    b[1] = 0x82;
    CHECK_THAT(drop_reason(b), Catch::Contains("opcode 2"));
  }
}

TEST_CASE("PCP response: options are bounds-checked (s7.3)", "[pcp]") {
  SECTION("a well-formed padded option") {
    Bytes b = with_option(map_success(), 0x80, 1, 4);  // 1 data byte + 3 padding
    auto r = pcp::decode_response(b);
    REQUIRE(r.ok());
    REQUIRE(r->options.size() == 1);
    CHECK(r->options[0].code == 0x80);
    CHECK(r->options[0].data == Bytes{0xa0});
  }
  SECTION("a zero-length option") {
    auto r = pcp::decode_response(with_option(map_success(), 2, 0, 0));
    REQUIRE(r.ok());
    REQUIRE(r->options.size() == 1);
    CHECK(r->options[0].data.empty());
  }
  SECTION("option length runs past the end") {
    Bytes b = with_option(map_success(), 0x80, 8, 4);
    CHECK_THAT(drop_reason(b), Catch::Contains("claims 8 bytes"));
  }
  SECTION("padding runs past the end") {
    Bytes b = with_option(map_success(), 0x80, 5, 4);  // 5 bytes need 8 with padding
    CHECK_FALSE(pcp::decode_response(b).ok());
  }
  SECTION("a huge option length") {
    Bytes b = with_option(map_success(), 1, 0xffff, 4);
    CHECK_FALSE(pcp::decode_response(b).ok());
  }
  SECTION("two options, the second broken") {
    Bytes b = with_option(with_option(map_success(), 0x80, 4, 4), 0x81, 12, 8);
    CHECK_FALSE(pcp::decode_response(b).ok());
  }
}

TEST_CASE("PCP response: UNSUPP_VERSION is recognised (fall back to NAT-PMP)", "[pcp]") {
  SECTION("a NAT-PMP server's version-0 reply, opcode 128 (RFC 6886 erratum)") {
    Bytes b = {
        0x00, 0x80,              // version 0 | opcode 128
        0x00, 0x01,              // result code 1 (16 bits): unsupported version
        0x00, 0x00, 0x01, 0x00,  // seconds since start of epoch: 256
    };
    auto r = pcp::decode_response(b);
    REQUIRE(r.ok());
    CHECK(r->unsupported_version());
    CHECK(r->version == 0);
    CHECK(r->epoch == 256);
    CHECK_FALSE(pcp::answers(*r, pcp::key_of(sample_request())));
  }
  SECTION("a version-0 reply with opcode 0 (RFC 6886 original text)") {
    Bytes b = {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05};
    auto r = pcp::decode_response(b);
    REQUIRE(r.ok());
    CHECK(r->unsupported_version());
  }
  SECTION("a version-0 reply with another result is not an answer") {
    Bytes b = {0x00, 0x80, 0x00, 0x03, 0x00, 0x00, 0x00, 0x05};
    CHECK_THAT(drop_reason(b), Catch::Contains("NAT-PMP"));
  }
  SECTION("a version-0 reply that is too short") {
    CHECK_FALSE(pcp::decode_response(Bytes{0x00, 0x80, 0x00, 0x01}).ok());
  }
  SECTION("a PCP version-1 server answering UNSUPP_VERSION") {
    Bytes b = map_success();
    b[0] = 1;
    b[3] = pcp::result::unsupp_version;
    auto r = pcp::decode_response(b);
    REQUIRE(r.ok());
    CHECK(r->unsupported_version());
    CHECK(r->version == 1);
    CHECK_FALSE(r->map.has_value());
  }
  SECTION("a version-2 header with UNSUPP_VERSION") {
    Bytes b(24, 0);
    b[0] = 2;
    b[1] = 0x81;
    b[3] = 1;
    auto r = pcp::decode_response(b);
    REQUIRE(r.ok());
    CHECK(r->unsupported_version());
  }
}

TEST_CASE("PCP matcher: opcode, protocol, internal port, nonce (s11.4)", "[pcp]") {
  const auto key = pcp::key_of(sample_request());
  auto decoded = [](Bytes b) {
    auto r = pcp::decode_response(b);
    REQUIRE(r.ok());
    return *r;
  };
  CHECK(pcp::mismatch(decoded(map_success()), key) == nullptr);

  Bytes wrong_protocol = map_success();
  wrong_protocol[36] = pcp::iana::udp;
  CHECK(std::string(pcp::mismatch(decoded(wrong_protocol), key)) == "protocol");

  Bytes wrong_port = map_success();
  wrong_port[41] = 0x91;  // internal port 8081
  CHECK(std::string(pcp::mismatch(decoded(wrong_port), key)) == "internal port");

  Bytes wrong_nonce = map_success();
  wrong_nonce[35] ^= 0x01;  // last nonce byte
  CHECK(std::string(pcp::mismatch(decoded(wrong_nonce), key)) == "nonce");
  Bytes wrong_nonce_first = map_success();
  wrong_nonce_first[24] ^= 0x80;
  CHECK_FALSE(pcp::answers(decoded(wrong_nonce_first), key));

  Bytes announce(24, 0);
  announce[0] = 2;
  announce[1] = 0x80;
  CHECK(std::string(pcp::mismatch(decoded(announce), key)) == "opcode");
  CHECK(pcp::answers(decoded(announce), pcp::announce_key()));
  CHECK_FALSE(pcp::answers(decoded(map_success()), pcp::announce_key()));
}

TEST_CASE("PCP result codes: names and explanations", "[pcp]") {
  CHECK(std::string(pcp::result_name(0)) == "SUCCESS");
  CHECK(std::string(pcp::result_name(1)) == "UNSUPP_VERSION");
  CHECK(std::string(pcp::result_name(2)) == "NOT_AUTHORIZED");
  CHECK(std::string(pcp::result_name(8)) == "NO_RESOURCES");
  CHECK(std::string(pcp::result_name(12)) == "ADDRESS_MISMATCH");
  CHECK(std::string(pcp::result_name(13)) == "EXCESSIVE_REMOTE_PEERS");
  CHECK(std::string(pcp::result_name(14)) == "UNKNOWN");
  for (std::uint8_t c = 0; c <= 13; ++c) {
    CHECK(pcp::is_known_result(c));
    CHECK_FALSE(std::string(pcp::result_explanation(c)).empty());
  }
  CHECK_FALSE(pcp::is_known_result(14));
  CHECK_FALSE(pcp::is_known_result(255));
  CHECK_THAT(pcp::describe_result(8),
             Catch::Contains("NO_RESOURCES (8)") && Catch::Contains("upstream NAT / CGNAT"));
  CHECK_THAT(pcp::describe_result(12),
             Catch::Contains("a NAT between this host and the PCP server"));
  CHECK(pcp::describe_result(42) == "unknown PCP result code 42");
  CHECK(pcp::is_short_lifetime_error(7));
  CHECK(pcp::is_short_lifetime_error(8));
  CHECK(pcp::is_short_lifetime_error(10));
  CHECK_FALSE(pcp::is_short_lifetime_error(2));
  CHECK_FALSE(pcp::is_short_lifetime_error(0));
}

TEST_CASE("PCP epoch validity (s8.5)", "[pcp]") {
  SECTION("time advancing alike on both sides") {
    CHECK(pcp::epoch_is_valid(1000, 1100, at(50), at(150)));
    CHECK(pcp::epoch_is_valid(1000, 1000, at(50), at(50)));
  }
  SECTION("going back by up to one second is reordering, more is a restart") {
    CHECK(pcp::epoch_is_valid(1000, 999, at(50), at(50)));
    CHECK_FALSE(pcp::epoch_is_valid(1000, 998, at(50), at(50)));
    CHECK_FALSE(pcp::epoch_is_valid(86400, 12, at(0), at(60)));  // router rebooted
  }
  SECTION("server clock ran faster: boundary at client_delta + 2 < 15/16 server_delta") {
    // client_delta 100 s: invalid once server_delta * 15/16 > 102, i.e. above 108.8 s
    CHECK(pcp::epoch_is_valid(1000, 1108, at(0), at(100)));
    CHECK_FALSE(pcp::epoch_is_valid(1000, 1109, at(0), at(100)));
  }
  SECTION("server clock ran slower (it restarted and counted up again)") {
    // client_delta 100 s: invalid once server_delta + 2 < 93.75, i.e. below 91.75 s
    CHECK(pcp::epoch_is_valid(1000, 1092, at(0), at(100)));
    CHECK_FALSE(pcp::epoch_is_valid(1000, 1091, at(0), at(100)));
    CHECK_FALSE(pcp::epoch_is_valid(5000, 5010, at(0), at(3600)));
  }
  SECTION("sub-second client deltas count") {
    CHECK(pcp::epoch_is_valid(1000, 1003, at(0), at(1.0)));  // 1 + 2 >= 3 - 3/16
    CHECK_FALSE(pcp::epoch_is_valid(1000, 1004, at(0), at(1.0)));
    CHECK(pcp::epoch_is_valid(1000, 1004, at(0), at(1.9)));
  }
  SECTION("large epochs do not overflow") {
    CHECK(pcp::epoch_is_valid(0xfffffff0u, 0xffffffffu, at(0), at(15)));
    CHECK_FALSE(pcp::epoch_is_valid(0xffffffffu, 0, at(0), at(1)));
  }
}

TEST_CASE("PCP retransmission schedule (s8.1.1)", "[pcp]") {
  SECTION("first RT is IRT 3 s +-10%") {
    CHECK(pcp::next_retransmit_timeout(milliseconds(0), 0.0) == milliseconds(2700));
    CHECK(pcp::next_retransmit_timeout(milliseconds(0), 0.5) == milliseconds(3000));
    const auto hi = pcp::next_retransmit_timeout(milliseconds(0), 0.999999);
    CHECK(hi <= milliseconds(3300));
    CHECK(hi >= milliseconds(3299));
  }
  SECTION("then (1+RAND) * min(2*RTprev, MRT)") {
    CHECK(pcp::next_retransmit_timeout(milliseconds(3000), 0.5) == milliseconds(6000));
    CHECK(pcp::next_retransmit_timeout(milliseconds(3000), 0.0) == milliseconds(5400));
    CHECK(pcp::next_retransmit_timeout(milliseconds(2700), 0.5) == milliseconds(5400));
  }
  SECTION("every step stays within +-10% of its base, over a whole run") {
    milliseconds rt{0};
    for (int i = 0; i < 20; ++i) {
      const double r = (i * 37 % 100) / 100.0;
      const milliseconds base = i == 0 ? pcp::kInitialRetransmitTimeout
                                       : std::min(2 * rt, pcp::kMaxRetransmitTimeout);
      rt = pcp::next_retransmit_timeout(rt, r);
      CHECK(rt.count() >= base.count() * 9 / 10);
      CHECK(rt.count() <= base.count() * 11 / 10);
    }
    // After 20 doublings the MRT cap of 1024 s holds it.
    CHECK(rt <= milliseconds(1024000 * 11 / 10));
    CHECK(rt >= milliseconds(1024000 * 9 / 10));
  }
  SECTION("MRT cap, configurable") {
    CHECK(pcp::next_retransmit_timeout(milliseconds(1000000), 0.5) == milliseconds(1024000));
    CHECK(pcp::next_retransmit_timeout(milliseconds(8000), 0.5, seconds(10)) ==
          milliseconds(10000));
    CHECK(pcp::next_retransmit_timeout(milliseconds(8000), 0.999, seconds(10)) <=
          milliseconds(11000));
    CHECK(pcp::next_retransmit_timeout(milliseconds(0), 0.5, milliseconds(1000)) ==
          milliseconds(1000));
  }
  SECTION("random values outside [0,1) are clamped") {
    CHECK(pcp::next_retransmit_timeout(milliseconds(0), -3.0) == milliseconds(2700));
    CHECK(pcp::next_retransmit_timeout(milliseconds(0), 7.0) <= milliseconds(3300));
  }
}

TEST_CASE("PCP renewal schedule (s11.2.1)", "[pcp]") {
  const std::vector<double> low(16, 0.0);
  const std::vector<double> high(16, 0.999999);
  const std::vector<double> mid(16, 0.5);

  SECTION("windows 1/2..5/8, 3/4..3/4+1/16, 7/8..7/8+1/32 of 7200 s") {
    auto lo = pcp::renewal_schedule(7200, low);
    auto hi = pcp::renewal_schedule(7200, high);
    REQUIRE(lo.size() >= 3);
    REQUIRE(hi.size() >= 3);
    CHECK(lo[0] == seconds(3600));
    CHECK(hi[0] <= seconds(4500));
    CHECK(hi[0] > seconds(4499));
    CHECK(lo[1] == seconds(5400));
    CHECK(hi[1] <= seconds(5850));
    CHECK(hi[1] > seconds(5849));
    CHECK(lo[2] == seconds(6300));
    CHECK(hi[2] <= milliseconds(6525000));
    CHECK(lo[3] == seconds(6750));
  }
  SECTION("strictly increasing, >= 4 s apart, all before expiry") {
    for (const auto* randoms : {&low, &mid, &high}) {
      auto s = pcp::renewal_schedule(7200, *randoms);
      REQUIRE_FALSE(s.empty());
      CHECK(s.front() >= pcp::kMinRenewalInterval);
      for (std::size_t i = 1; i < s.size(); ++i) CHECK(s[i] - s[i - 1] >= seconds(4));
      CHECK(s.back() < seconds(7200));
    }
  }
  SECTION("the halving ends where attempts would come closer than 4 s") {
    // 7200 s: attempts at 1/2, 3/4, ... 1 - 2^-k; the gap 7200 * 2^-k falls below 4 s
    // after about 11 halvings, then the 4 s spacing pushes the rest to the end.
    auto s = pcp::renewal_schedule(7200, low);
    CHECK(s.size() < 16);
    CHECK(s.size() >= 10);
  }
  SECTION("short lifetimes") {
    auto s = pcp::renewal_schedule(10, low);  // 5 s, then 7.5 -> pushed to 9 s
    REQUIRE(s.size() == 2);
    CHECK(s[0] == seconds(5));
    CHECK(s[1] == seconds(9));
    auto tiny = pcp::renewal_schedule(6, low);  // 3 s -> pushed to 4 s; then 8 s >= 6
    REQUIRE(tiny.size() == 1);
    CHECK(tiny[0] == seconds(4));
    CHECK(pcp::renewal_schedule(4, low).empty());
    CHECK(pcp::renewal_schedule(0, low).empty());
  }
  SECTION("one random value per attempt") {
    const std::vector<double> one = {0.0};
    CHECK(pcp::renewal_schedule(7200, one).size() == 1);
    CHECK(pcp::renewal_schedule(7200, std::vector<double>{}).empty());
  }
  SECTION("the random value moves the attempt inside its window") {
    auto m = pcp::renewal_schedule(7200, mid);
    REQUIRE(m.size() >= 2);
    CHECK(m[0] == milliseconds(4050000));  // 3600 + 0.5 * 900
    CHECK(m[1] == milliseconds(5625000));  // 5400 + 0.5 * 450
  }
}

TEST_CASE("PCP helpers: addresses and descriptions", "[pcp]") {
  const pcp::Address a = pcp::to_address(ip("198.51.100.7"));
  CHECK(a == pcp::Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7});
  CHECK(pcp::ipv4_from_mapped(a) == ip("198.51.100.7"));
  CHECK(pcp::ipv4_from_mapped(pcp::ipv4_all_zeros()) == ip("0.0.0.0"));
  CHECK_FALSE(pcp::ipv4_from_mapped(pcp::Address{}).has_value());  // ::
  // IPv6 goes as it is (RFC 6887 s5), and is not IPv4-mapped.
  const pcp::Address v6 = pcp::to_address(ip("2001:db8::1"));
  CHECK(v6 == pcp::Address{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  CHECK_FALSE(pcp::ipv4_from_mapped(v6).has_value());
  CHECK(pcp::nonce_hex(kNonce) == "0102030405060708090a0b0c");
  CHECK(pcp::iana_protocol(porthole::Transport::tcp) == 6);
  CHECK(pcp::iana_protocol(porthole::Transport::udp) == 17);
  CHECK_THAT(pcp::describe(sample_request()),
             Catch::Contains("MAP tcp 8080") && Catch::Contains("lifetime 7200") &&
                 Catch::Contains("nonce 0102030405060708090a0b0c"));
  auto r = pcp::decode_response(map_success());
  REQUIRE(r.ok());
  CHECK_THAT(pcp::describe(*r), Catch::Contains("MAP SUCCESS tcp 8080 -> 203.0.113.2:8081") &&
                                    Catch::Contains("epoch 12345"));
}
