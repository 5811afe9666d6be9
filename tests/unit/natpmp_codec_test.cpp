// NAT-PMP reply codec (RFC 6886): golden bytes per field, every drop rule, matching.
// The public address and unsupported-opcode replies are miniupnpd 2.3.1's, captured in
// the lab (fuzz/corpus/natpmp_reply holds the same bytes).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "codec/natpmp_codec.hpp"
#include "ip_literal.hpp"

using porthole::test::ip;

namespace natpmp = porthole::detail::natpmp;
using Bytes = std::vector<std::uint8_t>;

namespace {

// miniupnpd's answer to a public address request (lab router r1).
const Bytes kPublicAddressReply = {
    0x00, 0x80,              // version 0 | opcode 128 + 0 (public address)
    0x00, 0x00,              // result 0 (success)
    0x00, 0x00, 0x03, 0x4a,  // seconds since start of epoch: 842
    0xcb, 0x00, 0x71, 0x02,  // external address 203.0.113.2
};

// A TCP mapping granted on another port than asked.
const Bytes kTcpMappingReply = {
    0x00, 0x82,              // version 0 | opcode 128 + 2 (map TCP)
    0x00, 0x00,              // result 0 (success)
    0x00, 0x00, 0x30, 0x39,  // epoch 12345
    0x1f, 0x90,              // internal port 8080
    0x1f, 0x91,              // mapped external port 8081
    0x00, 0x00, 0x1c, 0x20,  // lifetime 7200
};

// miniupnpd's answer to opcode 5 (which RFC 6886 does not define): the bare header.
const Bytes kUnsupportedOpcodeReply = {
    0x00, 0x85,              // version 0 | opcode 128 + 5
    0x00, 0x05,              // result 5 (unsupported opcode)
    0x00, 0x00, 0x03, 0x4a,  // epoch 842
};

natpmp::Reply decode_ok(const Bytes& bytes) {
  auto r = natpmp::decode_reply(bytes);
  INFO((r.ok() ? std::string("ok") : r.error().message));
  REQUIRE(r.ok());
  return *r;
}

std::string drop_reason(const Bytes& bytes) {
  auto r = natpmp::decode_reply(bytes);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == porthole::Errc::internal);
  return r.error().message;
}

}  // namespace

TEST_CASE("NAT-PMP public address reply: every field", "[natpmp]") {
  auto r = decode_ok(kPublicAddressReply);
  CHECK(r.version == 0);
  CHECK(r.opcode == natpmp::opcode::public_address);
  CHECK(r.result_code == natpmp::result::success);
  CHECK(r.epoch == 842);
  CHECK(r.has_body);
  CHECK(r.external_ip() == ip("203.0.113.2"));
  CHECK_FALSE(r.is_mapping());
  CHECK_FALSE(r.unsupported_version());
  CHECK(natpmp::encode_reply(r) == kPublicAddressReply);
  CHECK(natpmp::describe(r) == "PUBLIC ADDRESS SUCCESS 203.0.113.2 epoch 842");
}

TEST_CASE("NAT-PMP mapping reply: every field big-endian", "[natpmp]") {
  auto r = decode_ok(kTcpMappingReply);
  CHECK(r.opcode == natpmp::opcode::map_tcp);
  CHECK(r.result_code == natpmp::result::success);
  CHECK(r.epoch == 12345);
  CHECK(r.has_body);
  CHECK(r.internal_port == 8080);
  CHECK(r.external_port == 8081);
  CHECK(r.lifetime == 7200);
  CHECK(r.is_mapping());
  CHECK(natpmp::encode_reply(r) == kTcpMappingReply);
  CHECK(natpmp::describe(r) ==
        "MAP TCP SUCCESS internal 8080 -> external 8081 lifetime 7200 epoch 12345");

  // Each multi-byte field read with its high byte first.
  Bytes b = {
      0x00, 0x81,              // version 0 | opcode 128 + 1 (map UDP)
      0x00, 0x00,              // result 0
      0x12, 0x34, 0x56, 0x78,  // epoch 0x12345678
      0xab, 0xcd,              // internal port 0xabcd
      0x01, 0x02,              // mapped external port 0x0102
      0xfe, 0xdc, 0xba, 0x98,  // lifetime 0xfedcba98
  };
  auto u = decode_ok(b);
  CHECK(u.opcode == natpmp::opcode::map_udp);
  CHECK(u.epoch == 0x12345678u);
  CHECK(u.internal_port == 0xabcd);
  CHECK(u.external_port == 0x0102);
  CHECK(u.lifetime == 0xfedcba98u);
  CHECK(natpmp::encode_reply(u) == b);
}

