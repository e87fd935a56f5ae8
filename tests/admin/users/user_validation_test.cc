// The syntax rules of service/user_service.h (docs/admin-api.md "Users and
// roles").
#include <string>

#include "gtest/gtest.h"
#include "server/core/field_error.h"
#include "server/rpc/status.h"
#include "server/service/user_service.h"

namespace lumo::service {
namespace {

TEST(ValidateEmailTest, AcceptsOrdinaryAddresses) {
  for (const char* email :
       {"a@b.co", "Ada.Lovelace@Example.com", "first.last+tag@sub.example.org",
        "o'brien@example.ie", "x_y-z!#$%&*/=?^`{|}~@example-mail.com",
        "user@xn--bcher-kva.example"}) {
    EXPECT_TRUE(ValidateEmail("email", email).ok()) << email;
  }
  const std::string longest =
      std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
      std::string(63, 'c') + "." + std::string(57, 'd') + ".com";
  ASSERT_EQ(longest.size(), 254u);
  EXPECT_TRUE(ValidateEmail("email", longest).ok());
}

TEST(ValidateEmailTest, RejectsMalformedAddressesAsValidationErrors) {
  for (const char* email : {"",
                            "plain",
                            "@example.com",
                            "user@",
                            "user@localhost",
                            "two@@example.com",
                            "a@b@example.com",
                            ".dot@example.com",
                            "dot.@example.com",
                            "do..t@example.com",
                            "sp ace@example.com",
                            "\"quoted\"@example.com",
                            "user@[127.0.0.1]",
                            "user@1.2.3.4",
                            "user@-example.com",
                            "user@example-.com",
                            "user@exa_mple.com",
                            "user@example..com",
                            "üser@example.com",
                            "user@example.com ",
                            "user@example.com\n"}) {
    absl::Status status = ValidateEmail("email", email);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << email;
    EXPECT_EQ(status.message().substr(0, 5), "email") << email;
    EXPECT_EQ(rpc::ErrorCodeOf(status), "validation_error");
    EXPECT_EQ(core::InvalidFieldOf(status), "email") << email;
  }
  EXPECT_FALSE(ValidateEmail("email", std::string(65, 'a') + "@example.com")
                   .ok());  // local part > 64
  EXPECT_FALSE(ValidateEmail("email", std::string(64, 'a') + "@" +
                                          std::string(64, 'b') + ".com")
                   .ok());  // label > 63
  const std::string too_long =
      std::string(64, 'a') + "@" + std::string(63, 'b') + "." +
      std::string(63, 'c') + "." + std::string(58, 'd') + ".com";
  ASSERT_EQ(too_long.size(), 255u);
  EXPECT_FALSE(ValidateEmail("email", too_long).ok());
}

TEST(IsValidPermissionTest, AllowsNamespacedNamesOnly) {
  for (const char* p :
       {"documents:read", "billing.invoices/*", "a", "A-Z_0.9"}) {
    EXPECT_TRUE(IsValidPermission(p)) << p;
  }
  for (const char* p : {"", "has space", "tab\t", "ümlaut", "semi;colon"}) {
    EXPECT_FALSE(IsValidPermission(p)) << p;
  }
  EXPECT_TRUE(IsValidPermission(std::string(100, 'p')));
  EXPECT_FALSE(IsValidPermission(std::string(101, 'p')));
}

}  // namespace
}  // namespace lumo::service
