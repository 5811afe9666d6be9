#include "core/hold_hook.hpp"

#include <csignal>
#include <cstring>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

extern char** environ;

namespace porthole::detail {
namespace {

// Without a pidfd (kernels before 5.3) the keeper wakes this often while a hook runs.
constexpr std::chrono::milliseconds kReapInterval{200};

int open_pidfd(int pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

HookRunner::HookRunner(std::string command, std::chrono::milliseconds timeout)
    : command_(std::move(command)), timeout_(timeout) {}

HookRunner::~HookRunner() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

void HookRunner::enqueue(EnvVars vars) {
  queue_.push_back(std::move(vars));
  if (!running()) {
    std::vector<HookOutcome> ignored;
    start_next(ignored);
  }
}

std::optional<Deadline> HookRunner::wake_at() const {
  if (!running()) return std::nullopt;
  if (pidfd_ < 0) return std::min(deadline_, Clock::now() + kReapInterval);
  return deadline_;
}

void HookRunner::start_next(std::vector<HookOutcome>& out) {
  while (!running() && !queue_.empty()) {
    EnvVars vars = std::move(queue_.front());
    queue_.pop_front();
    // The environment is built before fork(): between fork and exec only
    // async-signal-safe calls are allowed.
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
      bool replaced = false;
      for (const auto& [k, v] : vars)
        if (std::strncmp(*e, k.c_str(), k.size()) == 0 && (*e)[k.size()] == '=') replaced = true;
      if (!replaced) env.emplace_back(*e);
    }
    for (const auto& [k, v] : vars) {
      std::string& kv = env.emplace_back(k);
      kv += '=';
      kv += v;
    }
    std::vector<char*> envp;
    envp.reserve(env.size() + 1);
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    const char* argv[] = {"/bin/sh", "-c", command_.c_str(), nullptr};
    int pid = ::fork();
    if (pid < 0) {
      out.push_back({false, fmt::format("could not start: fork: {}", std::strerror(errno))});
      continue;
    }
    if (pid == 0) {
      // hold's caller may block SIGTERM/SIGINT for a signalfd; the hook gets defaults.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::setpgid(0, 0);  // its own process group: a timeout kills what it started too
      ::dup2(2, 1);     // stdout carries hold's events; the hook's output goes to stderr
      ::execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // also from here: no race with the kill below
    pid_ = pid;
    pidfd_ = open_pidfd(pid);
    deadline_ = Clock::now() + timeout_;
  }
}

std::vector<HookOutcome> HookRunner::finish() {
  std::vector<HookOutcome> out;
  if (running()) {
    int status = 0;
    int r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0 && Clock::now() >= deadline_) {
      ::kill(-pid_, SIGKILL);
      r = ::waitpid(pid_, &status, 0);
      out.push_back({false, fmt::format("did not finish within {} s and was killed",
                                        static_cast<double>(timeout_.count()) / 1000.0)});
    } else if (r == pid_) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        out.push_back({true, "finished"});
      else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        out.push_back({false, "exited with status 127 (command not found?)"});
      else if (WIFEXITED(status))
        out.push_back({false, fmt::format("exited with status {}", WEXITSTATUS(status))});
      else
        out.push_back({false, fmt::format("killed by signal {}", WTERMSIG(status))});
    }
    if (r != 0) {
      pid_ = -1;
      if (pidfd_ >= 0) ::close(pidfd_);
      pidfd_ = -1;
    }
  }
  start_next(out);
  return out;
}

}  // namespace porthole::detail