TEST_CASE("NAT-PMP error replies: bare header or full size", "[natpmp]") {
  SECTION("miniupnpd's unsupported opcode answer") {
    auto r = decode_ok(kUnsupportedOpcodeReply);
    CHECK(r.opcode == 5);
    CHECK(r.result_code == natpmp::result::unsupported_opcode);
    CHECK(r.epoch == 842);
    CHECK_FALSE(r.has_body);
    CHECK(natpmp::encode_reply(r) == kUnsupportedOpcodeReply);
    CHECK(natpmp::describe(r) == "opcode 5 UNSUPPORTED_OPCODE epoch 842");
  }
  SECTION("network failure, with the public address fields") {
    const Bytes b = {
        0x00, 0x80,              // version 0 | opcode 128
        0x00, 0x03,              // result 3 (network failure)
        0x00, 0x00, 0x00, 0x07,  // epoch 7
        0x00, 0x00, 0x00, 0x00,  // external address 0.0.0.0
    };
    auto r = decode_ok(b);
    CHECK(r.result_code == natpmp::result::network_failure);
    CHECK(r.has_body);
    CHECK(r.external_ip() == ip("0.0.0.0"));
    CHECK(natpmp::encode_reply(r) == b);
  }
  SECTION("not authorized, header only, for a mapping") {
    const Bytes b = {0x00, 0x82, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09};
    auto r = decode_ok(b);
    CHECK(r.opcode == natpmp::opcode::map_tcp);
    CHECK(r.result_code == natpmp::result::not_authorized);
    CHECK_FALSE(r.has_body);
    CHECK(natpmp::encode_reply(r) == b);
  }
  SECTION("a result code RFC 6886 does not define is still decoded, and named as unknown") {
    const Bytes b = {0x00, 0x81, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01};  // result 256
    auto r = decode_ok(b);
    CHECK(r.result_code == 256);
    CHECK_FALSE(natpmp::is_known_result(r.result_code));
    CHECK(natpmp::describe(r) == "MAP UDP UNKNOWN (256) epoch 1");
  }
}

TEST_CASE("NAT-PMP unsupported version answers", "[natpmp]") {
  SECTION("a NAT-PMP server, opcode 128 (erratum 3618)") {
    auto r = decode_ok({0x00, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a});
    CHECK(r.unsupported_version());
    CHECK(r.version == 0);
    CHECK(r.epoch == 42);
  }
  SECTION("a NAT-PMP server, opcode 0 (RFC 6886 as published)") {
    auto r = decode_ok({0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a});
    CHECK(r.unsupported_version());
  }
  SECTION("a PCP-only server answers in PCP's format (RFC 6887 s9)") {
    Bytes pcp(24, 0);
    pcp[0] = 2;     // PCP version 2
    pcp[1] = 0x80;  // R bit | opcode 0
    pcp[3] = 1;     // result UNSUPP_VERSION (byte 2 is reserved: the 16 bits read 1)
    auto r = decode_ok(pcp);
    CHECK(r.unsupported_version());
    CHECK(r.version == 2);
    CHECK(natpmp::describe(r) == "UNSUPPORTED_VERSION from a version-2 server");
    CHECK_FALSE(natpmp::answers(r, natpmp::public_address_key()));
  }
}

