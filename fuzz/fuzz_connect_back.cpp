// libFuzzer target: the connect-back control protocol (codec/connect_back_codec), both
// directions. Beyond "no crash, no undefined behaviour": an accepted request re-encodes
// to the same line, its token line (what the server would send to the target) is
// shorter than the request (no amplification), and the server's reply to it fits in
// kMaxLine and decodes again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/connect_back_codec.hpp"
#include "fuzz_check.hpp"

namespace cb = porthole::detail::connect_back;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto end = cb::line_end(in)) PORTHOLE_FUZZ_CHECK(in[*end] == '\n');

  if (auto request = cb::decode_request(in)) {
    auto line = cb::encode_request(*request);
    PORTHOLE_FUZZ_CHECK(line.ok());
    PORTHOLE_FUZZ_CHECK(line->size() <= cb::kMaxLine);
    PORTHOLE_FUZZ_CHECK(cb::token_line(*request).size() < line->size());
    auto again = cb::decode_request(*line);
    PORTHOLE_FUZZ_CHECK(again.ok() && again->ip == request->ip && again->port == request->port &&
                        again->token == request->token);
    for (auto outcome : {cb::Outcome::connected, cb::Outcome::denied}) {
      const std::string reply = cb::encode_reply({outcome, request->ip, std::string(in)});
      PORTHOLE_FUZZ_CHECK(reply.size() <= cb::kMaxLine);
      PORTHOLE_FUZZ_CHECK(cb::decode_reply(reply).ok());
    }
  } else {
    PORTHOLE_FUZZ_CHECK(!request.error().message.empty());
  }

  if (auto reply = cb::decode_reply(in)) {
    PORTHOLE_FUZZ_CHECK(reply->detail.size() <= cb::kMaxDetail);
    const std::string line = cb::encode_reply(*reply);
    auto again = cb::decode_reply(line);
    PORTHOLE_FUZZ_CHECK(again.ok() && again->outcome == reply->outcome &&
                        again->observed_ip == reply->observed_ip && again->detail == reply->detail);
  }
  return 0;
}
