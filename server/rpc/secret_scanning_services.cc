#include "server/rpc/secret_scanning_services.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/rpc/call.h"
#include "server/service/audit_json.h"
#include "server/service/errors.h"

namespace lumo::rpc {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

std::string ClientMetadata(const grpc::CallbackServerContext& context,
                           const char* key) {
  auto it = context.client_metadata().find(key);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

absl::Status BadBody(absl::string_view rule) {
  return service::InvalidField("body", rule);
}

// The string member `name` of `object` into `out`: absent leaves "";
// another type is an error.
bool StringMember(const Struct& object, const char* name, std::string* out) {
  auto it = object.fields().find(name);
  if (it == object.fields().end()) return true;
  if (it->second.kind_case() != Value::kStringValue) return false;
  *out = it->second.string_value();
  return true;
}

}  // namespace

absl::StatusOr<std::vector<service::ScannerPublicKey>> ParseScannerKeysJson(
    absl::string_view json) {
  Struct file;
  if (!google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(json.data(), json.size()), &file)
           .ok()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  auto keys = file.fields().find("public_keys");
  if (keys == file.fields().end() ||
      keys->second.kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError("public_keys: an array is required");
  }
  std::vector<service::ScannerPublicKey> out;
  const ListValue& list = keys->second.list_value();
  for (int i = 0; i < list.values_size(); ++i) {
    const Value& entry = list.values(i);
    service::ScannerPublicKey key;
    if (entry.kind_case() != Value::kStructValue ||
        !StringMember(entry.struct_value(), "key_identifier",
                      &key.key_identifier) ||
        !StringMember(entry.struct_value(), "key", &key.pem)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "public_keys[", i, "]: key_identifier and key must be strings"));
    }
    auto current = entry.struct_value().fields().find("is_current");
    key.is_current = current != entry.struct_value().fields().end() &&
                     current->second.kind_case() == Value::kBoolValue &&
                     current->second.bool_value();
    out.push_back(std::move(key));
  }
  return out;
}

absl::StatusOr<std::vector<service::LeakedToken>> ParseLeakReport(
    absl::string_view json) {
  ListValue list;
  if (!google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(json.data(), json.size()), &list)
           .ok()) {
    return BadBody("a JSON array of {token, type, url, source} is required");
  }
  if (static_cast<size_t>(list.values_size()) > service::kMaxLeakReportTokens) {
    return BadBody(absl::StrCat("a report holds at most ",
                                service::kMaxLeakReportTokens, " tokens"));
  }
  std::vector<service::LeakedToken> out;
  out.reserve(list.values_size());
  for (int i = 0; i < list.values_size(); ++i) {
    const Value& entry = list.values(i);
    service::LeakedToken token;
    if (entry.kind_case() != Value::kStructValue) {
      return BadBody(absl::StrCat("entry ", i, " is not an object"));
    }
    const Struct& object = entry.struct_value();
    if (object.fields().find("token") == object.fields().end() ||
        !StringMember(object, "token", &token.token) ||
        !StringMember(object, "type", &token.type) ||
        !StringMember(object, "url", &token.url) ||
        !StringMember(object, "source", &token.source)) {
      return BadBody(absl::StrCat(
          "entry ", i,
          ": token is a required string; type, url and source are strings"));
    }
    out.push_back(std::move(token));
  }
  return out;
}

std::string RenderLeakVerdicts(
    const std::vector<service::TokenVerdict>& verdicts) {
  std::string out = "[";
  for (size_t i = 0; i < verdicts.size(); ++i) {
    if (i > 0) out += ",";
    out += service::JsonObject()
               .Add("token_hash", verdicts[i].token_hash)
               .Add("token_type", verdicts[i].token_type)
               .Add("label", verdicts[i].true_positive ? "true_positive"
                                                       : "false_positive")
               .Build();
  }
  out += "]";
  return out;
}

grpc::ServerUnaryReactor* SecretScanningServiceImpl::ReportLeakedTokens(
    grpc::CallbackServerContext* context,
    const lumo::webhooks::v1::ReportLeakedTokensRequest* request,
    lumo::api::HttpBody* response) {
  static const auto& method =
      Method("lumo.webhooks.v1.SecretScanningService.ReportLeakedTokens");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, "", false,
      [this, context, request, response](
          const service::Principal&,
          const service::RequestInfo& info) -> absl::Status {
        const std::string& body = request->body().data();
        if (body.size() > service::kMaxLeakReportBytes) {
          return BadBody("a report is at most 1 MiB");
        }
        if (absl::Status signed_ok = ctx_.intake->Authenticate(
                ClientMetadata(*context, "github-public-key-identifier"),
                ClientMetadata(*context, "github-public-key-signature"), body);
            !signed_ok.ok()) {
          return signed_ok;
        }
        absl::StatusOr<std::vector<service::LeakedToken>> tokens =
            ParseLeakReport(body);
        if (!tokens.ok()) return tokens.status();
        absl::StatusOr<std::vector<service::TokenVerdict>> verdicts =
            ctx_.intake->Apply(info, *tokens);
        if (!verdicts.ok()) return verdicts.status();
        response->set_content_type("application/json");
        response->set_data(RenderLeakVerdicts(*verdicts));
        return absl::OkStatus();
      });
}

}  // namespace lumo::rpc
