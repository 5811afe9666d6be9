// `porthole list`: the router's UPnP table (ours marked) and our PCP/NAT-PMP mappings.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

using nlohmann::json;

class ListOptions : public NoOptions {
 public:
  ListOptions() : NoOptions("list", "The router's UPnP table (ours marked) and our "
                                    "PCP/NAT-PMP mappings") {}
};

std::string render_list(const ListResult& r, bool as_json) {
  if (as_json) {
    json arr = json::array();
    for (const auto& lm : r.mappings) {
      json j = mapping_json(lm.mapping);
      j["owner"] = lm.ours ? "self" : "other";
      arr.push_back(std::move(j));
    }
    return dump({{"mappings", arr}, {"warnings", r.warnings}});
  }
  if (r.mappings.empty()) return "no mappings\n";
  std::string out = fmt::format("  {:<22} {:<4} {:<21} {:<7} {:<12} {}\n", "EXTERNAL", "", "INTERNAL",
                                "VIA", "LIFETIME", "DESCRIPTION");
  for (const auto& lm : r.mappings) {
    const Mapping& m = lm.mapping;
    out += fmt::format("{} {:<22} {:<4} {:<21} {:<7} {:<12} {}\n", lm.ours ? "*" : " ",
                       external_text(m), transport_name(m.transport),
                       fmt::format("{}:{}", m.internal_ip, m.internal_port),
                       protocol_name(m.protocol),
                       m.lifetime ? fmt::format("{} s", m.lifetime) : "permanent",
                       m.description);
  }
  out += "(* = this host)\n";
  return out;
}

int run_list(const Invocation& inv) { return report(list(inv.options), inv, render_list); }

}  // namespace

CommandSpec list_command() { return {Command::list, make_options<ListOptions>, run_list}; }

}  // namespace porthole::cli
