// porthole: text that crosses a trust boundary. A description is sent to the router
// and stored in its table; whatever a router sends back is untrusted bytes (any LAN host
// can put a description of its choice in the UPnP table).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "porthole/error.hpp"

namespace porthole {

// The longest description porthole sends, in characters (Unicode code points).
inline constexpr std::size_t kMaxDescriptionChars = 256;

// Well-formed UTF-8 (RFC 3629 s3 and s4): shortest forms only, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

// A description porthole may send: valid UTF-8, printable (no C0 control character, no
// DEL, no C1 control character U+0080..U+009F) and at most kMaxDescriptionChars
// characters. Errc::usage with a message saying what is wrong.
Status check_description(std::string_view text);

// `text` made safe for a terminal: printable UTF-8 is kept; backslash becomes "\\",
// newline, CR and tab "\n", "\r", "\t", and every other control character and every
// byte that is not part of valid UTF-8 "\xNN" (ESC: "\x1b", a C1 character U+0085:
// "\xc2\x85").
std::string escape_text(std::string_view text);

// `text` as valid UTF-8 for JSON: every byte that is not part of a well-formed
// sequence becomes U+FFFD (the replacement character); valid text is unchanged.
std::string replace_invalid_utf8(std::string_view text);

}  // namespace porthole
