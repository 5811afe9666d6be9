#include "cli_output.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace porthole::cli {
namespace {

using nlohmann::json;

json mapping_json(const Mapping& m) {
  return json{{"protocol", protocol_name(m.protocol)},
              {"transport", transport_name(m.transport)},
              {"internal_ip", m.internal_ip},
              {"internal_port", m.internal_port},
              {"external_ip", m.external_ip.empty() ? json(nullptr) : json(m.external_ip)},
              {"external_port", m.external_port},
              {"lifetime", m.lifetime},
              {"expires_at", m.expires_at},
              {"description", m.description}};
}

std::string lifetime_text(std::uint32_t s) {
  if (s == 0) return "permanent";
  if (s % 3600 == 0) return fmt::format("{} s ({} h)", s, s / 3600);
  return fmt::format("{} s", s);
}

std::string external_text(const Mapping& m) {
  return fmt::format("{}:{}", m.external_ip.empty() ? "?" : m.external_ip, m.external_port);
}

std::string dump(const json& j) { return j.dump(2) + "\n"; }

}  // namespace

std::string render_probe(const ProbeReport& r, bool as_json) {
  if (as_json) {
    json protos = json::object();
    for (const auto& p : r.protocols) {
      json o = {{"available", p.available},
                {"external_ip", p.external_ip.empty() ? json(nullptr) : json(p.external_ip)},
                {"elapsed_ms", p.elapsed.count()}};
      if (p.error) o["error"] = p.error->message;
      protos[protocol_name(p.protocol)] = std::move(o);
    }
    return dump({{"gateway", r.gateway}, {"local_ip", r.local_ip}, {"protocols", protos},
                 {"warnings", r.warnings}});
  }
  std::string out = fmt::format("gateway {} (this host {})\n", r.gateway, r.local_ip);
  for (const auto& p : r.protocols) {
    out += fmt::format("  {:<7} {:<3} {:<16} {:>5} ms", protocol_name(p.protocol),
                       p.available ? "yes" : "no",
                       p.external_ip.empty() ? "-" : p.external_ip, p.elapsed.count());
    if (!p.available && p.error) out += "  " + p.error->message;
    out += "\n";
  }
  return out;
}

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
                     transport_name(m.transport), m.internal_ip, m.internal_port,
                     protocol_name(m.protocol), lifetime_text(m.lifetime));
}

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

std::string render_list(const ListResult& r, bool as_json) {
  if (as_json) {
    json arr = json::array();
    for (const auto& lm : r.mappings) {
      json j = mapping_json(lm.mapping);
      j["owner"] = lm.ours ? "self" : "other";
      j["confirmed"] = lm.confirmed ? json(*lm.confirmed) : json(nullptr);
      arr.push_back(std::move(j));
    }
    return dump({{"mappings", arr}, {"warnings", r.warnings}});
  }
  if (r.mappings.empty()) return "no mappings\n";
  std::string out = fmt::format("  {:<22} {:<4} {:<21} {:<7} {:<12} {}\n", "EXTERNAL", "", "INTERNAL",
                                "VIA", "LIFETIME", "DESCRIPTION");
  for (const auto& lm : r.mappings) {
    const Mapping& m = lm.mapping;
    const char* mark = lm.confirmed == false ? "?" : lm.ours ? "*" : " ";
    out += fmt::format("{} {:<22} {:<4} {:<21} {:<7} {:<12} {}\n", mark,
                       external_text(m), transport_name(m.transport),
                       fmt::format("{}:{}", m.internal_ip, m.internal_port),
                       protocol_name(m.protocol),
                       m.lifetime ? fmt::format("{} s", m.lifetime) : "permanent",
                       m.description);
  }
  out += "(* = this host; ? = recorded by porthole, not confirmed by the router)\n";
  return out;
}

std::string render_error_json(const Error& e) {
  return dump({{"error", {{"code", static_cast<int>(e.code)},
                          {"name", errc_name(e.code)},
                          {"protocol_code", e.protocol_code},
                          {"message", e.message}}}});
}

}  // namespace porthole::cli

namespace porthole::cli {

std::string render_hold_event(const HoldEvent& e, bool as_json) {
  if (!as_json) return fmt::format("{} {}\n", hold_event_name(e.kind), e.message);
  nlohmann::json j = {{"event", hold_event_name(e.kind)}, {"message", e.message}};
  if (e.kind != HoldEventKind::ready && e.kind != HoldEventKind::stopping && e.port.port != 0) {
    j["port"] = e.port.port;
    j["transport"] = transport_name(e.port.transport);
  }
  if (e.mapping) j["mapping"] = mapping_json(*e.mapping);
  if (e.previous_protocol) j["previous_protocol"] = protocol_name(*e.previous_protocol);
  if (!e.previous_external_ip.empty()) {
    j["previous_external_ip"] = e.previous_external_ip;
    j["previous_external_port"] = e.previous_external_port;
  }
  if (e.error)
    j["error"] = {{"code", static_cast<int>(e.error->code)},
                  {"name", errc_name(e.error->code)},
                  {"protocol_code", e.error->protocol_code},
                  {"message", e.error->message}};
  if (e.retry_in) j["retry_in_ms"] = e.retry_in->count();
  return j.dump() + "\n";
}

}  // namespace porthole::cli
