// SIGTERM and SIGINT as a readable eventfd, for commands whose library call watches a
// stop fd (serve, punch, ...): the handler only writes to the eventfd, which is
// async-signal-safe, and the library's reactor sees it.
#pragma once

namespace porthole::cli {

// Creates the eventfd, routes SIGTERM and SIGINT to `handler` (null: the default one,
// which only notifies the eventfd) and ignores SIGPIPE. Returns the fd, or -1 with a
// message on stderr.
int install_stop_signals(void (*handler)(int) = nullptr);

// The fd install_stop_signals() made (-1 before), and a signal-safe notify of it.
int stop_fd() noexcept;
void notify_stop() noexcept;

}  // namespace porthole::cli
