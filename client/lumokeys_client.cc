#include "lumokeys_client.h"

#include <chrono>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/stub_options.h"

namespace lumo::client {
namespace {

using ::google::protobuf::internal::WireFormatLite;
using ::google::protobuf::io::CodedInputStream;
using ::google::protobuf::io::CodedOutputStream;
using ::google::protobuf::io::StringOutputStream;

constexpr absl::string_view kKeyPrefix = "lmk_";
constexpr size_t kKeyIdLength = 12;
constexpr absl::string_view kRedacted = "[REDACTED]";

bool IsBase62(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c));
}

// True when `value` can be sent as a metadata value and is one token:
// printable ASCII without spaces.
bool IsPlainToken(absl::string_view value) {
  for (char c : value) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

absl::Status ValidateOptions(const ClientOptions& options) {
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  // Values are deliberately not echoed: they are secrets.
  if (!IsPlainToken(options.api_key)) {
    return absl::InvalidArgumentError(
        "API key contains whitespace or non-printable characters");
  }
  if (!IsPlainToken(options.operator_token)) {
    return absl::InvalidArgumentError(
        "operator token contains whitespace or non-printable characters");
  }
  if (!IsPlainToken(options.service_token)) {
    return absl::InvalidArgumentError(
        "service token contains whitespace or non-printable characters");
  }
  return ChannelCredentialsFor(options).status();
}

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    absl::string_view option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(option, ": cannot read ", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::shared_ptr<grpc::Channel> ChannelFor(const ClientOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentialsFor(options);
  grpc::ChannelArguments args;
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  // On error the channel is never used: PrepareContext fails first.
  return grpc::CreateCustomChannel(
      options.address,
      credentials.ok() ? *credentials : grpc::InsecureChannelCredentials(),
      args);
}

std::string NewRequestId() {
  absl::BitGen gen;
  const uint64_t hi = absl::Uniform<uint64_t>(gen);
  const uint64_t lo = absl::Uniform<uint64_t>(gen);
  return absl::StrCat(absl::Hex(hi, absl::kZeroPad16),
                      absl::Hex(lo, absl::kZeroPad16));
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

// grpc.health.v1.HealthCheckRequest{service} in wire format.
std::string EncodeHealthCheckRequest(absl::string_view service) {
  std::string out;
  if (service.empty()) return out;
  StringOutputStream stream(&out);
  CodedOutputStream coded(&stream);
  coded.WriteTag(
      WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  coded.WriteVarint32(static_cast<uint32_t>(service.size()));
  coded.WriteRaw(service.data(), static_cast<int>(service.size()));
  coded.Trim();
  return out;
}

// The `status` field (1) of a grpc.health.v1.HealthCheckResponse; 0
// (UNKNOWN) when absent; an error for bytes that do not parse.
absl::StatusOr<int> DecodeHealthCheckStatus(const std::string& bytes) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  int status = 0;
  while (uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT)) {
      uint32_t value = 0;
      if (!in.ReadVarint32(&value)) break;
      status = static_cast<int>(value);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::InternalError("malformed health check response");
    }
  }
  if (!in.ConsumedEntireMessage()) {
    return absl::InternalError("malformed health check response");
  }
  return status;
}

}  // namespace

std::string RedactKeyMaterial(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t at = text.find(kKeyPrefix, i);
    if (at == absl::string_view::npos) {
      absl::StrAppend(&out, text.substr(i));
      break;
    }
    absl::StrAppend(&out, text.substr(i, at - i));
    // lmk_ + 12 base62 + '_' + at least one base62 character.
    size_t j = at + kKeyPrefix.size();
    size_t id_len = 0;
    while (j < text.size() && IsBase62(text[j])) {
      ++j;
      ++id_len;
    }
    if (id_len == kKeyIdLength && j + 1 < text.size() && text[j] == '_' &&
        IsBase62(text[j + 1])) {
      absl::StrAppend(&out, text.substr(at, j + 1 - at));  // lmk_<id>_
      absl::StrAppend(&out, kRedacted);
      j += 1;
      // The secret runs to the end of the base62 run, or to a key glued
      // onto it, which the next iteration handles.
      while (j < text.size() && IsBase62(text[j]) &&
             !absl::StartsWith(text.substr(j), kKeyPrefix)) {
        ++j;
      }
    } else {
      absl::StrAppend(&out, text.substr(at, j - at));
    }
    i = j;
  }
  return out;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  const absl::StatusCode absl_code =
      (code > 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated))
          ? static_cast<absl::StatusCode>(code)
          : absl::StatusCode::kUnknown;
  return absl::Status(absl_code, RedactKeyMaterial(status.error_message()));
}

