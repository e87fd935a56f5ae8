// Cross-field checks of flags that both binaries make (docs/operations.md
// "Configuration"): settings that only make sense together, settings that
// need others, and the loopback rule for plaintext listeners and upstreams.
// Every error names the flags involved, so an operator knows what to
// change; the server and the gateway word them the same way.
//
// Pure functions: thread-safe.
#ifndef LUMOKEYS_SERVER_SHARED_PROCESS_FLAG_CHECKS_H_
#define LUMOKEYS_SERVER_SHARED_PROCESS_FLAG_CHECKS_H_

#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumo::process {

// A flag as the operator wrote it ("--tls_cert_file") and its value; an
// empty value means unset.
struct FlagValue {
  absl::string_view name;
  absl::string_view value;
  bool set() const { return !value.empty(); }
};

// OK when both or neither are set; else INVALID_ARGUMENT
// "--a and --b must be set together".
absl::Status SetTogether(FlagValue a, FlagValue b);

// OK when `dependent` is unset or every flag of `needed` is set; else
// INVALID_ARGUMENT "--dependent needs --n1, --n2 and --n3" followed by
// " (<why>)" when `why` is given.
absl::Status Needs(FlagValue dependent, std::initializer_list<FlagValue> needed,
                   absl::string_view why = "");

// True for an address only this machine can reach: an IPv4 address in
// 127.0.0.0/8 ("127.0.0.1:50051"), "localhost:PORT", "[::1]:PORT", or a
// gRPC "unix:" socket path.
bool IsLoopbackAddress(absl::string_view address);

// The plaintext rule: OK when `tls` (the address is served or reached over
// TLS), `allow_remote_plaintext`, or the address is loopback; else
// FAILED_PRECONDITION "--flag=ADDRESS is not loopback: <protocol> is
// refused there unless --allow_remote_plaintext is set (or <tls_hint>)".
absl::Status CheckPlaintextAddress(FlagValue address, bool tls,
                                   bool allow_remote_plaintext,
                                   absl::string_view protocol,
                                   absl::string_view tls_hint);

}  // namespace lumo::process

#endif  // LUMOKEYS_SERVER_SHARED_PROCESS_FLAG_CHECKS_H_
