// HTTP path templates of the `(google.api.http)` route annotation and the
// request-path splitter/decoder that feeds them.
//
// Template grammar (a subset of google.api.http):
//
//   Template = "/" Segment { "/" Segment }
//   Segment  = Literal | "{" FieldPath [ "=" ( "*" | "**" ) ] "}"
//   FieldPath = Ident { "." Ident }      Ident = [A-Za-z_][A-Za-z0-9_]*
//   Literal  = 1*( unreserved | sub-delims minus "*" | ":" | "@" )
//
// `{f}` and `{f=*}` bind exactly one segment; `{f=**}` binds one or more
// segments (the rest of the path) and may only be the last segment. Bare
// `*`/`**` (anonymous wildcards), percent-encoded literals, `.`/`..`
// literals, a trailing `/` and the `:verb` suffix are not supported.
//
// Request paths are split on `/` BEFORE percent-decoding, so `%2F` never
// creates a segment and `..%2f` stays inside one segment. Decisions:
//   * the path must start with `/`; `?` and `#` must already be removed;
//   * one trailing `/` is ignored (`/a/b/` is `/a/b`); any other empty
//     segment (`//`, `/a//b`, `/a/b//`) makes the path malformed;
//   * a segment that decodes to `.` or `..` makes the path malformed (paths
//     are never normalised, so traversal is refused rather than resolved);
//   * invalid percent-escapes, decoded bytes that are not UTF-8, and decoded
//     control characters (U+0000-U+001F, U+007F; so `%00` too) make the path
//     malformed;
//   * decoding happens exactly once: `%252e` is the literal segment `%2e`.
#ifndef LUMOKEYS_GATEWAY_TRANSCODING_PATH_TEMPLATE_H_
#define LUMOKEYS_GATEWAY_TRANSCODING_PATH_TEMPLATE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace lumo::gateway {

// Values bound by a template match: (field path as written in the template,
// decoded value), in template order. A `**` value is its decoded segments
// joined with `/`.
using Variables = std::vector<std::pair<std::string, std::string>>;

// A parsed path template. Immutable after Parse; thread-safe.
class PathTemplate {
 public:
  struct Segment {
    enum class Kind {
      kLiteral,   // matches `text` exactly (after decoding the request)
      kVariable,  // binds one segment to the field path `text`
      kRest,      // binds one or more trailing segments to `text`
    };
    Kind kind;
    std::string text;

    bool operator==(const Segment& other) const {
      return kind == other.kind && text == other.text;
    }
  };

  // INVALID_ARGUMENT with a message naming the problem (the template is
  // ours, from an annotation, so it may be quoted in full).
  static absl::StatusOr<PathTemplate> Parse(absl::string_view text);

  // The template as written in the annotation.
  const std::string& text() const { return text_; }
  const std::vector<Segment>& segments() const { return segments_; }

  // The field paths of the variables, in template order.
  std::vector<std::string> FieldPaths() const;

  // True when the decoded `segments` match; on success the bound variables
  // are appended to `*variables` (which may be null).
  bool Match(absl::Span<const std::string> segments,
             Variables* variables) const;

  // True when both templates have the same literals and the same kinds of
  // variables at the same positions (variable names aside): exactly the
  // templates that match the same paths at the same precedence.
  bool SameShape(const PathTemplate& other) const;

  // Precedence between two templates that both match some path: compares
  // segment kinds left to right, literal > one-segment variable > rest, and
  // returns >0 when `a` wins, <0 when `b` wins, 0 for the same shape.
  static int ComparePrecedence(const PathTemplate& a, const PathTemplate& b);

 private:
  std::string text_;
  std::vector<Segment> segments_;
};

// Splits an HTTP request path (no query string or fragment) into
// percent-decoded segments following the rules in the file comment.
// INVALID_ARGUMENT with a short message that never echoes the path when the
// path is malformed. "/" yields no segments.
absl::StatusOr<std::vector<std::string>> SplitRequestPath(
    absl::string_view path);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_TRANSCODING_PATH_TEMPLATE_H_
