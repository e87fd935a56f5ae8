#include "tests/fuzz/fuzz_util.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "lumo/proto_files.h"

namespace lumo::fuzz {

const gateway::RouteTable& RealRouteTable() {
  static const gateway::RouteTable* table = [] {
    std::vector<const google::protobuf::ServiceDescriptor*> services;
    for (const char* name : lumo::kProtoFiles) {
      const google::protobuf::FileDescriptor* file =
          google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
              name);
      if (file == nullptr) {
        std::fprintf(stderr, "proto file not linked: %s\n", name);
        std::abort();
      }
      for (int i = 0; i < file->service_count(); ++i) {
        services.push_back(file->service(i));
      }
    }
    absl::StatusOr<gateway::RouteTable> built =
        gateway::RouteTable::Build(services);
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
