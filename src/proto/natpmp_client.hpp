// NAT-PMP (RFC 6886) through libnatpmp, under porthole's own deadline.
#pragma once

#include "proto/port_mapper.hpp"

namespace porthole::detail {

class NatpmpClient final : public PortMapper {
 public:
  explicit NatpmpClient(GatewayInfo info) : info_(std::move(info)) {}
  Protocol protocol() const override { return Protocol::natpmp; }
  // Public address request (opcode 0): answers with the external IP and the epoch.
  Result<ProbeInfo> probe(Deadline deadline) override;
  Result<MapOutcome> map(const MapParams& params, Deadline deadline) override;
  Status unmap(const Mapping& mapping, const Nonce& nonce, Deadline deadline) override;

 private:
  GatewayInfo info_;
};

}  // namespace porthole::detail