std::string RequestIdOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kRequestIdPayloadUrl);
  return payload.has_value() ? std::string(*payload) : std::string();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS client certificate and key must be given together");
  }
  if (options.tls_ca_file.empty()) {
    if (!options.tls_cert_file.empty()) {
      return absl::InvalidArgumentError(
          "a TLS client certificate needs the server CA file as well");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadPem(options.tls_ca_file, "TLS CA file");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert =
        ReadPem(options.tls_cert_file, "TLS client certificate file");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        ReadPem(options.tls_key_file, "TLS client key file");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

Client::Client(ClientOptions options) : Client(options, ChannelFor(options)) {}

Client::Client(ClientOptions options,
               std::shared_ptr<grpc::ChannelInterface> channel)
    : options_(std::move(options)),
      options_status_(ValidateOptions(options_)),
      channel_(std::move(channel)),
      keys_(lumo::keys::v1::KeyService::NewStub(channel_)),
      webhooks_(lumo::webhooks::v1::WebhookService::NewStub(channel_)),
      ops_(lumo::ops::v1::OperatorService::NewStub(channel_)),
      portal_(lumo::portal::v1::PortalService::NewStub(channel_)),
      auth_(lumo::auth::v1::AuthService::NewStub(channel_)),
      audit_(lumo::audit::v1::AuditService::NewStub(channel_)) {}

absl::Status Client::PrepareContext(Credential credential,
                                    grpc::ClientContext& context,
                                    std::string& request_id) const {
  if (!options_status_.ok()) return options_status_;
  context.set_deadline(DeadlineAfter(options_.timeout));
  request_id = NewRequestId();
  context.AddMetadata("x-request-id", request_id);
  switch (credential) {
    case Credential::kNone:
      break;
    case Credential::kApiKey:
      if (!options_.api_key.empty()) {
        context.AddMetadata("authorization",
                            absl::StrCat("Bearer ", options_.api_key));
      }
      break;
    case Credential::kOperatorToken:
      if (!options_.operator_token.empty()) {
        context.AddMetadata("x-lumo-operator-token", options_.operator_token);
      }
      break;
    case Credential::kServiceToken:
      if (!options_.service_token.empty()) {
        context.AddMetadata("x-lumo-service-token", options_.service_token);
      }
      break;
  }
  return absl::OkStatus();
}

absl::Status Client::ConvertStatus(const grpc::Status& grpc_status,
                                   absl::string_view request_id) const {
  absl::Status status = FromGrpcStatus(grpc_status);
  if (status.ok()) return status;
  std::string message(status.message());
  for (const std::string* secret :
       {&options_.api_key, &options_.operator_token, &options_.service_token}) {
    if (!secret->empty()) {
      absl::StrReplaceAll({{*secret, kRedacted}}, &message);
    }
  }
  absl::Status out(status.code(), message);
  if (!request_id.empty()) {
    out.SetPayload(kRequestIdPayloadUrl, absl::Cord(request_id));
  }
  return out;
}

template <typename Stub, typename Request, typename Reply>
absl::StatusOr<Reply> Client::Call(
    Stub& stub, Credential credential,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Reply*),
    const Request& request) const {
  grpc::ClientContext context;
  std::string request_id;
  if (absl::Status s = PrepareContext(credential, context, request_id);
      !s.ok()) {
    return s;
  }
  Reply reply;
  const grpc::Status status = (stub.*method)(&context, request, &reply);
  if (!status.ok()) return ConvertStatus(status, request_id);
  return reply;
}

absl::StatusOr<lumo::keys::v1::ListApiKeysResponse> Client::ListApiKeys(
    const lumo::keys::v1::ListApiKeysRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::ListApiKeys, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::CreateApiKey(
    const lumo::keys::v1::CreateApiKeyRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::CreateApiKey, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::GetApiKey(
    const lumo::keys::v1::GetApiKeyRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::GetApiKey, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::RotateApiKey(
    const lumo::keys::v1::RotateApiKeyRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::RotateApiKey, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::RevokeApiKey(
    const lumo::keys::v1::RevokeApiKeyRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::RevokeApiKey, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::UpdateApiKey(
    const lumo::keys::v1::UpdateApiKeyRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::UpdateApiKey, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::DisableApiKey(
    const lumo::keys::v1::SetApiKeyDisabledRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::DisableApiKey, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::EnableApiKey(
    const lumo::keys::v1::SetApiKeyDisabledRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::EnableApiKey, request);
}

absl::StatusOr<google::protobuf::Empty> Client::DeleteApiKey(
    const lumo::keys::v1::DeleteApiKeyRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::DeleteApiKey, request);
}

absl::StatusOr<lumo::keys::v1::ApiKeyCredits> Client::GetApiKeyCredits(
    const lumo::keys::v1::GetApiKeyCreditsRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::GetApiKeyCredits, request);
}

absl::StatusOr<lumo::keys::v1::ApiKeyCredits> Client::UpdateApiKeyCredits(
    const lumo::keys::v1::UpdateApiKeyCreditsRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::UpdateApiKeyCredits, request);
}

absl::StatusOr<lumo::keys::v1::IdentityLimits> Client::GetIdentityLimits(
    const lumo::keys::v1::GetIdentityLimitsRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::GetIdentityLimits, request);
}

absl::StatusOr<lumo::keys::v1::IdentityLimits> Client::SetIdentityLimits(
    const lumo::keys::v1::SetIdentityLimitsRequest& request) const {
  return Call(*keys_, Credential::kApiKey,
              &lumo::keys::v1::KeyService::Stub::SetIdentityLimits, request);
}

absl::StatusOr<lumo::ops::v1::CreateTenantResponse> Client::CreateTenant(
    const lumo::ops::v1::CreateTenantRequest& request) const {
  return Call(*ops_, Credential::kOperatorToken,
              &lumo::ops::v1::OperatorService::Stub::CreateTenant, request);
}

absl::StatusOr<lumo::portal::v1::PortalUser> Client::SetPortalAdmin(
    const lumo::portal::v1::SetPortalAdminRequest& request) const {
  return Call(*portal_, Credential::kOperatorToken,
              &lumo::portal::v1::PortalService::Stub::SetPortalAdmin, request);
}

absl::StatusOr<lumo::ops::v1::Tenant> Client::GetTenant(
    const lumo::ops::v1::GetTenantRequest& request) const {
  return Call(*ops_, Credential::kOperatorToken,
              &lumo::ops::v1::OperatorService::Stub::GetTenant, request);
}

absl::StatusOr<lumo::keys::v1::ApiKey> Client::CreateTenantKey(
    const lumo::ops::v1::CreateTenantKeyRequest& request) const {
  return Call(*ops_, Credential::kOperatorToken,
              &lumo::ops::v1::OperatorService::Stub::CreateTenantKey, request);
}

absl::StatusOr<lumo::ops::v1::VerifyAuditChainResponse>
Client::VerifyAuditChain(
    const lumo::ops::v1::VerifyAuditChainRequest& request) const {
  return Call(*ops_, Credential::kOperatorToken,
              &lumo::ops::v1::OperatorService::Stub::VerifyAuditChain, request);
}

absl::StatusOr<lumo::webhooks::v1::ListWebhooksResponse> Client::ListWebhooks(
    const lumo::webhooks::v1::ListWebhooksRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::ListWebhooks, request);
}

absl::StatusOr<lumo::webhooks::v1::Webhook> Client::CreateWebhook(
    const lumo::webhooks::v1::CreateWebhookRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::CreateWebhook,
              request);
}

absl::StatusOr<lumo::webhooks::v1::Webhook> Client::GetWebhook(
    const lumo::webhooks::v1::GetWebhookRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::GetWebhook, request);
}

