#include "tunnel/stream_relay.hpp"

#include <algorithm>

#include "codec/tunnel_codec.hpp"

namespace porthole::detail {

namespace {
// Drops the consumed front of a buffer once it is most of it (amortised O(1) per byte).
void compact(std::vector<std::uint8_t>& buf, std::size_t& off) {
  if (off == buf.size()) {
    buf.clear();
    off = 0;
  } else if (off > std::size_t{64} * 1024 && off * 2 > buf.size()) {
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(off));
    off = 0;
  }
}
}  // namespace

StreamRelay::StreamRelay(std::span<const std::uint8_t> prefix, bool expect_header)
    : to_stream_(prefix.begin(), prefix.end()), expect_header_(expect_header) {}

std::size_t StreamRelay::tcp_read_room() const {
  if (tcp_eof_) return 0;
  const std::size_t queued = to_stream_.size() - to_stream_off_;
  return queued >= kTcpBuffer ? 0 : kTcpBuffer - queued;
}

void StreamRelay::on_tcp_data(std::span<const std::uint8_t> bytes) {
  to_stream_.insert(to_stream_.end(), bytes.begin(), bytes.end());
}

std::span<const std::uint8_t> StreamRelay::to_stream() const {
  return std::span<const std::uint8_t>(to_stream_).subspan(to_stream_off_);
}

void StreamRelay::took_by_stream(std::size_t n, bool fin) {
  to_stream_off_ += std::min(n, to_stream_.size() - to_stream_off_);
  compact(to_stream_, to_stream_off_);
  if (fin && tcp_eof_ && to_stream_.empty()) fin_sent_ = true;
}

Status StreamRelay::on_stream_data(std::span<const std::uint8_t> bytes, bool fin) {
  if (fin) stream_fin_ = true;
  if (expect_header_ && !port_) {
    const std::size_t need = tunnel::kStreamHeaderSize - header_.size();
    const std::size_t n = std::min(need, bytes.size());
    header_.insert(header_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    header_unreported_ += n;
    bytes = bytes.subspan(n);
    auto h = tunnel::decode_stream_header(header_);
    if (!h) return h.error();
    if (!h->has_value()) {
      if (stream_fin_) return make_error(Errc::refused, "the stream ended inside its header");
      return ok_status();
    }
    port_ = **h;
  }
  to_tcp_.insert(to_tcp_.end(), bytes.begin(), bytes.end());
  return ok_status();
}

Status StreamRelay::on_stream_data(std::vector<std::uint8_t>&& bytes, bool fin) {
  if ((expect_header_ && !port_) || to_tcp_off_ != to_tcp_.size())
    return on_stream_data(std::span<const std::uint8_t>(bytes), fin);
  if (fin) stream_fin_ = true;
  to_tcp_ = std::move(bytes);
  to_tcp_off_ = 0;
  return ok_status();
}

std::span<const std::uint8_t> StreamRelay::to_tcp() const {
  return std::span<const std::uint8_t>(to_tcp_).subspan(to_tcp_off_);
}

std::size_t StreamRelay::wrote_to_tcp(std::size_t n) {
  n = std::min(n, to_tcp_.size() - to_tcp_off_);
  to_tcp_off_ += n;
  compact(to_tcp_, to_tcp_off_);
  return n + take_unreported_header();
}

std::size_t StreamRelay::take_unreported_header() {
  const std::size_t n = header_unreported_;
  header_unreported_ = 0;
  return n;
}

}  // namespace porthole::detail
