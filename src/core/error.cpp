#include "porthole/error.hpp"

namespace porthole {

const char* errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::internal: return "internal";
    case Errc::usage: return "usage";
    case Errc::no_service: return "no-service";
    case Errc::refused: return "refused";
    case Errc::timeout: return "timeout";
    case Errc::not_verified: return "not-verified";
    case Errc::punch_failed: return "punch-failed";
    case Errc::state: return "state";
    case Errc::peer_refused: return "peer-refused";
  }
  return "unknown";
}

}  // namespace porthole
