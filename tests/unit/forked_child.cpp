#include "forked_child.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

namespace porthole::test {

ChildResult run_forked(const std::function<std::string()>& body, std::chrono::milliseconds limit) {
  using Clock = std::chrono::steady_clock;
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("run_forked: pipe");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("run_forked: fork");
  if (pid == 0) {
    ::close(fds[0]);
    std::string out = body();
    ssize_t ignored = ::write(fds[1], out.data(), out.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildResult result;
  bool eof = false;
  const auto until = Clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n <= 0) {
      eof = true;
      break;
    }
    result.text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (!eof) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.finished = eof && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return result;
}

}  // namespace porthole::test
