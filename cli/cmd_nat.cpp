#include "cmd_nat.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

using nlohmann::json;

json text_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

const char* classic_text(NatType t) {
  switch (t) {
    case NatType::none: return "no NAT (the server sees this host's own address)";
    case NatType::full_cone: return "full cone";
    case NatType::restricted_cone: return "restricted cone";
    case NatType::port_restricted_cone: return "port-restricted cone";
    case NatType::symmetric: return "symmetric";
    case NatType::unknown: break;
  }
  return "unknown";
}

class NatOptions : public NoOptions {
 public:
  NatOptions()
      : NoOptions("nat",
                  "Public address (STUN), NAT mapping and filtering "
                  "behaviour (RFC 5780), double NAT") {}
};

int run_nat(const Invocation& inv) { return report(discover_nat(inv.options), inv, render_nat); }

}  // namespace

std::string render_nat(const NatReport& r, bool as_json) {
  if (as_json) {
    json j = {
        {"public_ip", r.public_ip.to_string()},
        {"public_port", r.public_port},
        {"local_ip", ip_json(r.local_ip)},
        {"local_port", r.local_port},
        {"mapping", nat_behaviour_name(r.mapping)},
        {"filtering", nat_behaviour_name(r.filtering)},
        {"nat_type", nat_type_name(r.nat_type)},
        {"port_preserved", r.port_preserved},
        {"double_nat", r.double_nat ? json(*r.double_nat) : json(nullptr)},
        {"gateway", ip_json(r.gateway)},
        {"gateway_external_ip", ip_json(r.gateway_external_ip)},
        {"gateway_external_ip_via", r.gateway_external_ip_via
                                        ? json(protocol_name(*r.gateway_external_ip_via))
                                        : json(nullptr)},
        {"server", r.server},
        {"server_address", r.server_address},
        {"server_other_address", text_or_null(r.server_other_address)},
        {"server_software", text_or_null(r.server_software)},
        {"rtt_ms", r.rtt.count()},
        {"negative_wait_ms", r.negative_wait.count()},
        {"elapsed_ms", r.elapsed.count()},
        {"warnings", r.warnings},
    };
    return j.dump(2) + "\n";
  }
  std::string out;
  out += fmt::format("public address   {}:{}{}\n", r.public_ip.to_string(), r.public_port,
                     r.port_preserved ? " (port preserved)" : "");
  out += fmt::format("local address    {}:{}\n", ip_text(r.local_ip, "?"), r.local_port);
  out += fmt::format("NAT type         {}\n", classic_text(r.nat_type));
  out += fmt::format("mapping          {}\n", nat_behaviour_name(r.mapping));
  out += fmt::format("filtering        {}\n", nat_behaviour_name(r.filtering));
  std::string dn = "unknown (the gateway did not tell its external address)";
  if (r.double_nat && *r.double_nat)
    dn = fmt::format("yes: the gateway's external address is {}",
                     ip_text(r.gateway_external_ip, ""));
  else if (r.double_nat)
    dn = !r.gateway_external_ip ? "no"
                                : fmt::format("no (the gateway's external address is {})",
                                              r.gateway_external_ip->to_string());
  out += fmt::format("double NAT       {}\n", dn);
  out += fmt::format("STUN server      {} ({}{}), {} ms round trip, {} ms in all\n", r.server,
                     r.server_address,
                     r.server_other_address.empty() ? ", no RFC 5780"
                                                    : ", other address " + r.server_other_address,
                     r.rtt.count(), r.elapsed.count());
  return out;
}

CommandSpec nat_command() { return {Command::nat, make_options<NatOptions>, run_nat}; }

}  // namespace porthole::cli
