// CRC-32 of ITU-T V.42 / ISO 3309, as in Ethernet, zlib and STUN's FINGERPRINT
// (RFC 8489 s14.7): reflected polynomial 0xEDB88320, initial value and final xor
// 0xFFFFFFFF. crc32("123456789") == 0xCBF43926.
#pragma once

#include <cstdint>
#include <span>

namespace porthole::detail {

std::uint32_t crc32(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace porthole::detail
