// The refusals of a public server (busy, rate-limited, denied, bad requests), logged so
// that a flood cannot fill the disk: the first refusal of a source in an interval is
// logged as it happens (for the first `first_lines` sources), the rest are counted and
// told in one summary line per kind at the end of the interval: how many were refused
// and from how many sources. Time comes in as a parameter; the caller writes the
// summary when flush_due() says (a reactor timer), so nothing polls.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>

#include "net/deadline.hpp"
#include "porthole/porthole.hpp"

namespace porthole::detail {

class RefusalLog {
 public:
  // `what`: the server's name at the head of each line ("connect-back").
  RefusalLog(std::string what, std::chrono::milliseconds interval, std::size_t first_lines,
             LogFn log);

  // One refusal of `source` for `kind` ("busy", "denied", ...); `line` is the line to
  // log when this one is logged on its own. `level`: of that line and of the kind's
  // summary (debug for what only -v shows, such as connections closed unused).
  void refused(const std::string& kind, const std::string& source, std::string_view line,
               Clock::time_point now, LogLevel level = LogLevel::info);
  // When the pending summary is due; nullopt when nothing is pending.
  std::optional<Clock::time_point> flush_due() const;
  // Writes the summary of the interval (one line per kind with refusals not logged on
  // their own) and starts a new interval.
  void flush();

  std::uint64_t lines_written() const noexcept { return lines_; }

 private:
  struct Kind {
    std::uint64_t refused = 0;
    std::uint64_t unlogged = 0;
    LogLevel level = LogLevel::info;
    std::unordered_set<std::string> sources;  // bounded by kMaxCounted
  };
  static constexpr std::size_t kMaxCounted = 4096;
  std::string what_;
  std::chrono::milliseconds interval_;
  std::size_t first_lines_;
  LogFn log_;
  std::optional<Clock::time_point> started_;
  std::unordered_set<std::string> logged_sources_;  // logged on their own this interval
  std::map<std::string, Kind> kinds_;
  std::uint64_t lines_ = 0;
};

}  // namespace porthole::detail
