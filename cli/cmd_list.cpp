// `porthole list`: the router's UPnP table (ours marked) and our PCP/NAT-PMP mappings.
#include "cmd_list.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <porthole/text.hpp>

#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

using nlohmann::json;

class ListOptions : public NoOptions {
 public:
  ListOptions()
      : NoOptions("list",
                  "The router's UPnP table (ours marked) and our "
                  "PCP/NAT-PMP mappings; exit 5 if the deadline "
                  "cut the table short") {}
};

int run_list(const Invocation& inv) {
  auto listed = list(inv.options);
  int status = report(listed, inv, render_list);
  return status != 0 ? status : list_exit_status(*listed);
}

}  // namespace

std::string render_list(const ListResult& r, bool as_json) {
  if (as_json) {
    json arr = json::array();
    for (const auto& lm : r.mappings) {
      json j = mapping_json(lm.mapping);
      if (!lm.internal_client_text.empty())
        j["internal_ip"] = replace_invalid_utf8(lm.internal_client_text);
      j["owner"] = lm.ours ? "self" : "other";
      j["confirmed"] = lm.confirmed ? json(*lm.confirmed) : json(nullptr);
      arr.push_back(std::move(j));
    }
    return dump({{"mappings", arr}, {"complete", r.complete}, {"warnings", r.warnings}});
  }
  // Say so when rows may be missing: an incomplete table must not read as a whole one.
  const std::string cut = r.complete ? ""
                                     : "(incomplete: the router's UPnP table was not "
                                       "read to its end)\n";
  if (r.mappings.empty()) return "no mappings\n" + cut;
  std::string out = fmt::format("  {:<22} {:<4} {:<21} {:<7} {:<12} {}\n", "EXTERNAL", "",
                                "INTERNAL", "VIA", "LIFETIME", "DESCRIPTION");
  for (const auto& lm : r.mappings) {
    const Mapping& m = lm.mapping;
    const char* mark = lm.confirmed == false ? "?" : lm.ours ? "*" : " ";
    out += fmt::format("{} {:<22} {:<4} {:<21} {:<7} {:<12} {}\n", mark, external_text(m),
                       transport_name(m.transport),
                       fmt::format("{}:{}",
                                   lm.internal_client_text.empty()
                                       ? m.internal_ip.to_string()
                                       : escape_text(lm.internal_client_text),
                                   m.internal_port),
                       protocol_name(m.protocol),
                       m.lifetime ? fmt::format("{} s", m.lifetime) : "permanent",
                       escape_text(m.description));
  }
  out += "(* = this host; ? = recorded by porthole, not confirmed by the router)\n" + cut;
  return out;
}

int list_exit_status(const ListResult& r) {
  if (r.complete) return 0;
  return static_cast<int>(r.incomplete ? r.incomplete->code : Errc::timeout);
}

CommandSpec list_command() { return {Command::list, make_options<ListOptions>, run_list}; }

}  // namespace porthole::cli
