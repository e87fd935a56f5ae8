// Fuzzes the gateway's HTTP request parsing on raw bytes: the RequestFramer
// the server's sessions use (head location, wire::ParseRequestHead, Beast's
// body framing, its own chunked decoder, the head/target/body limits), with
// properties:
//   * segmentation does not matter: the bytes fed whole and fed in small
//     pieces (as TCP may deliver them) give the same outcome, status, head,
//     body and number of bytes consumed, for every request (no exemption:
//     chunked bodies too, see docs/hardening.md);
//   * errors are only the documented statuses (400, 413, 414, 431, 505);
//   * an accepted head is clean (token method, origin-form target, lower-case
//     token field names, values without control bytes or surrounding
//     blanks), a Content-Length body has exactly that length, no body
//     exceeds the limit, and the head re-serialises to text that parses to
//     the same head.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/http/request_framer.h"
#include "gateway/http/wire.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using lumo::gateway::internal::RequestFramer;
namespace wire = lumo::gateway::wire;

// The head limit keeps production's order (above the target limit plus the
// request-line slack, as the 16 KiB default is), so 414 and 431 are decided
// the same way whatever the segmentation; the body limit is small so that
// the fuzzer reaches it.
constexpr size_t kMaxHeaderBytes = wire::kMaxTargetBytes + 256;
constexpr size_t kMaxBodyBytes = 512;

struct Outcome {
  RequestFramer::State state = RequestFramer::State::kNeedMore;
  int status = 0;
  size_t consumed = 0;
  bool head_parsed = false;
  wire::RequestHead head;
  std::string body;
  std::string message;  // the error's message (diagnostics only)
};

bool SameHead(const wire::RequestHead& a, const wire::RequestHead& b) {
  return a.method == b.method && a.target == b.target &&
         a.version_minor == b.version_minor && a.headers == b.headers &&
         a.content_length == b.content_length && a.chunked == b.chunked &&
         a.keep_alive == b.keep_alive && a.expect_continue == b.expect_continue;
}

// Drives a framer the way a session does, delivering `input` in pieces whose
// sizes cycle through `pieces` (0 = everything at once).
Outcome Drive(absl::string_view input, absl::string_view pieces) {
  RequestFramer framer(kMaxHeaderBytes, kMaxBodyBytes);
  framer.Reset();
  Outcome out;
  std::string buffer;
  size_t delivered = 0;
  size_t piece = 0;
  bool in_body = false;
  while (delivered < input.size()) {
    size_t n = input.size() - delivered;
    if (!pieces.empty()) {
      n = std::min<size_t>(
          n, 1 + static_cast<uint8_t>(pieces[piece++ % pieces.size()]) % 16);
    }
    buffer.append(input.substr(delivered, n).data(), n);
    delivered += n;
    while (true) {
      const RequestFramer::Step step =
          in_body ? framer.ReadBody(buffer) : framer.ReadHead(buffer);
      FUZZ_CHECK(step.consumed <= buffer.size());
      buffer.erase(0, step.consumed);
      out.consumed += step.consumed;
      if (step.state == RequestFramer::State::kHeadDone) {
        FUZZ_CHECK(!in_body);
        in_body = true;
        continue;
      }
      if (step.state == RequestFramer::State::kNeedMore) break;
      out.state = step.state;
      out.status = step.status;
      out.head_parsed = framer.head_parsed();
      out.head = framer.head();
      if (step.state == RequestFramer::State::kComplete) {
        out.body = framer.TakeBody();
      } else {
        FUZZ_CHECK(!step.message.empty());
        out.message = std::string(step.message);
      }
      return out;
    }
  }
  out.head_parsed = framer.head_parsed();
  if (out.head_parsed) out.head = framer.head();
  return out;
}

std::string Serialize(const wire::RequestHead& head) {
  std::string text = absl::StrCat(head.method, " ", head.target, " HTTP/1.",
                                  head.version_minor, "\r\n");
  for (const auto& [name, value] : head.headers) {
    absl::StrAppend(&text, name, ": ", value, "\r\n");
  }
  text += "\r\n";
  return text;
}

void CheckAcceptedHead(const wire::RequestHead& head) {
  FUZZ_CHECK(wire::IsToken(head.method));
  FUZZ_CHECK(!head.target.empty() && head.target[0] == '/');
  FUZZ_CHECK(head.target.size() <= wire::kMaxTargetBytes);
  FUZZ_CHECK(head.version_minor == 0 || head.version_minor == 1);
  FUZZ_CHECK(head.headers.size() <= wire::kMaxHeaderFields);
  for (const auto& [name, value] : head.headers) {
    FUZZ_CHECK(wire::IsToken(name));
    FUZZ_CHECK(absl::AsciiStrToLower(name) == name);
    FUZZ_CHECK(wire::IsSafeFieldValue(value));
    FUZZ_CHECK(value.empty() ||
               (value.front() != ' ' && value.front() != '\t' &&
                value.back() != ' ' && value.back() != '\t'));
  }
  FUZZ_CHECK(!(head.chunked && head.content_length.has_value()));
  wire::RequestHead again;
  FUZZ_CHECK(wire::ParseRequestHead(Serialize(head), &again).ok());
  FUZZ_CHECK(SameHead(head, again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // Byte 0 seeds the piece sizes; the rest is the stream.
  const absl::string_view all(reinterpret_cast<const char*>(data), size);
  const absl::string_view input = all.substr(1);
  const std::string pieces = absl::StrCat(all.substr(0, 1), input.substr(0, 7));

  const Outcome whole = Drive(input, "");
  const Outcome split = Drive(input, pieces);
  if (whole.state != split.state || whole.status != split.status) {
    fprintf(stderr,
            "whole: state %d status %d (%s); split: state %d status %d (%s)\n",
            static_cast<int>(whole.state), whole.status, whole.message.c_str(),
            static_cast<int>(split.state), split.status, split.message.c_str());
  }
  // Every request, chunked bodies included (RequestFramer frames those
  // itself), is segmentation-independent in state, status, message and
  // bytes consumed.
  FUZZ_CHECK(whole.state == split.state);
  FUZZ_CHECK(whole.status == split.status);
  FUZZ_CHECK(whole.consumed == split.consumed);
  FUZZ_CHECK(whole.message == split.message);
  FUZZ_CHECK(whole.head_parsed == split.head_parsed);
  FUZZ_CHECK(whole.consumed <= input.size());

  switch (whole.state) {
    case RequestFramer::State::kError:
      FUZZ_CHECK(whole.status == 400 || whole.status == 413 ||
                 whole.status == 414 || whole.status == 431 ||
                 whole.status == 505);
      break;
    case RequestFramer::State::kComplete:
      FUZZ_CHECK(SameHead(whole.head, split.head));
      FUZZ_CHECK(whole.body == split.body);
      CheckAcceptedHead(whole.head);
      FUZZ_CHECK(whole.body.size() <= kMaxBodyBytes);
      if (whole.head.content_length.has_value()) {
        FUZZ_CHECK(whole.body.size() == *whole.head.content_length);
      }
      if (!whole.head.chunked && !whole.head.content_length.has_value()) {
        FUZZ_CHECK(whole.body.empty());
      }
      break;
    default:
      break;  // ran out of input
  }
  return 0;
}
