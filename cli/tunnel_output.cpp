#include "tunnel_output.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace porthole::cli {

namespace {

nlohmann::json endpoint_or_null(const std::optional<Endpoint>& e) {
  return e ? nlohmann::json(e->to_string()) : nlohmann::json(nullptr);
}

std::string text_or(const std::optional<Endpoint>& e, const char* none) {
  return e ? e->to_string() : std::string(none);
}

}  // namespace

std::string render_tunnel_event(const TunnelEvent& e, bool as_json) {
  using T = TunnelEventType;
  nlohmann::json j = {{"event", tunnel_event_name(e.type)}};
  std::string text = tunnel_event_name(e.type);
  switch (e.type) {
    case T::ready: {
      nlohmann::json ports = nlohmann::json::array();
      std::string list;
      for (const auto& p : e.ports) {
        ports.push_back(to_string(p));
        list += (list.empty() ? "" : ",") + to_string(p);
      }
      j["id"] = e.peer_id;
      j["ports"] = ports;
      j["local"] = endpoint_or_null(e.local);
      j["mapping"] = endpoint_or_null(e.mapping);
      text += fmt::format(" id {} ports {} local {} mapping {}", e.peer_id, list,
                          text_or(e.local, "none"), text_or(e.mapping, "none"));
      break;
    }
    case T::mapping:
      j["what"] = e.what;
      j["mapping"] = endpoint_or_null(e.mapping);
      if (!e.reason.empty()) j["message"] = e.reason;
      text += fmt::format(" {} {}", e.what, text_or(e.mapping, "none"));
      break;
    case T::peer_connected:
    case T::connected:
    case T::reconnected:
      if (e.type != T::reconnected) j["peer_id"] = e.peer_id;
      j["path"] = e.path;
      j["peer"] = endpoint_or_null(e.peer);
      if (e.type == T::connected) j["elapsed_ms"] = e.elapsed.count();
      if (!e.strategy.empty()) j["strategy"] = e.strategy;
      text += fmt::format(" {} {} path {}", e.peer_id, text_or(e.peer, "?"), e.path);
      if (!e.strategy.empty()) text += fmt::format(" strategy {}", e.strategy);
      if (e.type == T::connected) text += fmt::format(" in {} ms", e.elapsed.count());
      break;
    case T::peer_refused:
      j["peer_id"] = e.peer_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.peer_id);
      j["reason"] = e.reason;
      text += fmt::format(" {}: {}", e.peer_id.empty() ? "?" : e.peer_id, e.reason);
      break;
    case T::peer_gone:
      j["peer_id"] = e.peer_id;
      j["reason"] = e.reason;
      text += fmt::format(" {}: {}", e.peer_id, e.reason);
      break;
    case T::listening:
      j["local"] = endpoint_or_null(e.local);
      j["remote"] = e.remote_port;
      j["proto"] = tunnel_proto_name(e.proto);
      text += fmt::format(" {} -> remote {}/{}", text_or(e.local, "?"), e.remote_port,
                          tunnel_proto_name(e.proto));
      break;
    case T::path_lost:
      j["reason"] = e.reason;
      text += ": " + e.reason;
      break;
  }
  if (as_json) return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return text + "\n";
}

}  // namespace porthole::cli
