// The process plumbing both binaries share (server/shared/process/process.h):
// what Start does to the process, the SIGHUP/SIGTERM loop, the fatal exit,
// the metrics listener and the reload log lines. Whatever changes the
// process (flags, signal mask, core-dump limits) runs in a forked child
// (a death test), so each case starts from a clean process.
#include "server/shared/process/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/observability/log.h"
#include "server/observability/metrics.h"

namespace lumo::process {
namespace {

// Exits the child with 0 when `ok`, else 1 after saying what failed.
void ExitWith(bool ok, const char* what) {
  if (!ok) std::fprintf(stderr, "failed: %s\n", what);
  std::fflush(stderr);
  _exit(ok ? 0 : 1);
}

bool Blocked(int signal_number) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal_number) == 1;
}

bool Ignored(int signal_number) {
  struct sigaction action = {};
  sigaction(signal_number, nullptr, &action);
  return action.sa_handler == SIG_IGN;
}

void StartAndCheck() {
  char program[] = "lumokeys-test";
  char level[] = "--log_level=warning";
  char positional[] = "migrate";
  char* argv[] = {program, level, positional, nullptr};
  const std::vector<char*> args =
      Start(3, argv, {"LUMOPROCESSTEST_", "a test binary"});
  ExitWith(args.size() == 2 && std::string(args[1]) == "migrate",
           "positional arguments");
}

TEST(ProcessDeathTest, StartReturnsThePositionalArguments) {
  EXPECT_EXIT(StartAndCheck(), ::testing::ExitedWithCode(0), "");
}

void StartAndCheckTheProcess() {
  char program[] = "lumokeys-test";
  char level[] = "--log_level=warning";
  char* argv[] = {program, level, nullptr};
  Start(2, argv, {"LUMOPROCESSTEST_", "a test binary"});
  struct rlimit core = {1, 1};
  getrlimit(RLIMIT_CORE, &core);
  const bool ok = core.rlim_cur == 0 && core.rlim_max == 0 &&
                  prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 &&
                  log::MinLevel() == log::Level::kWarning && Blocked(SIGTERM) &&
                  Blocked(SIGINT) && Blocked(SIGHUP) && !Blocked(SIGPIPE) &&
                  Ignored(SIGPIPE);
  ExitWith(ok, "core dumps off, --log_level applied, signals blocked");
}

TEST(ProcessDeathTest, StartHardensAppliesLoggingFlagsAndBlocksSignals) {
  EXPECT_EXIT(StartAndCheckTheProcess(), ::testing::ExitedWithCode(0), "");
}

void StartWithABadLogLevel() {
  char program[] = "lumokeys-test";
  char level[] = "--log_level=chatty";
  char* argv[] = {program, level, nullptr};
  Start(2, argv, {"LUMOPROCESSTEST_", "a test binary"});
  ExitWith(false, "Start accepted --log_level=chatty");
}

TEST(ProcessDeathTest, StartStopsOnABadLoggingFlag) {
  EXPECT_EXIT(StartWithABadLogLevel(), ::testing::ExitedWithCode(1),
              "\"level\":\"fatal\".*--log_level");
}

void ReloadTwiceThenStop(int stop_signal) {
  BlockProcessSignals();
  int reloads = 0;
  kill(getpid(), SIGHUP);
  // Each signal is sent only once the previous one was taken, so the order
  // is the one under test, not the kernel's delivery order.
  const int stopped_by = WaitForStopSignal([&] {
    ++reloads;
    kill(getpid(), reloads == 1 ? SIGHUP : stop_signal);
  });
  ExitWith(stopped_by == stop_signal && reloads == 2,
           "two reloads, then the stop signal");
}

TEST(ProcessDeathTest, SighupReloadsAndSigtermOrSigintStops) {
  EXPECT_EXIT(ReloadTwiceThenStop(SIGTERM), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(ReloadTwiceThenStop(SIGINT), ::testing::ExitedWithCode(0), "");
}

void WriteToAClosedPipe() {
  BlockProcessSignals();
  int fds[2];
  if (pipe(fds) != 0) ExitWith(false, "pipe");
  close(fds[0]);
  const ssize_t written = write(fds[1], "x", 1);
  ExitWith(written == -1 && errno == EPIPE, "EPIPE instead of SIGPIPE");
}

TEST(ProcessDeathTest, AClosedPeerIsAnErrorNotTheEndOfTheProcess) {
  EXPECT_EXIT(WriteToAClosedPipe(), ::testing::ExitedWithCode(0), "");
}

TEST(ProcessDeathTest, FatalWritesOneFatalLineAndExitsWithOne) {
  EXPECT_EXIT(Fatal("--pepper_file is required"), ::testing::ExitedWithCode(1),
              "\\{\"time\":\"[^\"]+\",\"level\":\"fatal\",\"msg\":\"--pepper_"
              "file is required\"\\}");
}

TEST(ProcessTest, MetricsListenerStartsOnlyWhenConfigured) {
  absl::FlagSaver saver;
  metrics::Registry registry;
  {
    metrics::MetricsHttpServer server(&registry);
    ASSERT_TRUE(StartMetricsListener(server).ok());
    EXPECT_EQ(server.bound_port(), 0);  // unset: nothing listens
  }
  std::string error;
  ASSERT_TRUE(absl::FindCommandLineFlag("metrics_listen")
                  ->ParseFrom("127.0.0.1:0", &error))
      << error;
  {
    metrics::MetricsHttpServer server(&registry);
    ASSERT_TRUE(StartMetricsListener(server).ok());
    EXPECT_GT(server.bound_port(), 0);
    server.Stop();
  }
  ASSERT_TRUE(absl::FindCommandLineFlag("metrics_listen")
                  ->ParseFrom("not-an-address", &error))
      << error;
  metrics::MetricsHttpServer server(&registry);
  absl::Status refused = StartMetricsListener(server);
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StartsWith(refused.message(), "--metrics_listen: "))
      << refused;
}

// The log lines written while `write` runs.
template <typename F>
std::string CaptureLog(F write) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  log::SetOutputFd(fds[1]);
  write();
  log::SetOutputFd(2);
  close(fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) text.append(buffer, n);
  close(fds[0]);
  return text;
}

TEST(ProcessTest, TlsReloadOutcomesAreLoggedAtTheirLevels) {
  const std::string ok = CaptureLog([] { LogTlsReload(absl::OkStatus()); });
  EXPECT_TRUE(absl::StrContains(ok,
                                "\"level\":\"info\",\"msg\":\"TLS files "
                                "reloaded\""))
      << ok;
  const std::string failed = CaptureLog([] {
    LogTlsReload(absl::InvalidArgumentError("--tls_cert_file: not PEM"));
  });
  EXPECT_TRUE(absl::StrContains(
      failed,
      "\"level\":\"error\",\"msg\":\"TLS reload failed, keeping the old "
      "certificate: --tls_cert_file: not PEM\""))
      << failed;
}

}  // namespace
}  // namespace lumo::process
