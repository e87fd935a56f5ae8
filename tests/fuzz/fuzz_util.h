// Helpers shared by the libFuzzer targets in this directory. Not thread-safe
// by design: libFuzzer calls a target from one thread.
#ifndef LUMOKEYS_TESTS_FUZZ_FUZZ_UTIL_H_
#define LUMOKEYS_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "gateway/transcoding/route_table.h"

// Fails the fuzz run (abort, so libFuzzer saves the input as a crash) when a
// property does not hold.
#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                     \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

namespace lumo::fuzz {

// The gateway's route table built from every LumoKeys proto service, exactly
// as lumokeys-gateway builds it at start-up. Built on first use; aborts if
// the build fails (the real annotations must always build).
const gateway::RouteTable& RealRouteTable();

// `segment` with every byte outside RFC 3986 unreserved characters written as
// %XX, so that SplitRequestPath decodes it back to `segment` as one segment.
std::string PercentEncodeSegment(absl::string_view segment);

// Splits `data` at the first occurrence of `separator`: returns the part
// before it and leaves the rest (after the separator) in `*data`; if there is
// none, returns all of `data` and leaves it empty.
absl::string_view TakeUntil(absl::string_view* data, char separator);

}  // namespace lumo::fuzz

#endif  // LUMOKEYS_TESTS_FUZZ_FUZZ_UTIL_H_
