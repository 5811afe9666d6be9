#include "cmd_open.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <porthole/text.hpp>

#include "cli_output.hpp"
#include "command.hpp"

namespace porthole::cli {
namespace {

using nlohmann::json;

class OpenOptions : public CommandOptions {
 public:
  CLI::App* add_to(CLI::App& app) override {
    auto* open = app.add_subcommand("open", "Forward an external port to this host");
    add_port_argument(*open, port_);
    open->add_option("--external-port", external_port_,
                     "External port to ask for (default: same as PORT; the router may assign "
                     "another)")
        ->type_name("N");
    open->add_option("--lifetime", lifetime_,
                     "Lease in seconds (default 7200; 0 = permanent where the protocol allows)")
        ->type_name("SECONDS");
    open->add_option("--via", via_, "Protocol: auto (default), pcp, natpmp or upnp")
        ->type_name("PROTOCOL");
    open->add_option("--description", description_,
                     "Description stored on the router (UPnP): printable UTF-8, at most 256 "
                     "characters")
        ->type_name("TEXT");
    open->add_flag("--strict-port", strict_port_,
                   "Fail (exit 4) instead of accepting another external port");
    open->add_flag("--verify", verify_,
                   "Then prove from outside that inbound traffic arrives (needs a --stun "
                   "server: RFC 5780 for UDP, a `porthole serve` for TCP); exit 6 if not");
    return open;
  }

  std::string finish(Invocation& inv) const override {
    if (auto err = parse_port_arguments(port_, external_port_, inv.open.port,
                                        inv.open.external_port);
        !err.empty())
      return err;
    auto life = parse_lifetime_arg(lifetime_);
    if (!life) return life.error().message;
    inv.open.lifetime = *life;
    auto via = parse_via_arg(via_);
    if (!via) return via.error().message;
    inv.open.via = *via;
    if (auto st = check_description_arg(description_); !st) return st.error().message;
    inv.open.description = description_;
    inv.open.strict_port = strict_port_;
    inv.verify = verify_;
    return {};
  }

 private:
  std::string port_;
  std::string external_port_;
  std::string lifetime_ = "7200";
  std::string via_ = "auto";
  std::string description_ = "porthole";
  bool strict_port_ = false;
  bool verify_ = false;
};

// open, then verify; exit 6 (mapping left in place) when the proof fails.
int run_open_verify(const Invocation& inv) {
  auto opened = open(inv.options, inv.open);
  if (!opened) {
    if (inv.json) fmt::print("{}", render_error_json(opened.error()));
    fmt::print(stderr, "porthole: {}\n", opened.error().message);
    return static_cast<int>(opened.error().code);
  }
  if (inv.verbosity >= 0)
    for (const auto& w : opened->warnings) fmt::print(stderr, "porthole: warning: {}\n", w);
  auto v = verify(inv.options, opened->mapping);
  if (inv.verbosity >= 0 || inv.json) fmt::print("{}", render_open_verified(*opened, v, inv.json));
  if (!v) {
    fmt::print(stderr, "porthole: verification: {}\n", v.error().message);
    return static_cast<int>(v.error().code);
  }
  if (inv.verbosity >= 0)
    for (const auto& w : v->warnings) fmt::print(stderr, "porthole: warning: {}\n", w);
  if (!v->verified) {
    fmt::print(stderr,
               "porthole: not verified: {} (the mapping stays; `porthole close {}{}` "
               "removes it)\n",
               v->explanation, opened->mapping.internal_port,
               opened->mapping.transport == Transport::udp ? "/udp" : "");
    return static_cast<int>(Errc::not_verified);
  }
  return 0;
}

int run_open(const Invocation& inv) {
  if (inv.verify) return run_open_verify(inv);
  return report(open(inv.options, inv.open), inv, render_open);
}

}  // namespace

std::string render_open(const OpenResult& r, bool as_json) {
  const Mapping& m = r.mapping;
  if (as_json) {
    json j = mapping_json(m);
    j["refreshed"] = r.refreshed;
    j["warnings"] = r.warnings;
    return dump(j);
  }
  return fmt::format("{} {}/{} -> {}:{} via {}, lifetime {}\n",
                     r.refreshed ? "refreshed" : "opened", external_text(m),
                     transport_name(m.transport), m.internal_ip.to_string(), m.internal_port,
                     protocol_name(m.protocol), lifetime_text(m.lifetime));
}

std::string render_open_verified(const OpenResult& opened, const Result<Verification>& v,
                                 bool as_json) {
  const bool verified = v.ok() && v->verified;
  if (as_json) {
    auto j = nlohmann::json::parse(render_open(opened, true));
    j["verified"] = verified;
    nlohmann::json ver = nlohmann::json::object();
    if (v.ok()) {
      ver["method"] = v->method.empty() ? nlohmann::json(nullptr) : nlohmann::json(v->method);
      ver["observed"] = v->observed.empty() ? nlohmann::json(nullptr) : nlohmann::json(v->observed);
      ver["server"] = v->server.empty() ? nlohmann::json(nullptr) : nlohmann::json(v->server);
      if (verified)
        ver["proof"] = v->proof;
      else
        ver["explanation"] = v->explanation;
    } else {
      ver["error"] = v.error().message;
    }
    j["verification"] = std::move(ver);
    return dump(j);
  }
  std::string out = render_open(opened, false);
  if (verified)
    out += fmt::format("verified ({}, via {}): {}\n", v->method, v->server, v->proof);
  else
    out += fmt::format("NOT verified: {}\n", v.ok() ? v->explanation : v.error().message);
  return out;
}

CommandSpec open_command() { return {Command::open, make_options<OpenOptions>, run_open}; }

}  // namespace porthole::cli
