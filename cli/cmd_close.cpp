// `porthole close PORT` removes the mapping this host made; `porthole close --all`
// every mapping the state records for this host.
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

using nlohmann::json;

class CloseOptions : public CommandOptions {
 public:
  CLI::App* add_to(CLI::App& app) override {
    auto* close = app.add_subcommand("close", "Remove the mapping this host made (or --all)");
    close->add_option("PORT", port_, "Internal port: N, N/tcp or N/udp (default tcp)")
        ->type_name("");
    close->add_option("--external-port", external_port_, "Only the mapping on this external port")
        ->type_name("N");
    close
        ->add_option("--via", via_,
                     "Only a mapping made with this protocol: auto (default), pcp, natpmp or "
                     "upnp")
        ->type_name("PROTOCOL");
    close->add_flag("--all", all_,
                    "Every mapping the state records for this host on this gateway (with "
                    "--via: made with that protocol)");
    return close;
  }
  std::string finish(Invocation& inv) const override {
    auto via = parse_via_arg(via_);
    if (!via) return via.error().message;
    inv.close.via = *via;
    inv.close_all = all_;
    if (all_) {
      if (!port_.empty()) return "close --all takes no PORT";
      if (!external_port_.empty()) return "close --all takes no --external-port";
      return {};
    }
    if (port_.empty()) return "close needs a PORT (or --all)";
    return parse_port_arguments(port_, external_port_, inv.close.port, inv.close.external_port);
  }

 private:
  std::string port_;
  std::string external_port_;
  std::string via_ = "auto";
  bool all_ = false;
};

std::string closed_line(const Mapping& m) {
  return fmt::format("closed {}/{} (external port {}, via {})\n", m.internal_port,
                     transport_name(m.transport), m.external_port, protocol_name(m.protocol));
}

json removed_json(const CloseResult& r) {
  json removed = json::array();
  for (const auto& m : r.removed) removed.push_back(mapping_json(m));
  return removed;
}

std::string render_close(const CloseResult& r, bool as_json) {
  if (as_json) return dump({{"removed", removed_json(r)}, {"warnings", r.warnings}});
  std::string out;
  for (const auto& m : r.removed) out += closed_line(m);
  return out;
}

int run_close(const Invocation& inv) {
  return report(close(inv.options, inv.close), inv, render_close);
}

// close --all: one line (or JSON object) per recorded mapping; the exit status is the
// highest of theirs, 0 when every one was closed or nothing was recorded.
int run_close_all(const Invocation& inv) {
  CloseAllRequest req;
  req.via = inv.close.via;
  auto r = close_all(inv.options, req);
  if (!r) return fail(r.error(), inv.json);
  int status = 0;
  json results = json::array();
  std::vector<std::string> warnings = r->warnings;
  std::string text;
  for (const auto& item : r->items) {
    json j = {{"port", item.port.port},
              {"transport", transport_name(item.port.transport)},
              {"protocol", protocol_name(item.protocol)},
              {"external_port", item.external_port}};
    if (item.outcome) {
      j["removed"] = removed_json(*item.outcome);
      j["error"] = nullptr;
      j["warnings"] = item.outcome->warnings;
      for (const auto& m : item.outcome->removed) text += closed_line(m);
      warnings.insert(warnings.end(), item.outcome->warnings.begin(), item.outcome->warnings.end());
    } else {
      const Error& e = item.outcome.error();
      j["removed"] = json::array();
      j["error"] = error_json(e);
      j["warnings"] = json::array();
      status = std::max(status, static_cast<int>(e.code));
      // Failures go to stderr even with -q, as every command's errors do.
      fmt::print(stderr, "porthole: could not close {}/{} (via {}): {}\n", item.port.port,
                 transport_name(item.port.transport), protocol_name(item.protocol), e.message);
    }
    results.push_back(std::move(j));
  }
  if (inv.json) {
    fmt::print("{}", dump({{"state_file", r->state_file},
                           {"results", results},
                           {"warnings", r->warnings}}));
  } else if (inv.verbosity >= 0) {
    if (r->items.empty())
      text = fmt::format("nothing to close: {} records no mapping of this host{}\n", r->state_file,
                         inv.close.via == Via::automatic
                             ? ""
                             : fmt::format(" via {}", via_name(inv.close.via)));
    fmt::print("{}", text);
  }
  print_warnings(warnings, inv.verbosity);
  return status;
}

int run_close_command(const Invocation& inv) {
  return inv.close_all ? run_close_all(inv) : run_close(inv);
}

}  // namespace

CommandSpec close_command() {
  return {Command::close, make_options<CloseOptions>, run_close_command};
}

}  // namespace porthole::cli
