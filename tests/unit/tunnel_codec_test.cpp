// The tunnel's framing (codec/tunnel_codec.hpp, docs/tunnel.md): golden bytes, the
// rejections, pieces of a stream arriving one at a time; the -L and PORT[/proto] specs;
// expose's option checks and allow list (core/tunnel_options.cpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "codec/tunnel_codec.hpp"
#include "porthole/identity.hpp"
#include "porthole/tunnel.hpp"

namespace dt = porthole::detail::tunnel;
using porthole::Errc;
using porthole::ExposedPort;
using porthole::TunnelProto;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("tunnel stream header: P1 and the port, big-endian", "[tunnel]") {
  auto h = dt::encode_stream_header(8080);
  CHECK(Bytes(h.begin(), h.end()) == Bytes{'P', '1', 0x1f, 0x90});
  auto d = dt::decode_stream_header(h);
  REQUIRE(d.ok());
  REQUIRE(d->has_value());
  CHECK(**d == 8080);
  // In pieces: nothing until the fourth byte.
  for (std::size_t n = 0; n < 4; ++n) {
    auto part = dt::decode_stream_header(std::span<const std::uint8_t>(h.data(), n));
    REQUIRE(part.ok());
    CHECK_FALSE(part->has_value());
  }
}

TEST_CASE("tunnel stream header: other bytes and port 0 are refused", "[tunnel]") {
  CHECK(dt::decode_stream_header(Bytes{'G', 'E', 'T', ' '}).error().code == Errc::refused);
  CHECK(dt::decode_stream_header(Bytes{'G'}).error().code == Errc::refused);
  CHECK(dt::decode_stream_header(Bytes{'P', '2'}).error().code == Errc::refused);
  CHECK(dt::decode_stream_header(Bytes{'P', '1', 0, 0}).error().code == Errc::refused);
}

TEST_CASE("tunnel datagram: port, flow, payload", "[tunnel]") {
  const Bytes payload{1, 2, 3};
  auto bytes = dt::encode_datagram(51820, 7, payload);
  CHECK(bytes == Bytes{0xca, 0x6c, 0x00, 0x07, 1, 2, 3});
  auto d = dt::decode_datagram(bytes);
  REQUIRE(d.ok());
  CHECK(d->port == 51820);
  CHECK(d->flow == 7);
  CHECK(Bytes(d->payload.begin(), d->payload.end()) == payload);
  auto empty = dt::decode_datagram(dt::encode_datagram(53, 0, {}));
  REQUIRE(empty.ok());
  CHECK(empty->payload.empty());
  CHECK(dt::decode_datagram(Bytes{0, 53, 0}).error().code == Errc::refused);
  CHECK(dt::decode_datagram(Bytes{0, 0, 0, 1, 9}).error().code == Errc::refused);
}

TEST_CASE("exposed-port list: round trip, pieces, malformed lists", "[tunnel]") {
  const std::vector<ExposedPort> ports{{8080, TunnelProto::tcp}, {51820, TunnelProto::udp}};
  auto bytes = dt::encode_port_list(ports);
  CHECK(bytes == Bytes{'P', 'L', 0, 2, 0x1f, 0x90, 0, 0xca, 0x6c, 1});
  auto d = dt::decode_port_list(bytes);
  REQUIRE(d.ok());
  REQUIRE(d->has_value());
  CHECK(**d == ports);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto part = dt::decode_port_list(std::span<const std::uint8_t>(bytes.data(), n));
    REQUIRE(part.ok());
    CHECK_FALSE(part->has_value());
  }
  Bytes trailing = bytes;
  trailing.push_back(0);
  CHECK(dt::decode_port_list(trailing).error().code == Errc::refused);
  CHECK(dt::decode_port_list(Bytes{'P', 'L', 0, 1, 0, 80, 2}).error().code == Errc::refused);
  CHECK(dt::decode_port_list(Bytes{'P', 'L', 0, 1, 0, 0, 0}).error().code == Errc::refused);
  CHECK(dt::decode_port_list(Bytes{'P', 'X'}).error().code == Errc::refused);
  CHECK(dt::decode_port_list(Bytes{'P', 'L', 0xff, 0xff}).error().code == Errc::refused);
  auto none = dt::decode_port_list(dt::encode_port_list({}));
  REQUIRE(none.ok());
  REQUIRE(none->has_value());
  CHECK((*none)->empty());
}

