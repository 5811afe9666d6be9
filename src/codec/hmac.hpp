// HMAC-SHA1, HMAC-SHA256, MD5 and SHA-256: the digests STUN's MESSAGE-INTEGRITY and
// MESSAGE-INTEGRITY-SHA256 need, and a constant-time comparison, (RFC 8489 s14.5, s14.6, s9.2.2).
// The one file that includes <nettle/...>: nettle is GnuTLS's own crypto backend and, unlike
// GnuTLS, links into the static `porthole` executable (Debian ships libnettle.a).
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace porthole::detail {

using Sha1Digest = std::array<std::uint8_t, 20>;
using Sha256Digest = std::array<std::uint8_t, 32>;
using Md5Digest = std::array<std::uint8_t, 16>;

Sha1Digest hmac_sha1(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);
Sha256Digest hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data);
Md5Digest md5(std::span<const std::uint8_t> data);
Sha256Digest sha256(std::span<const std::uint8_t> data);
// Equal sizes and bytes, in time that does not depend on where they differ (for MACs).
bool equal_secret(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

}  // namespace porthole::detail
