// porthole: an IP address (IPv4 or IPv6) and a transport endpoint (address + port),
// parsed once and carried as bytes, formatted on the way out.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "porthole/error.hpp"

struct sockaddr;
struct sockaddr_storage;

namespace porthole {

class IpAddress {
 public:
  // 0.0.0.0.
  IpAddress() = default;

  // Dotted quad ("192.0.2.1", no leading zeros, exactly four parts) or IPv6 text
  // ("2001:db8::1", "::ffff:192.0.2.1"); no zone ("%eth0"), no brackets, no spaces.
  // Errc::usage with the text quoted otherwise.
  static Result<IpAddress> parse(std::string_view text);
  static IpAddress v4(const std::array<std::uint8_t, 4>& bytes) noexcept;
  static IpAddress v6(const std::array<std::uint8_t, 16>& bytes) noexcept;
  // 4 bytes: IPv4, 16 bytes: IPv6, network order; Errc::usage for any other size.
  static Result<IpAddress> from_bytes(std::span<const std::uint8_t> bytes);

  bool is_v4() const noexcept { return !v6_; }
  bool is_v6() const noexcept { return v6_; }
  // 4 or 16 bytes, network order.
  std::span<const std::uint8_t> bytes() const noexcept {
    return std::span<const std::uint8_t>(bytes_.data(), v6_ ? 16 : 4);
  }

  // Classification (IANA special-purpose registries, RFC 6890).
  bool is_unspecified() const noexcept;  // 0.0.0.0, ::
  bool is_loopback() const noexcept;     // 127.0.0.0/8, ::1
  bool is_private() const noexcept;      // RFC 1918, RFC 6598 100.64/10, ULA fc00::/7 (RFC 4193)
  bool is_link_local() const noexcept;   // 169.254.0.0/16, fe80::/10
  bool is_multicast() const noexcept;    // 224.0.0.0/4, ff00::/8
  bool is_v4_mapped() const noexcept;    // ::ffff:0:0/96 (RFC 4291 s2.5.5.2)
  // The IPv4 address inside an IPv4-mapped IPv6 one; the address itself otherwise.
  IpAddress unmapped() const noexcept;

  // "192.0.2.1"; IPv6 in RFC 5952 form: lower case, no leading zeros, the longest run
  // of two or more zero groups (the first of equals) as "::", IPv4-mapped as
  // "::ffff:192.0.2.1" (s5).
  std::string to_string() const;

  // IPv4 before IPv6, then by bytes.
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  bool v6_ = false;
  std::array<std::uint8_t, 16> bytes_{};  // IPv4 in the first 4, the rest zero
};

// A transport address.
struct Endpoint {
  IpAddress ip;
  std::uint16_t port = 0;

  // "192.0.2.1:3478" or "[2001:db8::1]:3478"; the port is 0..65535 in decimal digits.
  // Errc::usage with the text quoted otherwise (a bare IPv6 address without brackets
  // is refused: its last group could not be told from a port).
  static Result<Endpoint> parse(std::string_view text);
  // An AF_INET or AF_INET6 socket address (`length` bytes, as recvfrom or getsockname
  // filled it); Errc::usage for another family or a short length.
  static Result<Endpoint> from_sockaddr(const sockaddr* address, std::size_t length);
  // Fills `out` (AF_INET or AF_INET6) and returns the length to pass to sendto/bind.
  std::size_t to_sockaddr(sockaddr_storage& out) const noexcept;

  std::string to_string() const;  // the form parse() reads

  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

}  // namespace porthole
