// Runs a piece of a test in a forked child: for what must not touch the test process
// (its own network namespace, its own peak-RSS counter). The body's text comes back
// through a pipe.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace porthole::test {

struct ChildResult {
  bool finished = false;  // the child returned and exited 0 within the limit
  std::string text;       // what body returned
};

// A child that has not finished after `limit` is killed (by its PID: it is ours).
// body runs in the child only; it must not use Catch2's assertions.
ChildResult run_forked(const std::function<std::string()>& body, std::chrono::milliseconds limit);

}  // namespace porthole::test
