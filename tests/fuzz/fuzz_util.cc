#include "tests/fuzz/fuzz_util.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "gateway/gateway.h"
#include "google/protobuf/descriptor.h"

namespace lumo::fuzz {

const gateway::RouteTable& RealRouteTable() {
  static const gateway::RouteTable* table = [] {
    absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
        services = gateway::LumoServices();
    if (!services.ok()) {
      std::fprintf(stderr, "%s\n", services.status().ToString().c_str());
      std::abort();
    }
    absl::StatusOr<gateway::RouteTable> built =
        gateway::RouteTable::Build(*services);
    if (!built.ok() || built->routes().empty()) {
      std::fprintf(stderr, "route table: %s\n",
                   built.status().ToString().c_str());
      std::abort();
    }
    return new gateway::RouteTable(*std::move(built));
  }();
  return *table;
}

std::string PercentEncodeSegment(absl::string_view segment) {
  std::string out;
  for (char c : segment) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppendFormat(&out, "%%%02X", static_cast<unsigned char>(c));
    }
  }
  return out;
}

absl::string_view TakeUntil(absl::string_view* data, char separator) {
  const size_t pos = data->find(separator);
  if (pos == absl::string_view::npos) {
    absl::string_view all = *data;
    *data = absl::string_view();
    return all;
  }
  absl::string_view head = data->substr(0, pos);
  data->remove_prefix(pos + 1);
  return head;
}

}  // namespace lumo::fuzz
