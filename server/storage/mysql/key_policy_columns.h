// The tenant_settings columns of the key policy, read by the client store
// (settings) and the key store (the policy that create, rotate and edit
// check). Thread-compatible; the column indexes are fixed at construction.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_KEY_POLICY_COLUMNS_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_KEY_POLICY_COLUMNS_H_

#include <cppconn/resultset.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {

struct KeyPolicyColumns {
  explicit KeyPolicyColumns(SelectList& s)
      : require_expiry(s.Add("key_require_expiry")),
        max_lifetime_days(s.Add("key_max_lifetime_days")),
        rotation_period_days(s.Add("key_rotation_period_days")),
        expiry_warning_days(s.Add("key_expiry_warning_days")),
        inactive_after_days(s.Add("key_inactive_after_days")) {}
  // The columns of tenant_settings outer-joined as `alias`: a tenant
  // without a settings row reads the KeyPolicy defaults.
  KeyPolicyColumns(SelectList& s, absl::string_view alias)
      : require_expiry(s.Add(Or(alias, "key_require_expiry",
                                KeyPolicy().require_expiry ? 1 : 0))),
        max_lifetime_days(s.Add(
            Or(alias, "key_max_lifetime_days", KeyPolicy().max_lifetime_days))),
        rotation_period_days(s.Add(Or(alias, "key_rotation_period_days",
                                      KeyPolicy().rotation_period_days))),
        expiry_warning_days(s.Add(Or(alias, "key_expiry_warning_days",
                                     KeyPolicy().expiry_warning_days))),
        inactive_after_days(s.Add(Or(alias, "key_inactive_after_days",
                                     KeyPolicy().inactive_after_days))) {}
  int require_expiry, max_lifetime_days, rotation_period_days,
      expiry_warning_days, inactive_after_days;

 private:
  static std::string Or(absl::string_view alias, absl::string_view column,
                        int fallback) {
    return absl::StrCat("COALESCE(", alias, ".", column, ", ", fallback, ")");
  }
};

inline KeyPolicy ReadKeyPolicy(const sql::ResultSet& rs,
                               const KeyPolicyColumns& c) {
  KeyPolicy policy;
  policy.require_expiry = rs.getInt(c.require_expiry) != 0;
  policy.max_lifetime_days = rs.getInt(c.max_lifetime_days);
  policy.rotation_period_days = rs.getInt(c.rotation_period_days);
  policy.expiry_warning_days = rs.getInt(c.expiry_warning_days);
  policy.inactive_after_days = rs.getInt(c.inactive_after_days);
  return policy;
}

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_KEY_POLICY_COLUMNS_H_
