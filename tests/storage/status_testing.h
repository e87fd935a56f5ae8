// Status assertions for the storage tests.
#ifndef LUMOKEYS_TESTS_STORAGE_STATUS_TESTING_H_
#define LUMOKEYS_TESTS_STORAGE_STATUS_TESTING_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace lumo::testing {

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace lumo::testing

#define LUMO_STATUS_CONCAT_INNER(a, b) a##b
#define LUMO_STATUS_CONCAT(a, b) LUMO_STATUS_CONCAT_INNER(a, b)

#define ASSERT_OK(expr)                                                \
  do {                                                                 \
    const absl::Status lumo_status_ = ::lumo::testing::StatusOf(expr); \
    ASSERT_TRUE(lumo_status_.ok()) << lumo_status_;                    \
  } while (0)

#define EXPECT_OK(expr)                                                \
  do {                                                                 \
    const absl::Status lumo_status_ = ::lumo::testing::StatusOf(expr); \
    EXPECT_TRUE(lumo_status_.ok()) << lumo_status_;                    \
  } while (0)

// Expects the exact status code; prints the status on failure.
#define EXPECT_CODE(expr, status_code)                                 \
  do {                                                                 \
    const absl::Status lumo_status_ = ::lumo::testing::StatusOf(expr); \
    EXPECT_EQ(lumo_status_.code(), status_code) << lumo_status_;       \
  } while (0)

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                        \
  LUMO_ASSERT_OK_AND_ASSIGN_IMPL(LUMO_STATUS_CONCAT(lumo_statusor_, __LINE__), \
                                 lhs, expr)
#define LUMO_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  ASSERT_TRUE(tmp.ok()) << tmp.status();               \
  lhs = *std::move(tmp)

#endif  // LUMOKEYS_TESTS_STORAGE_STATUS_TESTING_H_
