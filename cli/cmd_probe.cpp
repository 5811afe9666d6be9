// `porthole probe`: which protocols the gateway speaks, its external address, how long
// each took. Exit 3 when none of them answered.
#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

using nlohmann::json;

class ProbeOptions : public NoOptions {
 public:
  ProbeOptions()
      : NoOptions("probe",
                  "Which protocols the gateway speaks, its external "
                  "address, how long each took") {}
};

std::string render_probe(const ProbeReport& r, bool as_json) {
  if (as_json) {
    json protos = json::object();
    for (const auto& p : r.protocols) {
      json o = {{"available", p.available},
                {"external_ip", ip_json(p.external_ip)},
                {"elapsed_ms", p.elapsed.count()}};
      if (p.error) o["error"] = p.error->message;
      protos[protocol_name(p.protocol)] = std::move(o);
    }
    return dump({{"gateway", r.gateway.to_string()},
                 {"local_ip", r.local_ip.to_string()},
                 {"protocols", protos},
                 {"warnings", r.warnings}});
  }
  std::string out = fmt::format("gateway {} (this host {})\n", r.gateway.to_string(),
                                r.local_ip.to_string());
  for (const auto& p : r.protocols) {
    out += fmt::format("  {:<7} {:<3} {:<16} {:>5} ms", protocol_name(p.protocol),
                       p.available ? "yes" : "no", ip_text(p.external_ip, "-"), p.elapsed.count());
    if (!p.available && p.error) out += "  " + p.error->message;
    out += "\n";
  }
  return out;
}

int run_probe(const Invocation& inv) {
  auto r = probe(inv.options);
  const bool answered = r.ok() && std::any_of(r->protocols.begin(), r->protocols.end(),
                                              [](const ProtocolProbe& p) { return p.available; });
  if (!r || answered) return report(r, inv, render_probe);
  // Nothing answered: the report still says why for each protocol; --json adds the
  // error object every failing command prints.
  const Error none = make_error(Errc::no_service, "no port-mapping service answered the probe");
  if (inv.json) {
    json j = json::parse(render_probe(*r, true));
    j["error"] = error_json(none);
    fmt::print("{}", dump(j));
  } else if (inv.verbosity >= 0) {
    fmt::print("{}", render_probe(*r, false));
  }
  print_warnings(r->warnings, inv.verbosity);
  fmt::print(stderr, "porthole: {}\n", none.message);
  return static_cast<int>(none.code);
}

}  // namespace

CommandSpec probe_command() { return {Command::probe, make_options<ProbeOptions>, run_probe}; }

}  // namespace porthole::cli
