// porthole/text.hpp: the UTF-8 check, the description check and the two escapings.
#include <catch2/catch.hpp>

#include <string>

#include <porthole/text.hpp>

using namespace porthole;

TEST_CASE("is_valid_utf8 takes well-formed UTF-8 only (RFC 3629 s4)", "[text]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("porthole"));
  CHECK(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  CHECK(is_valid_utf8("\xf4\x8f\xbf\xbf"));                           // U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xff"));
  CHECK_FALSE(is_valid_utf8("a\x80"));             // lone continuation byte
  CHECK_FALSE(is_valid_utf8("\xc3"));              // cut short
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong, 3 bytes
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xf0\x9f\x98"));      // 4-byte form cut short
}

TEST_CASE("check_description refuses invalid UTF-8, control characters and length", "[text]") {
  CHECK(check_description("porthole").ok());
  CHECK(check_description("").ok());
  CHECK(check_description("WireGuard \xe2\x80\x94 caf\xc3\xa9").ok());
  struct Case {
    std::string text;
    const char* says;
  };
  const Case cases[] = {
      {"\xff", "not valid UTF-8"},
      {"ok\xc3", "not valid UTF-8"},
      {"a\x1b[31mred", "control character (U+001B"},
      {"two\nlines", "control character (U+000A"},
      {"tab\there", "control character (U+0009"},
      {"del\x7f", "control character (U+007F"},
      {"c1 \xc2\x85", "control character (U+0085"},
      {std::string("nul\0x", 5), "control character (U+0000"},
      {std::string(257, 'a'), "257 characters long; at most 256"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto st = check_description(c.text);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::usage);
    CHECK(st.error().message.find(c.says) != std::string::npos);
  }
  // The limit counts characters, not bytes: 256 two-byte characters are fine.
  std::string e_acute;
  for (int i = 0; i < 256; ++i) e_acute += "\xc3\xa9";
  CHECK(check_description(e_acute).ok());
  CHECK_FALSE(check_description(e_acute + "x").ok());
}

TEST_CASE("escape_text writes control bytes and invalid UTF-8 as escapes", "[text]") {
  CHECK(escape_text("porthole") == "porthole");
  CHECK(escape_text("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(escape_text("\xff") == "\\xff");
  CHECK(escape_text("\x1b[2J") == "\\x1b[2J");
  CHECK(escape_text("a\nb\rc\td") == "a\\nb\\rc\\td");
  CHECK(escape_text("back\\slash") == "back\\\\slash");
  CHECK(escape_text("\xc2\x85") == "\\xc2\\x85");
  CHECK(escape_text("\x7f") == "\\x7f");
  CHECK(escape_text(std::string("\0", 1)) == "\\x00");
  CHECK(escape_text("\xe2\x82") == "\\xe2\\x82");  // a cut sequence: each byte
  for (char c : escape_text("\xff\x1b\n\x01\xc0\xaf\xed\xa0\x80")) {
    auto b = static_cast<unsigned char>(c);
    CHECK(b >= 0x20);
    CHECK(b < 0x7f);
  }
}

TEST_CASE("replace_invalid_utf8 puts U+FFFD for each invalid byte", "[text]") {
  CHECK(replace_invalid_utf8("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(replace_invalid_utf8("a\xff"
                             "b") ==
        "a\xef\xbf\xbd"
        "b");
  CHECK(replace_invalid_utf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(replace_invalid_utf8("\x1b") == "\x1b");  // valid: JSON escapes it itself
  CHECK(is_valid_utf8(replace_invalid_utf8("\xff\xfe\xed\xa0\x80\xf4\x90\x80\x80\xe2")));
}
