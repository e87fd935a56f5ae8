// The access log's rule for request fields: a field the protos mark secret
// is never logged (MayLogField), and every credential-named field of every
// LumoKeys message carries the mark.
#include "server/rpc/metrics_interceptor.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "lumo/auth/v1/auth.pb.h"
#include "lumo/keys/v1/keys.pb.h"
#include "lumo/portal/v1/portal.pb.h"
#include "lumo/proto_files.h"

namespace lumo::rpc {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const FieldDescriptor& Field(const Descriptor* type, const char* name) {
  const FieldDescriptor* field = type->FindFieldByName(name);
  EXPECT_NE(field, nullptr) << type->full_name() << "." << name;
  return *field;
}

TEST(MayLogFieldTest, SecretsAreNeverLogged) {
  EXPECT_FALSE(MayLogField(
      Field(lumo::portal::v1::LoginRequest::descriptor(), "password")));
  EXPECT_FALSE(MayLogField(
      Field(lumo::auth::v1::VerifyApiKeyRequest::descriptor(), "key")));
  EXPECT_FALSE(MayLogField(Field(lumo::keys::v1::ApiKey::descriptor(), "key")));
  EXPECT_FALSE(MayLogField(
      Field(lumo::portal::v1::LoginResponse::descriptor(), "session_token")));
  // What the access log does read.
  EXPECT_TRUE(MayLogField(
      Field(lumo::portal::v1::LoginRequest::descriptor(), "tenant_slug")));
  EXPECT_TRUE(MayLogField(
      Field(lumo::keys::v1::CreateApiKeyRequest::descriptor(), "tenant_slug")));
}

// A string field named like a credential (password, key, api_key, *_secret,
// *_token) in any message of any LumoKeys proto file. The `key` of a map's
// entry message is the map's key (protobuf names it so), not a credential.
bool LooksLikeACredential(const FieldDescriptor& field) {
  if (field.type() != FieldDescriptor::TYPE_STRING) return false;
  if (field.containing_type()->options().map_entry()) return false;
  const std::string& name = field.name();
  return name == "password" || name == "key" || name == "api_key" ||
         absl::EndsWith(name, "_secret") || absl::EndsWith(name, "_token");
}

void CollectMessages(const Descriptor* type,
                     std::vector<const Descriptor*>* out) {
  out->push_back(type);
  for (int i = 0; i < type->nested_type_count(); ++i) {
    CollectMessages(type->nested_type(i), out);
  }
}

TEST(MayLogFieldTest, EveryCredentialFieldIsMarked) {
  int credentials = 0;
  for (const char* name : lumo::kProtoFiles) {
    const google::protobuf::FileDescriptor* file =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
            name);
    ASSERT_NE(file, nullptr) << name;
    std::vector<const Descriptor*> messages;
    for (int i = 0; i < file->message_type_count(); ++i) {
      CollectMessages(file->message_type(i), &messages);
    }
    for (const Descriptor* message : messages) {
      for (int i = 0; i < message->field_count(); ++i) {
        const FieldDescriptor& field = *message->field(i);
        if (!LooksLikeACredential(field)) continue;
        ++credentials;
        EXPECT_FALSE(MayLogField(field))
            << field.full_name() << " holds a credential but is not marked "
            << "(lumo.api.field).secret";
      }
    }
  }
  // ApiKey.key, VerifyApiKeyRequest.key, two client secrets, two passwords,
  // the session and CSRF tokens.
  EXPECT_GE(credentials, 8);
}

}  // namespace
}  // namespace lumo::rpc
