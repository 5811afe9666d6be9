// ASCII case folding for protocol text (HTTP and SSDP header names, URL schemes), which
// must not depend on the C locale.
#pragma once

#include <cstddef>
#include <string_view>

namespace porthole::detail {

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// `text` starts with `lower_prefix` (given in lower case), ignoring ASCII case.
inline bool ascii_istarts_with(std::string_view text, std::string_view lower_prefix) {
  if (text.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i)
    if (ascii_lower(text[i]) != lower_prefix[i]) return false;
  return true;
}

}  // namespace porthole::detail
