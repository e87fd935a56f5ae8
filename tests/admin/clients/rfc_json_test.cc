// The gateway renders rfc_style replies with protobuf's JSON printer
// (preserve_proto_field_names, always_print_primitive_fields). These tests
// pin what that printer does with RegisterClientResponse, so the RFC 7591
// reply shape does not depend on luck: an unset `optional` member is
// absent, zero numbers are present and are JSON numbers.
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "lumo/admin/v1/registration.pb.h"

namespace lumo::admin::v1 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Render(const RegisterClientResponse& reply) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  EXPECT_TRUE(
      google::protobuf::util::MessageToJsonString(reply, &out, options).ok());
  return out;
}

TEST(RfcJsonTest, PublicClientHasNoSecretMemberAndNumericZeroExpiry) {
  RegisterClientResponse reply;
  reply.set_client_id("cli_abc");
  reply.set_client_id_issued_at(1700000000);
  reply.set_client_secret_expires_at(0);
  reply.add_redirect_uris("https://app.example.com/cb");
  reply.set_token_endpoint_auth_method("none");
  const std::string json = Render(reply);
  EXPECT_THAT(json, Not(HasSubstr("client_secret\"")));
  EXPECT_THAT(json, HasSubstr("\"client_secret_expires_at\":0"));
  EXPECT_THAT(json, HasSubstr("\"client_id_issued_at\":1700000000"));
  // Unset optional metadata is left out too, not rendered as "".
  EXPECT_THAT(json, Not(HasSubstr("client_name")));
  EXPECT_THAT(json, Not(HasSubstr("\"scope\"")));
}

TEST(RfcJsonTest, ConfidentialClientHasItsSecret) {
  RegisterClientResponse reply;
  reply.set_client_id("cli_abc");
  reply.set_client_secret("cls_secret");
  const std::string json = Render(reply);
  EXPECT_THAT(json, HasSubstr("\"client_secret\":\"cls_secret\""));
}

}  // namespace
}  // namespace lumo::admin::v1