TEST_CASE("NAT-PMP replies that must never reach libnatpmp", "[natpmp]") {
  SECTION("runts, 2 bytes among them") {
    for (std::size_t n : {0, 1, 2, 4, 7}) {
      INFO(n);
      Bytes b(kPublicAddressReply.begin(), kPublicAddressReply.begin() + n);
      CHECK_THAT(drop_reason(b), Catch::Contains("shorter than the 8-byte header"));
    }
  }
  SECTION("longer than any NAT-PMP reply") {
    Bytes b = kTcpMappingReply;
    b.push_back(0);
    CHECK_THAT(drop_reason(b), Catch::Contains("17 bytes, longer"));
  }
  SECTION("a success of the wrong length") {
    Bytes trunc(kTcpMappingReply.begin(), kTcpMappingReply.begin() + 12);
    CHECK_THAT(drop_reason(trunc), Catch::Contains("12 bytes for a MAP TCP reply (expected 16)"));
    Bytes longer = kPublicAddressReply;
    longer.insert(longer.end(), {0, 0, 0, 0});
    CHECK_THAT(drop_reason(longer),
               Catch::Contains("16 bytes for a PUBLIC ADDRESS reply (expected 12)"));
    Bytes header_only(kPublicAddressReply.begin(), kPublicAddressReply.begin() + 8);
    CHECK_THAT(drop_reason(header_only), Catch::Contains("expected 12"));
  }
  SECTION("an error of a length that fits no layout") {
    const Bytes b = {0x00, 0x81, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x1f, 0x90};
    CHECK_THAT(drop_reason(b), Catch::Contains("10 bytes for a MAP UDP error reply"));
  }
  SECTION("another version") {
    Bytes b = kPublicAddressReply;
    b[0] = 1;
    CHECK_THAT(drop_reason(b), Catch::Contains("version 1"));
    Bytes pcp(60, 0);
    pcp[0] = 2;
    pcp[1] = 0x81;
    CHECK_THAT(drop_reason(pcp), Catch::Contains("version 2"));
  }
  SECTION("a request: the reply bit is clear") {
    const Bytes our_request = {
        0x00, 0x02,              // version 0 | opcode 2 (map TCP), no reply bit
        0x00, 0x00,              // reserved
        0x1f, 0x90, 0x1f, 0x90,  // internal port, suggested external port
        0x00, 0x00, 0x1c, 0x20,  // requested lifetime
    };
    CHECK_THAT(drop_reason(our_request), Catch::Contains("a request, not a reply"));
  }
  SECTION("a success for an opcode porthole never sends") {
    const Bytes b = {0x00, 0x83, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
    CHECK_THAT(drop_reason(b), Catch::Contains("opcode 3"));
  }
}

TEST_CASE("NAT-PMP replies match only the request they answer", "[natpmp]") {
  auto tcp = decode_ok(kTcpMappingReply);
  CHECK(natpmp::answers(tcp, natpmp::mapping_key(natpmp::opcode::map_tcp, 8080)));
  CHECK(std::string(natpmp::mismatch(tcp, natpmp::mapping_key(natpmp::opcode::map_tcp, 8081))) ==
        "internal port");
  CHECK(std::string(natpmp::mismatch(tcp, natpmp::mapping_key(natpmp::opcode::map_udp, 8080))) ==
        "opcode");
  CHECK(std::string(natpmp::mismatch(tcp, natpmp::public_address_key())) == "opcode");

  auto pub = decode_ok(kPublicAddressReply);
  CHECK(natpmp::answers(pub, natpmp::public_address_key()));
  CHECK_FALSE(natpmp::answers(pub, natpmp::mapping_key(natpmp::opcode::map_tcp, 8080)));

  // An 8-byte error carries no internal port: the opcode decides.
  auto refused = decode_ok({0x00, 0x81, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09});
  CHECK(natpmp::answers(refused, natpmp::mapping_key(natpmp::opcode::map_udp, 5000)));

  auto unsupported = decode_ok(kUnsupportedOpcodeReply);
  CHECK_FALSE(natpmp::answers(unsupported, natpmp::public_address_key()));
}

TEST_CASE("NAT-PMP result codes", "[natpmp]") {
  CHECK(std::string(natpmp::result_name(0)) == "SUCCESS");
  CHECK(std::string(natpmp::result_name(1)) == "UNSUPPORTED_VERSION");
  CHECK(std::string(natpmp::result_name(2)) == "NOT_AUTHORIZED");
  CHECK(std::string(natpmp::result_name(3)) == "NETWORK_FAILURE");
  CHECK(std::string(natpmp::result_name(4)) == "OUT_OF_RESOURCES");
  CHECK(std::string(natpmp::result_name(5)) == "UNSUPPORTED_OPCODE");
  CHECK(std::string(natpmp::result_name(6)) == "UNKNOWN");
  CHECK(natpmp::is_known_result(5));
  CHECK_FALSE(natpmp::is_known_result(6));
  CHECK_THAT(natpmp::describe_result(3), Catch::StartsWith("NETWORK_FAILURE (3): "));
  CHECK(natpmp::describe_result(65535) == "unknown NAT-PMP result code 65535");
}
