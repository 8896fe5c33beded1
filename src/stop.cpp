// The stop request: one process-wide flag, set by request_stop or by the
// signal handlers install_stop_signals puts in place.
#include "grpo/stop.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "grpo/error.h"

namespace grpo {

namespace {

std::atomic<bool> g_requested{false};
std::atomic<int> g_signal{0};

void on_signal(int sig) {
  if (g_requested.exchange(true)) {
    // NB: the second signal: the default action (termination) at once.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_signal.store(sig);
  static const char kMessage[] =
      "\ngrpo: stopping after the current step, with a checkpoint; send the signal again to stop at once\n";
  const int saved = errno;
  (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  errno = saved;
}

}  // namespace

void request_stop(int signal) noexcept {
  g_signal.store(signal);
  g_requested.store(true);
}

bool stop_requested() noexcept { return g_requested.load(); }

int stop_signal() noexcept { return g_signal.load(); }

void clear_stop_request() noexcept {
  g_requested.store(false);
  g_signal.store(0);
}

void install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    if (::sigaction(sig, &action, nullptr) != 0) {
      throw Error(std::string("install_stop_signals: sigaction(") + ::strsignal(sig) + "): " + std::strerror(errno));
    }
  }
}

}  // namespace grpo
