// `porthole serve`'s log lines, for the unit tests.
#pragma once

#include <string>
#include <string_view>

#include <porthole/log.hpp>

namespace porthole::cli {

// One log line with its newline: "TIME porthole serve: TEXT" for people, or with
// --json {"time": TIME, "level": "debug|info|warning", "message": TEXT}.
std::string serve_log_line(std::string_view time, LogLevel level, std::string_view text,
                           bool as_json);

}  // namespace porthole::cli
