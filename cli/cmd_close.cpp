// `porthole close PORT`: removes the mapping this host made.
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
    auto* close = app.add_subcommand("close", "Remove the mapping this host made");
    add_port_argument(*close, port_);
    close->add_option("--external-port", external_port_, "Only the mapping on this external port")
        ->type_name("N");
    return close;
  }
  std::string finish(Invocation& inv) const override {
    return parse_port_arguments(port_, external_port_, inv.close.port, inv.close.external_port);
  }

 private:
  std::string port_;
  std::string external_port_;
};

std::string render_close(const CloseResult& r, bool as_json) {
  if (as_json) {
    json removed = json::array();
    for (const auto& m : r.removed) removed.push_back(mapping_json(m));
    return dump({{"removed", removed}, {"warnings", r.warnings}});
  }
  std::string out;
  for (const auto& m : r.removed)
    out += fmt::format("closed {}/{} (external port {}, via {})\n", m.internal_port,
                       transport_name(m.transport), m.external_port, protocol_name(m.protocol));
  return out;
}

int run_close(const Invocation& inv) {
  return report(close(inv.options, inv.close), inv, render_close);
}

}  // namespace

CommandSpec close_command() { return {Command::close, make_options<CloseOptions>, run_close}; }

}  // namespace porthole::cli
