// Server-reflexive candidates from the --stun servers (core/stun_gathering.hpp).
#include "core/stun_gathering.hpp"

#include <fmt/format.h>

#include "codec/stun_codec.hpp"
#include "core/punch_session.hpp"
#include "net/resolve.hpp"
#include "porthole/types.hpp"

namespace porthole::detail {

Result<std::vector<Endpoint>> resolve_stun_servers(const std::vector<std::string>& servers,
                                                   const LogFn& log) {
  std::vector<Endpoint> out;
  for (const auto& s : servers) {
    auto hp = parse_host_port(s, stun::kDefaultPort);
    if (!hp) return make_error(Errc::usage, "--stun " + hp.error().message);
    auto ip = resolve_ipv4(hp->host);
    if (!ip) {
      if (log) log(LogLevel::warning, fmt::format("STUN server {}: {}", s, ip.error().message));
      continue;
    }
    out.push_back(Endpoint{*ip, hp->port});
  }
  return out;
}

std::vector<StunProbe> start_stun_probes(std::span<const Endpoint> servers,
                                         Clock::time_point give_up) {
  std::vector<StunProbe> out;
  for (const auto& s : servers) {
    stun::BindingRequest req;
    req.transaction_id = random_transaction_id();
    auto bytes = stun::encode_binding_request(req);
    out.push_back({s, StunTransaction(req.transaction_id, std::move(bytes),
                                      {std::chrono::milliseconds(100), 4, 4}, give_up)});
  }
  return out;
}

bool take_stun_answer(std::vector<StunProbe>& probes, std::span<const std::uint8_t> bytes,
                      const Endpoint& from, Clock::time_point now, CandidateList& candidates,
                      std::vector<ReflexiveObservation>& observations) {
  for (auto& s : probes) {
    if (s.server != from || s.transaction.settled()) continue;
    auto m = s.transaction.on_datagram(bytes, now);
    if (!m) continue;
    const std::optional<Endpoint>& mapped = m->xor_mapped_address ? m->xor_mapped_address
                                                                  : m->mapped_address;
    if (mapped) {
      candidates.add_server_reflexive(*mapped);
      observations.push_back({s.server, *mapped});
    }
    return true;
  }
  return false;
}

}  // namespace porthole::detail
