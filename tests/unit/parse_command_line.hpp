// The command-line tests' way in: parse_args over words as a user types them.
#pragma once

#include <string>
#include <vector>

#include "cli_args.hpp"

namespace porthole::cli::test {

// `porthole ARGS...`, without running anything.
inline ParseOutcome parse(std::vector<std::string> args) {
  args.insert(args.begin(), "porthole");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return parse_args(static_cast<int>(argv.size()), argv.data());
}

}  // namespace porthole::cli::test
