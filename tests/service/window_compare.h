// The step of the randomized window comparisons (lazy_window_test,
// two_slot_window_test): one request at `now` fed to a window and to the
// reference whose answers it must give, then every answer compared.
#ifndef LUMOKEYS_TESTS_SERVICE_WINDOW_COMPARE_H_
#define LUMOKEYS_TESTS_SERVICE_WINDOW_COMPARE_H_

#include <cstdint>
#include <random>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lumo::service {

// Draws 1-3 tokens; one time in forty changes both limits (to 1-20); one
// time in ten counts the tokens with Add, otherwise takes them with TryTake
// (both must agree); then compares Count, Remaining, AvailableAt and Reset.
// A mismatch is a fatal failure naming `where` (callers stop on
// ::testing::Test::HasFatalFailure()).
template <typename Window, typename Reference>
void TakeAndCompare(Window& window, Reference& reference, absl::Time now,
                    std::mt19937_64& random, const std::string& where) {
  const int64_t n = 1 + random() % 3;
  if (random() % 40 == 0) {
    const int64_t new_limit = 1 + random() % 20;
    reference.set_limit(new_limit);
    window.set_limit(new_limit);
  }
  if (random() % 10 == 0) {
    reference.Add(now, n);
    window.Add(now, n);
  } else {
    ASSERT_EQ(window.TryTake(now, n), reference.TryTake(now, n)) << where;
  }
  ASSERT_EQ(window.Count(now), reference.Count(now)) << where;
  ASSERT_EQ(window.Remaining(now), reference.Remaining(now)) << where;
  ASSERT_EQ(window.AvailableAt(now, n), reference.AvailableAt(now, n)) << where;
  ASSERT_EQ(window.Reset(now), reference.Reset(now)) << where;
}

}  // namespace lumo::service

#endif  // LUMOKEYS_TESTS_SERVICE_WINDOW_COMPARE_H_
