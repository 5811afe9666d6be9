// What porthole prints on stdout: text for people, JSON (--json) for scripts.
#pragma once

#include <string>

#include <porthole/porthole.hpp>

namespace porthole::cli {

std::string render_probe(const ProbeReport& report, bool json);
std::string render_open(const OpenResult& result, bool json);
std::string render_close(const CloseResult& result, bool json);
std::string render_list(const ListResult& result, bool json);
// 0 for a whole table; else the exit status of what cut it short (5: the deadline).
int list_exit_status(const ListResult& result);
// With --json an error is also an object on stdout, so scripts always get JSON.
std::string render_error_json(const Error& error);

}  // namespace porthole::cli

#include <porthole/hold.hpp>

namespace porthole::cli {

// One `hold` event: one line of text, or one JSON object on one line (--json).
std::string render_hold_event(const HoldEvent& event, bool json);

}  // namespace porthole::cli
