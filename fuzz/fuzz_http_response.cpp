// libFuzzer target: HttpResponseParser, the parser behind http_get (the description
// fetch). The input is what a device sends on the connection, then it closes.
// Properties: the answer is the same whether the bytes come at once, a few at a time
// or in larger pieces; the body never exceeds max_body; while the answer is incomplete the
// parser holds no more than its header bound. Each input runs with the default body
// bound and a small one, so both kinds of limit are reached.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/http_response.hpp"
#include "fuzz_check.hpp"

using namespace porthole;
using namespace porthole::detail;

namespace {

struct Outcome {
  bool ok = false;
  Errc code = Errc::ok;
  int protocol_code = 0;
  std::string body_or_message;
};

// Feeds `text` in pieces of `piece` bytes (0: all at once), then the close.
Outcome parse(std::string_view text, std::size_t piece, std::size_t max_body) {
  HttpResponseParser p(max_body);
  auto fail = [](const Status& st) {
    return Outcome{false, st.error().code, st.error().protocol_code, st.error().message};
  };
  const std::size_t step = piece == 0 ? text.size() : piece;
  for (std::size_t at = 0; at < text.size() && !p.done(); at += step) {
    Status st = p.feed(text.substr(at, step));
    if (!st) return fail(st);
    PORTHOLE_FUZZ_CHECK(p.body().size() <= max_body);
    if (!p.done()) PORTHOLE_FUZZ_CHECK(p.buffered() <= kMaxHttpHeaderBytes);
  }
  (void)p.progress();  // the timeout message, had the device stopped here
  if (Status st = p.finish_at_eof(); !st) return fail(st);
  PORTHOLE_FUZZ_CHECK(p.done());
  PORTHOLE_FUZZ_CHECK(p.body().size() <= max_body);
  return Outcome{true, Errc::ok, 0, p.take_body()};
}

bool same(const Outcome& a, const Outcome& b) {
  return a.ok == b.ok && a.code == b.code && a.protocol_code == b.protocol_code &&
         a.body_or_message == b.body_or_message;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (std::size_t max_body : {kDefaultMaxHttpBody, std::size_t{100}}) {
    const Outcome whole = parse(text, 0, max_body);
    if (!whole.ok) {
      PORTHOLE_FUZZ_CHECK(whole.code == Errc::internal || whole.code == Errc::no_service);
      if (whole.code == Errc::no_service)
        PORTHOLE_FUZZ_CHECK(whole.protocol_code >= 0 && whole.protocol_code <= 999 &&
                            whole.protocol_code != 200);
    }
    // Pieces of 1 to 3 bytes (which the input's length picks: mutations vary it) catch
    // every boundary between CR and LF; larger ones the boundaries between phases.
    PORTHOLE_FUZZ_CHECK(same(whole, parse(text, 1 + size % 3, max_body)));
    PORTHOLE_FUZZ_CHECK(same(whole, parse(text, 4 + size % 61, max_body)));
  }
  return 0;
}
