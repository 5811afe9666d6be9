// The connect-back control protocol between `porthole open --verify` and `porthole
// serve`: one request line, one reply line, over a TCP connection to the server's
// listen address and port (the STUN port, over TCP). Pure functions, no sockets.
//
// Why TCP for the request: the three-way handshake proves the requester's address, so
// the server can connect back to that address and no other. A UDP request could carry
// a spoofed source and turn the server into a port scanner aimed at a third party.
//
//   request: "PORTHOLE/1 CONNECT <ipv4> <port> <token>\n"
//   reply:   "PORTHOLE/1 <outcome> <observed-ipv4> <detail>\n"
//
// <ipv4> is the address to connect to: it must be the requester's own address as the
// server sees it (the control connection's source); anything else is denied. <token>
// is 16 to 64 lowercase hex digits chosen at random by the requester; the server sends
// "<token>\n" on the connection it makes, so the requester can tell that connection
// from any other. <observed-ipv4> is the control connection's source as the server
// saw it. <detail>: printable ASCII without line breaks, at most kMaxDetail bytes: the
// source endpoint the server connected from (connected), or why it failed.
//
// No amplification: the token line the server sends (at most 65 bytes) is always
// shorter than the request that asked for it (at least 48 bytes of request plus the
// token), and it goes only to the requester's own address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "porthole/error.hpp"
#include "porthole/ip_address.hpp"

namespace porthole::detail::connect_back {

inline constexpr std::string_view kVersion = "PORTHOLE/1";
inline constexpr std::size_t kMinToken = 16;  // hex digits (64 bits)
inline constexpr std::size_t kMaxToken = 64;  // hex digits (256 bits)
inline constexpr std::size_t kMaxDetail = 120;
// Longest line either side accepts, "\n" included: anything longer is not ours.
inline constexpr std::size_t kMaxLine = 200;

struct Request {
  IpAddress ip;            // IPv4
  std::uint16_t port = 0;  // 1..65535
  std::string token;       // kMinToken..kMaxToken lowercase hex digits
};

enum class Outcome {
  connected,    // the TCP handshake completed and the token line was sent
  refused,      // the target answered with a RST (nothing listens, or a firewall rejects)
  timeout,      // no answer to the SYN before the server's connect deadline
  unreachable,  // ICMP unreachable or another routing error
  denied,       // policy: the target is not the requester's own address
  busy,         // rate limit or too many checks at once: try later
  bad_request,  // the request line was malformed
};
const char* outcome_name(Outcome o) noexcept;  // "connected", ..., "bad-request"

struct Reply {
  Outcome outcome = Outcome::bad_request;
  IpAddress observed_ip;  // the requester as the server saw it (IPv4)
  std::string detail;     // sanitised; "-" on the wire when empty
};

// Errc::usage for an invalid request (not an IPv4 address, port 0, bad token).
Result<std::string> encode_request(const Request& r);
// The detail is sanitised (non-printable bytes become '?') and cut to kMaxDetail.
std::string encode_reply(const Reply& r);

// One line, with or without its final "\n" (a "\r\n" is accepted too). Errors are
// Errc::usage with a message saying what is wrong (for a bad-request reply).
Result<Request> decode_request(std::string_view raw);
Result<Reply> decode_reply(std::string_view raw);

// Where the first line of `buffer` ends: the index of its "\n", nullopt when there is
// none yet. Callers treat a buffer of kMaxLine bytes without one as malformed.
std::optional<std::size_t> line_end(std::string_view buffer) noexcept;

// The bytes the server sends on the connection it makes: "<token>\n".
std::string token_line(const Request& request);

}  // namespace porthole::detail::connect_back
