// Network byte order (big-endian) at explicit offsets: what every wire codec shares.
// Callers check lengths first; these do no bounds checking of their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace porthole::detail {

inline std::uint16_t get_u16(std::span<const std::uint8_t> in, std::size_t off) {
  return static_cast<std::uint16_t>((in[off] << 8) | in[off + 1]);
}

inline std::uint32_t get_u32(std::span<const std::uint8_t> in, std::size_t off) {
  return (std::uint32_t{in[off]} << 24) | (std::uint32_t{in[off + 1]} << 16) |
         (std::uint32_t{in[off + 2]} << 8) | std::uint32_t{in[off + 3]};
}

inline void put_u16(std::vector<std::uint8_t>& out, std::size_t off, std::uint16_t v) {
  out[off] = static_cast<std::uint8_t>(v >> 8);
  out[off + 1] = static_cast<std::uint8_t>(v & 0xff);
}

inline void put_u32(std::vector<std::uint8_t>& out, std::size_t off, std::uint32_t v) {
  out[off] = static_cast<std::uint8_t>(v >> 24);
  out[off + 1] = static_cast<std::uint8_t>((v >> 16) & 0xff);
  out[off + 2] = static_cast<std::uint8_t>((v >> 8) & 0xff);
  out[off + 3] = static_cast<std::uint8_t>(v & 0xff);
}

inline void append_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

inline void append_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  append_u16(out, static_cast<std::uint16_t>(v >> 16));
  append_u16(out, static_cast<std::uint16_t>(v & 0xffff));
}

}  // namespace porthole::detail
