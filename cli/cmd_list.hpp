// `porthole list`'s rendering and exit status, for the unit tests.
#pragma once

#include <string>

#include <porthole/porthole.hpp>

namespace porthole::cli {

std::string render_list(const ListResult& result, bool json);
// 0 for a whole table; else the exit status of what cut it short (5: the deadline).
int list_exit_status(const ListResult& result);

}  // namespace porthole::cli