TEST_CASE("connect -L specs: [BIND:]LOCAL:REMOTE[/udp]", "[tunnel]") {
  auto a = porthole::parse_forward("8080:80");
  REQUIRE(a.ok());
  CHECK(a->bind.to_string() == "127.0.0.1");
  CHECK(a->local == 8080);
  CHECK(a->remote == 80);
  CHECK(a->proto == TunnelProto::tcp);
  auto b = porthole::parse_forward("0.0.0.0:5353:53/udp");
  REQUIRE(b.ok());
  CHECK(b->bind.to_string() == "0.0.0.0");
  CHECK(b->local == 5353);
  CHECK(b->remote == 53);
  CHECK(b->proto == TunnelProto::udp);
  CHECK(porthole::parse_forward("65535:1/tcp").ok());
}

TEST_CASE("connect -L specs that are refused, each with the spec in the message", "[tunnel]") {
  for (const char* spec :
       {"abc", "0:80", "70000:80", "1:2:3:4", "80/sctp", "80", "8080:0", ":80",
        "8080:", "localhost:8080:80", "::1:8080:80", "8080:80/", "+80:80", "8080:80 "}) {
    INFO(spec);
    auto r = porthole::parse_forward(spec);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::usage);
    CHECK(r.error().message.find(spec) != std::string::npos);
  }
}

TEST_CASE("expose port specs: PORT[/tcp|/udp]", "[tunnel]") {
  CHECK(porthole::parse_exposed_port("8080").value() == ExposedPort{8080, TunnelProto::tcp});
  CHECK(porthole::parse_exposed_port("8080/tcp").value() == ExposedPort{8080, TunnelProto::tcp});
  CHECK(porthole::parse_exposed_port("51820/udp").value() == ExposedPort{51820, TunnelProto::udp});
  CHECK(porthole::to_string(ExposedPort{51820, TunnelProto::udp}) == "51820/udp");
  for (const char* spec : {"", "0", "65536", "80/sctp", "x/udp", "/udp", "80/"}) {
    INFO(spec);
    CHECK(porthole::parse_exposed_port(spec).error().code == Errc::usage);
  }
}

TEST_CASE("expose options: allow list, --allow-any, and what is refused", "[tunnel]") {
  const Bytes seed_a(32, 1), seed_b(32, 2);
  auto a = porthole::Identity::from_seed(seed_a).value().id();
  auto b = porthole::Identity::from_seed(seed_b).value().id();
  porthole::ExposeOptions o;
  o.ports = {{8080, TunnelProto::tcp}};
  o.punch.rendezvous = "198.51.100.12";
  // Neither --allow nor --allow-any: nobody could ever connect.
  CHECK(porthole::check_expose_options(o).error().code == Errc::usage);
  o.allow = {a};
  CHECK(porthole::check_expose_options(o).ok());
  CHECK(porthole::expose_allows(o, a));
  CHECK_FALSE(porthole::expose_allows(o, b));
  o.allow_any = true;
  CHECK(porthole::expose_allows(o, b));
  o.to = "lan-host";
  CHECK(porthole::check_expose_options(o).error().code == Errc::usage);
  o.to = "192.168.1.5";
  o.ports.push_back({8080, TunnelProto::tcp});
  CHECK(porthole::check_expose_options(o).error().code == Errc::usage);
  o.ports = {{8080, TunnelProto::tcp}, {8080, TunnelProto::udp}};
  CHECK(porthole::check_expose_options(o).ok());
  o.ports.clear();
  CHECK(porthole::check_expose_options(o).error().code == Errc::usage);
}