absl::StatusOr<lumo::webhooks::v1::Webhook> Client::UpdateWebhook(
    const lumo::webhooks::v1::UpdateWebhookRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::UpdateWebhook,
              request);
}

absl::StatusOr<google::protobuf::Empty> Client::DeleteWebhook(
    const lumo::webhooks::v1::DeleteWebhookRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::DeleteWebhook,
              request);
}

absl::StatusOr<lumo::webhooks::v1::Webhook> Client::RotateWebhookSecret(
    const lumo::webhooks::v1::RotateWebhookSecretRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::RotateWebhookSecret,
              request);
}

absl::StatusOr<lumo::webhooks::v1::WebhookDelivery> Client::TestWebhook(
    const lumo::webhooks::v1::TestWebhookRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::TestWebhook, request);
}

absl::StatusOr<lumo::webhooks::v1::ListWebhookDeliveriesResponse>
Client::ListWebhookDeliveries(
    const lumo::webhooks::v1::ListWebhookDeliveriesRequest& request) const {
  return Call(*webhooks_, Credential::kApiKey,
              &lumo::webhooks::v1::WebhookService::Stub::ListWebhookDeliveries,
              request);
}

absl::StatusOr<lumo::audit::v1::ListAuditLogsResponse> Client::ListAuditLogs(
    const lumo::audit::v1::ListAuditLogsRequest& request) const {
  return Call(*audit_, Credential::kApiKey,
              &lumo::audit::v1::AuditService::Stub::ListAuditLogs, request);
}

