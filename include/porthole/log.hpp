// How the library reports what it does: a callback the caller may set (Options::log,
// ServeOptions::log). The library never prints; the CLI decides what to show.
#pragma once

#include <functional>
#include <string_view>

namespace porthole {

enum class LogLevel { debug, info, warning };
using LogFn = std::function<void(LogLevel, std::string_view)>;

}  // namespace porthole
