// UTF-8 checking and escaping for descriptions and router text (include/porthole/text.hpp).
// Pure: no sockets, no locale.
#include "porthole/text.hpp"

#include <cstdint>

#include <fmt/format.h>

namespace porthole {
namespace {

struct CodePoint {
  std::size_t length = 0;  // bytes of a well-formed sequence at the start; 0: invalid
  std::uint32_t value = 0;
};

// The well-formed UTF-8 sequence at the start of `s` (RFC 3629 s4, the table of
// well-formed byte sequences), or length 0 when its first byte starts none.
CodePoint decode_one(std::string_view s) noexcept {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return {1, b0};
  std::size_t len = 0;
  std::uint32_t v = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
    v = b0 & 0x1fu;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    v = b0 & 0x0fu;
    if (b0 == 0xe0) lo = 0xa0;  // no overlong forms
    if (b0 == 0xed) hi = 0x9f;  // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    v = b0 & 0x07u;
    if (b0 == 0xf0) lo = 0x90;  // no overlong forms
    if (b0 == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
  } else {
    return {};
  }
  if (s.size() < len) return {};
  for (std::size_t i = 1; i < len; ++i) {
    const unsigned char b = byte(i);
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf)) return {};
    v = (v << 6) | (b & 0x3fu);
  }
  return {len, v};
}

bool is_control(std::uint32_t cp) noexcept {
  return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  while (!text.empty()) {
    auto cp = decode_one(text);
    if (cp.length == 0) return false;
    text.remove_prefix(cp.length);
  }
  return true;
}

Status check_description(std::string_view text) {
  std::size_t chars = 0;
  for (std::size_t at = 0; at < text.size(); ++chars) {
    auto cp = decode_one(text.substr(at));
    if (cp.length == 0)
      return make_error(Errc::usage,
                        fmt::format("the description is not valid UTF-8 (byte 0x{:02x} at "
                                    "offset {})",
                                    static_cast<unsigned char>(text[at]), at));
    if (is_control(cp.value))
      return make_error(Errc::usage,
                        fmt::format("the description contains a control character (U+{:04X} "
                                    "at offset {}): use printable text",
                                    cp.value, at));
    at += cp.length;
  }
  if (chars > kMaxDescriptionChars)
    return make_error(Errc::usage, fmt::format("the description is {} characters long; at "
                                               "most {} are allowed",
                                               chars, kMaxDescriptionChars));
  return ok_status();
}

std::string escape_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    auto cp = decode_one(text);
    if (cp.length == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[0]));
      text.remove_prefix(1);
      continue;
    }
    if (cp.value == '\\') {
      out += "\\\\";
    } else if (cp.value == '\n') {
      out += "\\n";
    } else if (cp.value == '\r') {
      out += "\\r";
    } else if (cp.value == '\t') {
      out += "\\t";
    } else if (is_control(cp.value)) {
      for (std::size_t i = 0; i < cp.length; ++i)
        out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[i]));
    } else {
      out.append(text.substr(0, cp.length));
    }
    text.remove_prefix(cp.length);
  }
  return out;
}

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    auto cp = decode_one(text);
    if (cp.length == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD
      text.remove_prefix(1);
      continue;
    }
    out.append(text.substr(0, cp.length));
    text.remove_prefix(cp.length);
  }
  return out;
}

}  // namespace porthole
