#include "server/service/page_token.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/core/crypto.h"
#include "server/service/errors.h"

namespace lumo::service {

namespace {

constexpr absl::string_view kPrefix = "p1.";
constexpr size_t kFingerprintBytes = 8;
// Longer texts are refused before decoding.
constexpr size_t kMaxTokenLength = 2048;

// Length-prefixed parts, so that no two different queries share a text.
std::string Fingerprint(const QueryParts& query) {
  std::string text;
  for (const std::string& part : query) {
    absl::StrAppend(&text, part.size(), ":", part, ";");
  }
  const core::Digest digest = core::Sha256(text);
  return std::string(core::AsStringView(digest).substr(0, kFingerprintBytes));
}

absl::Status BadToken() {
  return InvalidField("pageToken",
                      "not a meta.nextPageToken of this list and query");
}

void AppendLength(std::string* out, size_t n) {
  out->push_back(static_cast<char>((n >> 8) & 0xff));
  out->push_back(static_cast<char>(n & 0xff));
}

}  // namespace

std::string EncodePageToken(const QueryParts& query,
                            absl::Span<const PositionField> position) {
  std::string payload = Fingerprint(query);
  for (const PositionField& field : position) {
    if (!field.has_value()) {
      payload.push_back('\0');
      continue;
    }
    payload.push_back('\1');
    const size_t n = std::min<size_t>(field->size(), 0xffff);
    AppendLength(&payload, n);
    payload.append(field->data(), n);
  }
  return absl::StrCat(kPrefix, absl::WebSafeBase64Escape(payload));
}

absl::StatusOr<std::vector<PositionField>> DecodePageToken(
    absl::string_view token, const QueryParts& query, size_t field_count) {
  if (token.size() > kMaxTokenLength || !absl::ConsumePrefix(&token, kPrefix)) {
    return BadToken();
  }
  std::string payload;
  if (!absl::WebSafeBase64Unescape(token, &payload) ||
      payload.size() < kFingerprintBytes ||
      payload.compare(0, kFingerprintBytes, Fingerprint(query)) != 0) {
    return BadToken();
  }
  absl::string_view rest = absl::string_view(payload).substr(kFingerprintBytes);
  std::vector<PositionField> fields;
  while (!rest.empty()) {
    const char flag = rest[0];
    rest.remove_prefix(1);
    if (flag == '\0') {
      fields.emplace_back(std::nullopt);
      continue;
    }
    if (flag != '\1' || rest.size() < 2) return BadToken();
    const size_t n = (static_cast<unsigned char>(rest[0]) << 8) |
                     static_cast<unsigned char>(rest[1]);
    rest.remove_prefix(2);
    if (rest.size() < n) return BadToken();
    fields.emplace_back(std::string(rest.substr(0, n)));
    rest.remove_prefix(n);
  }
  if (fields.size() != field_count) return BadToken();
  return fields;
}

std::string TimeField(absl::Time t) {
  return absl::StrCat(absl::ToUnixMicros(t));
}

PositionField OptionalTimeField(const std::optional<absl::Time>& t) {
  if (!t.has_value()) return std::nullopt;
  return TimeField(*t);
}

absl::StatusOr<std::optional<absl::Time>> ParseTimeField(
    const PositionField& field) {
  if (!field.has_value()) return std::optional<absl::Time>();
  int64_t micros = 0;
  if (!absl::SimpleAtoi(*field, &micros)) return BadToken();
  return std::optional<absl::Time>(absl::FromUnixMicros(micros));
}

absl::StatusOr<int64_t> ParseIntField(const PositionField& field) {
  int64_t value = 0;
  if (!field.has_value() || !absl::SimpleAtoi(*field, &value)) {
    return BadToken();
  }
  return value;
}

std::string EncodeSortPosition(const QueryParts& query, bool text_sort,
                               const SortPosition& position) {
  return EncodePageToken(query, {text_sort ? PositionField(position.text)
                                           : OptionalTimeField(position.time),
                                 PositionField(position.id)});
}

absl::StatusOr<SortPosition> DecodeSortPosition(absl::string_view token,
                                                const QueryParts& query,
                                                bool text_sort) {
  absl::StatusOr<std::vector<PositionField>> fields =
      DecodePageToken(token, query, 2);
  if (!fields.ok()) return fields.status();
  SortPosition position;
  if (text_sort) {
    if (!(*fields)[0].has_value()) return BadToken();
    position.text = *(*fields)[0];
  } else {
    absl::StatusOr<std::optional<absl::Time>> time =
        ParseTimeField((*fields)[0]);
    if (!time.ok()) return time.status();
    position.time = *time;
  }
  if (!(*fields)[1].has_value()) return BadToken();
  position.id = *(*fields)[1];
  return position;
}

absl::Status CheckPagingForm(std::optional<int32_t> page, bool has_token) {
  if (has_token && page.has_value()) {
    return InvalidField("page", "not with pageToken");
  }
  return absl::OkStatus();
}

storage::CountRequest CountFor(std::optional<bool> include_total,
                               bool has_token) {
  storage::CountRequest request;
  request.wanted = include_total.value_or(!has_token);
  request.cap = kTotalCountCap;
  return request;
}

absl::StatusOr<std::optional<SortPosition>> SortedPageStart(
    std::optional<int32_t> page, absl::string_view page_token,
    std::optional<bool> include_total, const QueryParts& query, bool text_sort,
    storage::CountRequest* count) {
  const bool has_token = !page_token.empty();
  if (absl::Status s = CheckPagingForm(page, has_token); !s.ok()) return s;
  *count = CountFor(include_total, has_token);
  if (!has_token) return std::optional<SortPosition>();
  absl::StatusOr<SortPosition> position =
      DecodeSortPosition(page_token, query, text_sort);
  if (!position.ok()) return position.status();
  return std::optional<SortPosition>(*std::move(position));
}

}  // namespace lumo::service
