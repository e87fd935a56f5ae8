// The copy of a key's retired secrets on its api_keys row (docs/storage.md
// "What the verification read names"): what the verification read takes
// instead of joining api_key_retired_secrets.
//
// The copy is written by the statement that bumps the key's version after
// its retired secrets changed: built by MariaDB from the table
// (kRetiredCopyExpression), or, by a rotation that found the copy current,
// from that copy (CopyAfterRotation, FormatRetiredCopy). It is trusted only
// while api_keys.retired_copy_version equals the key's version. The text:
// "<count>;" and then, joined by ',', one
// "<key version>/<digest, 64 upper-case hex digits>/<pepper version>/<valid
// until, microseconds since the Unix epoch>." per retired secret (each
// ends with '.'), in no order. NULL means none. The count and the
// terminators make a copy that GROUP_CONCAT cut short (MySQL's default
// group_concat_max_len is 1,024 bytes; sixteen secrets take ~1,800)
// unparsable rather than different.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_RETIRED_COPY_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_RETIRED_COPY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

// The functions below are pure (thread-safe).

// A retired secret of a copy and the key version it was retired at.
struct CopiedRetiredSecret {
  RetiredSecret retired;
  int64_t key_version = 0;
};

// An SQL expression building the copy of the key row being updated by an
// `UPDATE api_keys` statement (correlated by api_keys.tenant_id and
// api_keys.id). It reads the table in the statement's transaction, so it
// must run after the transaction's changes to the key's retired secrets,
// with the key row locked.
extern const char kRetiredCopyExpression[];

// The copy of `secrets` in the format above, as kRetiredCopyExpression
// builds it (the order aside).
std::string FormatRetiredCopy(const std::vector<CopiedRetiredSecret>& secrets);

// The secrets of a key's copy after a rotation retires `retired` (its key
// version is the one the rotation replaces), as the rotation changes the
// table: with `cap`, every earlier secret whose grace outlasts the new one
// ends with it; those the rotation prunes (kMaxRetiredSecrets or more
// versions older than `retired`) are dropped; `retired` is added.
std::vector<CopiedRetiredSecret> CopyAfterRotation(
    std::vector<CopiedRetiredSecret> copy, const CopiedRetiredSecret& retired,
    bool cap);

// Parses a copy. Anything that is not exactly the format above, including a
// count that differs from the entries present (a copy cut short), is
// INTERNAL: the caller then reads the table instead.
absl::StatusOr<std::vector<CopiedRetiredSecret>> ParseRetiredCopy(
    absl::string_view copy);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_RETIRED_COPY_H_
