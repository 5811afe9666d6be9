// PCP (RFC 6887) client: ANNOUNCE to probe, MAP to create, renew and delete mappings.
// porthole's own implementation on top of codec/pcp_codec (no library).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "codec/pcp_codec.hpp"
#include "proto/port_mapper.hpp"

namespace porthole::detail {

class UdpSocket;

// One object per gateway. Each call uses its own socket; the little state shared
// between calls (epoch, "the server has answered") is behind a mutex, so a probe
// thread and a map call may use the same object.
class PcpClient final : public PortMapper {
 public:
  explicit PcpClient(GatewayInfo info);
  Protocol protocol() const override { return Protocol::pcp; }

  // Sends ANNOUNCE (s14.1) to gateway_ip:pcp_port. Success: any valid ANNOUNCE answer
  // (ProbeInfo::epoch filled, external_ip empty: PCP tells it only with a mapping).
  // UNSUPP_VERSION: Errc::no_service, protocol_code 1 (the gateway speaks NAT-PMP).
  Result<ProbeInfo> probe(Deadline deadline) override;

  // MAP (s11). A fresh 96-bit nonce from getrandom(2) unless params.have_nonce (a
  // renewal). The Client IP field is the address the socket actually sends from.
  // Retransmits on the s8.1.1 schedule with the same nonce until `deadline`. The
  // router may assign another external port: accepted, with a warning. Lifetime 0 is
  // Errc::usage (PCP has no permanent mappings; use unmap to delete); lifetimes over
  // 24 h are capped, with a warning.
  Result<MapOutcome> map(const MapParams& params, Deadline deadline) override;

  // MAP with lifetime 0 and the creating nonce (s15). NOT_AUTHORIZED: Errc::refused.
  Status unmap(const Mapping& mapping, const Nonce& nonce, Deadline deadline) override;

  // True once a response's epoch failed the s8.5 check: the gateway lost its state
  // (rebooted?), so every mapping made through it has to be recreated.
  bool server_lost_state() const override;

 private:
  // Sends `request` until a response answering `key` (or UNSUPP_VERSION) comes from
  // the server, or `deadline`. Drops everything else.
  Result<pcp::Response> exchange(UdpSocket& socket, std::span<const std::uint8_t> request,
                                 const pcp::RequestKey& key, const std::string& summary,
                                 Deadline deadline);
  // Opens the connected socket; `client_ip` receives its local address.
  Result<UdpSocket> open_socket(IpAddress& client_ip);
  void note_epoch(std::uint32_t epoch);
  void note_heard();
  bool heard_from_server() const;
  Error unsupported_version_error(const pcp::Response& response) const;
  std::string server() const;
  void debug(std::string_view text) const;

  GatewayInfo info_;
  mutable std::mutex mutex_;  // guards the members below
  // The server has answered something valid through this client: silence after that
  // is Errc::timeout rather than no_service (see the contract in port_mapper.hpp).
  bool heard_from_server_ = false;
  std::optional<std::uint32_t> last_epoch_;
  Clock::time_point last_epoch_time_{};
  bool server_lost_state_ = false;
};

}  // namespace porthole::detail
