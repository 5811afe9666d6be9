// libFuzzer target: turn::decode_channel_data (RFC 8656 s12.4) on any datagram. Beyond
// "no crash, no undefined behaviour": an accepted message has a channel in
// 0x4000..0x4FFF, its data inside the datagram right after the header, at most 3 bytes
// after it, and encoding it again gives the datagram's header and data back.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/turn_codec.hpp"
#include "fuzz_check.hpp"

namespace turn = porthole::detail::turn;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto cd = turn::decode_channel_data(in);
  if (!cd) {
    PORTHOLE_FUZZ_CHECK(!cd.error().message.empty());
    return 0;
  }
  PORTHOLE_FUZZ_CHECK(cd->channel >= turn::kChannelMin && cd->channel <= turn::kChannelMax);
  PORTHOLE_FUZZ_CHECK(cd->data.data() == data + turn::kChannelDataHeaderSize);
  PORTHOLE_FUZZ_CHECK(size - turn::kChannelDataHeaderSize - cd->data.size() <= 3);
  auto again = turn::encode_channel_data(cd->channel, cd->data);
  PORTHOLE_FUZZ_CHECK(again.ok());
  PORTHOLE_FUZZ_CHECK(again->size() % 4 == 0);
  const std::size_t meaningful = turn::kChannelDataHeaderSize + cd->data.size();
  PORTHOLE_FUZZ_CHECK(
      std::equal(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(meaningful), again->begin()));
  return 0;
}
