// `porthole serve` and `porthole open --verify`: the commands of issue 3 that go
// beyond one library call and one print.
#pragma once

#include "cli_args.hpp"

namespace porthole::cli {

// Runs porthole::serve in the foreground until SIGTERM or SIGINT; log lines on stderr.
int run_serve(const Invocation& inv);

// open, then verify; exit 6 (mapping left in place) when the proof fails.
int run_open_verify(const Invocation& inv);

// The open result with the verification, as text or JSON.
std::string render_open_verified(const OpenResult& opened, const Result<Verification>& v,
                                 bool json);

}  // namespace porthole::cli
