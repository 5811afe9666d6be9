#include "proto/refusal_log.hpp"

#include <utility>

#include <fmt/format.h>

namespace porthole::detail {

RefusalLog::RefusalLog(std::string what, std::chrono::milliseconds interval,
                       std::size_t first_lines, LogFn log)
    : what_(std::move(what)),
      interval_(interval),
      first_lines_(first_lines),
      log_(std::move(log)) {}

void RefusalLog::refused(const std::string& kind, const std::string& source, std::string_view line,
                         Clock::time_point now, LogLevel level) {
  if (!started_) started_ = now;
  Kind& k = kinds_[kind];
  ++k.refused;
  k.level = level;
  if (k.sources.size() < kMaxCounted) k.sources.insert(source);
  const bool first = logged_sources_.count(source) == 0;
  if (first && logged_sources_.size() < first_lines_) {
    logged_sources_.insert(source);
    if (log_) log_(level, line);
    ++lines_;
    return;
  }
  ++k.unlogged;
}

std::optional<Clock::time_point> RefusalLog::flush_due() const {
  if (!started_) return std::nullopt;
  return *started_ + interval_;
}

void RefusalLog::flush() {
  for (const auto& [name, k] : kinds_) {
    if (k.unlogged == 0) continue;
    const std::string sources = k.sources.size() >= kMaxCounted
                                    ? fmt::format("at least {}", k.sources.size())
                                    : std::to_string(k.sources.size());
    if (log_)
      log_(k.level,
           fmt::format("{}: refused {} ({}) from {} source(s) in the last {:g} s, {} not logged "
                       "one by one",
                       what_, k.refused, name, sources,
                       std::chrono::duration<double>(interval_).count(), k.unlogged));
    ++lines_;
  }
  kinds_.clear();
  logged_sources_.clear();
  started_.reset();
}

}  // namespace porthole::detail