absl::StatusOr<lumo::audit::v1::ApiKeyUsage> Client::GetApiKeyUsage(
    const lumo::audit::v1::GetApiKeyUsageRequest& request) const {
  return Call(*audit_, Credential::kApiKey,
              &lumo::audit::v1::AuditService::Stub::GetApiKeyUsage, request);
}

absl::StatusOr<lumo::audit::v1::TenantUsage> Client::GetTenantUsage(
    const lumo::audit::v1::GetTenantUsageRequest& request) const {
  return Call(*audit_, Credential::kApiKey,
              &lumo::audit::v1::AuditService::Stub::GetTenantUsage, request);
}

absl::StatusOr<lumo::auth::v1::VerifyApiKeyResponse> Client::VerifyApiKey(
    const lumo::auth::v1::VerifyApiKeyRequest& request) const {
  return Call(*auth_, Credential::kServiceToken,
              &lumo::auth::v1::AuthService::Stub::VerifyApiKey, request);
}

absl::Status Client::CheckHealth(absl::string_view service) const {
  grpc::ClientContext context;
  std::string request_id;
  if (absl::Status s = PrepareContext(Credential::kNone, context, request_id);
      !s.ok()) {
    return s;
  }
  const std::string request_bytes = EncodeHealthCheckRequest(service);
  grpc::Slice slice(request_bytes);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status call_status;
  absl::Notification done;
  grpc::GenericStub stub(channel_);
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   call_status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!call_status.ok()) return ConvertStatus(call_status, request_id);

  grpc::Slice joined;
  if (!response.TrySingleSlice(&joined).ok() &&
      !response.DumpToSingleSlice(&joined).ok()) {
    return absl::InternalError("cannot read health check response");
  }
  const absl::StatusOr<int> serving = DecodeHealthCheckStatus(std::string(
      reinterpret_cast<const char*>(joined.begin()), joined.size()));
  if (!serving.ok()) return serving.status();
  constexpr int kServing = 1;
  if (*serving != kServing) {
    static constexpr absl::string_view kNames[] = {
        "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    const std::string name = (*serving >= 0 && *serving < 4)
                                 ? std::string(kNames[*serving])
                                 : absl::StrCat(*serving);
    return absl::UnavailableError(
        absl::StrCat("health status is ", name, ", not SERVING"));
  }
  return absl::OkStatus();
}

}  // namespace lumo::client
