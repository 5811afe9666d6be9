// The --on-change hook: one /bin/sh -c process at a time, never waited on by blocking.
// hold polls its pidfd with everything else, and kills its process group when it
// overruns its time, so a hook that hangs cannot stop the keeper.
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/deadline.hpp"

namespace porthole::detail {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

struct HookOutcome {
  bool ok = false;
  std::string message;  // "exited with status 3", "killed after 30 s", ...
};

class HookRunner {
 public:
  HookRunner(std::string command, std::chrono::milliseconds timeout);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Queues a run with these variables added to our environment; starts it at once when
  // no other run is in progress. A failure to start comes back at the next finish().
  void enqueue(EnvVars vars);

  bool running() const { return pid_ > 0; }
  // Readable when the running hook exits (-1 when none runs or pidfds are missing).
  int fd() const { return pidfd_; }
  // When the running hook has to be done: wake up then (or earlier, for fd() == -1).
  std::optional<Deadline> wake_at() const;

  // Reaps the running hook if it has exited, kills it if it overran; then starts the
  // next queued one. The outcomes of the runs that ended.
  std::vector<HookOutcome> finish();

 private:
  void start_next(std::vector<HookOutcome>& out);
  std::string command_;
  std::chrono::milliseconds timeout_;
  std::deque<EnvVars> queue_;
  int pid_ = -1;
  int pidfd_ = -1;
  Deadline deadline_{};
};

}  // namespace porthole::detail
