// The QUIC adapter (src/tunnel/quic_connection.hpp): not written yet.
#include "tunnel/quic_connection.hpp"

namespace porthole::detail {

struct QuicConnection::State {};

QuicConnection::QuicConnection(std::unique_ptr<State> state) : state_(std::move(state)) {}
QuicConnection::~QuicConnection() = default;

Result<std::unique_ptr<QuicConnection>> QuicConnection::client(const QuicConfig&, TimePoint) {
  return make_error(Errc::internal, "QUIC is not built yet");
}

Result<std::unique_ptr<QuicConnection>> QuicConnection::server(const QuicConfig&,
                                                               std::span<const std::uint8_t>,
                                                               TimePoint) {
  return make_error(Errc::internal, "QUIC is not built yet");
}

}  // namespace porthole::detail
