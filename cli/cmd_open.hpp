// `porthole open PORT [--verify]`: forwards an external port to this host; with
// --verify, then proves from outside that inbound traffic arrives (exit 6 if not).
#pragma once

#include <string>

#include <porthole/porthole.hpp>
#include <porthole/verify.hpp>

namespace porthole::cli {

std::string render_open(const OpenResult& result, bool json);

// The open result with the verification, as text or JSON.
std::string render_open_verified(const OpenResult& opened, const Result<Verification>& v,
                                 bool json);

}  // namespace porthole::cli
