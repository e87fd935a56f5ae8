#include "gateway/openapi.h"

#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "lumo/api/annotations.pb.h"

namespace lumo::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Struct;
using google::protobuf::Value;

Value Str(absl::string_view s) {
  Value v;
  v.set_string_value(std::string(s));
  return v;
}
Value Bool(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}
Struct& Obj(Value& v) { return *v.mutable_struct_value(); }
Struct& Field(Struct& s, const std::string& key) {
  return *(*s.mutable_fields())[key].mutable_struct_value();
}
void Set(Struct& s, const std::string& key, Value v) {
  (*s.mutable_fields())[key] = std::move(v);
}
Value Ref(const std::string& name) {
  Value v;
  Set(Obj(v), "$ref", Str("#/components/schemas/" + name));
  return v;
}

// The schema of a well-known type as the JSON renderer writes it; false
// for other messages.
bool WellKnownSchema(const Descriptor* d, Value* out) {
  const std::string& name = d->full_name();
  Struct& s = Obj(*out);
  if (name == "google.protobuf.Timestamp") {
    Set(s, "type", Str("string"));
    Set(s, "format", Str("date-time"));
  } else if (name == "google.protobuf.Duration") {
    Set(s, "type", Str("string"));
  } else if (name == "google.protobuf.Struct") {
    Set(s, "type", Str("object"));
    Set(s, "additionalProperties", Bool(true));
  } else if (name == "google.protobuf.ListValue") {
    Set(s, "type", Str("array"));
    Field(s, "items");  // any JSON value
  } else if (name == "google.protobuf.Value") {
    Set(s, "nullable", Bool(true));  // any JSON value
  } else if (name == "google.protobuf.Empty" || name == "google.protobuf.Any") {
    Set(s, "type", Str("object"));
  } else {
    return false;
  }
  return true;
}

// Builds component schemas of messages as the gateway renders them
// (gateway/transcoding/README.md, "Rendering"): fields marked
// SECRET_NEVER_SHOWN are left out; unset `optional` scalars and unset
// messages are null, except fields rendered only when set (shown-once
// secrets, omit_when_unset), which are absent instead. With `proto_names`
// (the RFC-style routes) properties use the proto field names and the
// components are registered as "<message>.proto_names".
class SchemaBuilder {
 public:
  SchemaBuilder(Struct* schemas, bool proto_names)
      : schemas_(schemas), proto_names_(proto_names) {}

  // Registers `d` (and what it references) and returns a $ref to it.
  Value MessageRef(const Descriptor* d) {
    Value wkt;
    if (WellKnownSchema(d, &wkt)) return wkt;
    const std::string name = proto_names_
                                 ? absl::StrCat(d->full_name(), ".proto_names")
                                 : d->full_name();
    if (seen_.insert(name).second) {
      Value schema;
      Set(Obj(schema), "type", Str("object"));
      Struct& props = Field(Obj(schema), "properties");
      for (int i = 0; i < d->field_count(); ++i) {
        const FieldDescriptor* f = d->field(i);
        const lumo::api::FieldRule& rule =
            f->options().GetExtension(lumo::api::field);
        if (rule.secret() == lumo::api::SECRET_NEVER_SHOWN) continue;
        Value field = FieldSchema(f);
        const bool only_when_set =
            rule.secret() == lumo::api::SECRET_SHOWN_ONCE ||
            rule.omit_when_unset();
        const bool optional_scalar =
            f->has_presence() && !f->is_repeated() &&
            f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE &&
            f->real_containing_oneof() == nullptr;
        if (optional_scalar && !only_when_set) {
          Set(Obj(field), "nullable", Bool(true));
        }
        Set(props, proto_names_ ? f->name() : f->json_name(), std::move(field));
      }
      Set(*schemas_, name, std::move(schema));
    }
    return Ref(name);
  }

  Value FieldSchema(const FieldDescriptor* f) {
    if (f->is_map()) {
      Value v;
      Set(Obj(v), "type", Str("object"));
      Set(Obj(v), "additionalProperties",
          SingularSchema(f->message_type()->map_value()));
      return v;
    }
    if (f->is_repeated()) {
      Value v;
      Set(Obj(v), "type", Str("array"));
      Set(Obj(v), "items", SingularSchema(f));
      return v;
    }
    return SingularSchema(f);
  }

  Value SingularSchema(const FieldDescriptor* f) {
    Value v;
    Struct& s = Obj(v);
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        Set(s, "type", Str("string"));
        if (f->type() == FieldDescriptor::TYPE_BYTES) {
          Set(s, "format", Str("byte"));
        }
        break;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_UINT32:
        Set(s, "type", Str("integer"));
        Set(s, "format", Str("int32"));
        break;
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT64:
        Set(s, "type", Str("integer"));
        Set(s, "format", Str("int64"));
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        Set(s, "type", Str("boolean"));
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        Set(s, "type", Str("number"));
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        Set(s, "type", Str("string"));
        Value values;
        for (int i = 0; i < f->enum_type()->value_count(); ++i) {
          *values.mutable_list_value()->add_values() =
              Str(f->enum_type()->value(i)->name());
        }
        Set(s, "enum", std::move(values));
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        // Unset message fields render as null.
        Value wkt;
        if (WellKnownSchema(f->message_type(), &wkt)) {
          wkt.mutable_struct_value()->mutable_fields()->erase("nullable");
          Set(s, "nullable", Bool(true));
          for (auto& [key, value] : wkt.struct_value().fields()) {
            Set(s, key, value);
          }
          break;
        }
        Value list;
        *list.mutable_list_value()->add_values() =
            MessageRef(f->message_type());
        Set(s, "allOf", std::move(list));
        Set(s, "nullable", Bool(true));
        break;
      }
    }
    return v;
  }

 private:
  Struct* schemas_;
  const bool proto_names_;
  std::set<std::string> seen_;
};

std::string OpenApiPath(const PathTemplate& path) {
  std::string out;
  for (const PathTemplate::Segment& seg : path.segments()) {
    out += "/";
    if (seg.kind == PathTemplate::Segment::Kind::kLiteral) {
      out += seg.text;
    } else {
      absl::StrAppend(&out, "{", seg.text, "}");
    }
  }
  return out.empty() ? "/" : out;
}

Value JsonContent(Value schema) {
  Value content;
  Set(Field(Obj(content), "application/json"), "schema", std::move(schema));
  return content;
}

// An error answer: the documented error body, or on RFC-style routes the
// OAuth one.
Value ErrorResponseRef(const std::string& description, bool rfc_style) {
  Value v;
  Set(Obj(v), "description", Str(description));
  Set(Obj(v), "content", JsonContent(Ref(rfc_style ? "OAuthError" : "Error")));
  return v;
}

}  // namespace

std::string BuildOpenApiDocument(const RouteTable& routes) {
  Struct doc;
  Set(doc, "openapi", Str("3.0.3"));
  Struct& info = Field(doc, "info");
  Set(info, "title", Str("LumoKeys tenant admin API"));
  Set(info, "version", Str("1.0.0"));
  Set(info, "description",
      Str("Generated from the (google.api.http) annotations of the LumoKeys "
          "protos: every route here is served by the gateway."));
  Struct& components = Field(doc, "components");
  Struct& schemas = Field(components, "schemas");
  Struct& security_schemes = Field(components, "securitySchemes");
  {
    Struct& bearer = Field(security_schemes, "bearerAuth");
    Set(bearer, "type", Str("http"));
    Set(bearer, "scheme", Str("bearer"));
    Set(bearer, "description",
        Str("`Authorization: Bearer lmk_...` (or `Authorization: ApiKey "
            "lmk_...`)"));
    Struct& header = Field(security_schemes, "apiKeyHeader");
    Set(header, "type", Str("apiKey"));
    Set(header, "in", Str("header"));
    Set(header, "name", Str("X-API-Key"));
  }
  {
    Struct& error = Field(schemas, "Error");
    Set(error, "type", Str("object"));
    Value required;
    for (const char* name : {"error", "status", "code", "message"}) {
      *required.mutable_list_value()->add_values() = Str(name);
    }
    Set(error, "required", std::move(required));
    Struct& props = Field(error, "properties");
    Set(Field(props, "error"), "type", Str("boolean"));
    Set(Field(props, "status"), "type", Str("integer"));
    Set(Field(props, "code"), "type", Str("string"));
    Set(Field(props, "message"), "type", Str("string"));
    Set(Field(props, "details"), "type", Str("object"));
  }
  {
    // RFC 6749 §5.2 / RFC 7591 §3.2.2 error body of the RFC-style routes.
    Struct& error = Field(schemas, "OAuthError");
    Set(error, "type", Str("object"));
    Value required;
    for (const char* name : {"error", "error_description"}) {
      *required.mutable_list_value()->add_values() = Str(name);
    }
    Set(error, "required", std::move(required));
    Struct& props = Field(error, "properties");
    Set(Field(props, "error"), "type", Str("string"));
    Set(Field(props, "error_description"), "type", Str("string"));
  }
  Value security;
  for (const char* scheme : {"bearerAuth", "apiKeyHeader"}) {
    Value alternative;
    (*Obj(alternative).mutable_fields())[scheme].mutable_list_value();
    *security.mutable_list_value()->add_values() = std::move(alternative);
  }
  Set(doc, "security", std::move(security));

  SchemaBuilder builder(&schemas, /*proto_names=*/false);
  SchemaBuilder proto_names_builder(&schemas, /*proto_names=*/true);
  Struct& paths = Field(doc, "paths");
  for (const Route& route : routes.routes()) {
    Struct& item = Field(paths, OpenApiPath(route.path));
    Struct& op = Field(item, absl::AsciiStrToLower(route.verb));
    const bool rfc_style =
        route.method->options().GetExtension(lumo::api::rest).rfc_style();
    // Unique across services: a generated client names its calls by it.
    Set(op, "operationId", Str(route.method->name()));
    Value tags;
    *tags.mutable_list_value()->add_values() =
        Str(route.method->service()->name());
    Set(op, "tags", std::move(tags));
    Set(op, "summary",
        Str(absl::StrCat(route.method->service()->full_name(), ".",
                         route.method->name())));

    Value parameters;
    std::set<std::string> bound;
    for (const std::string& name : route.path.FieldPaths()) {
      bound.insert(name);
      Value p;
      Set(Obj(p), "name", Str(name));
      Set(Obj(p), "in", Str("path"));
      Set(Obj(p), "required", Bool(true));
      Set(Field(Obj(p), "schema"), "type", Str("string"));
      *parameters.mutable_list_value()->add_values() = std::move(p);
    }
    const Descriptor* input = route.method->input_type();
    if (route.body.empty()) {
      // Scalar, repeated-scalar and Timestamp fields not bound by the path
      // are query parameters.
      for (int i = 0; i < input->field_count(); ++i) {
        const FieldDescriptor* f = input->field(i);
        const bool timestamp =
            f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
            !f->is_repeated() &&
            f->message_type()->full_name() == "google.protobuf.Timestamp";
        if (bound.count(f->name()) ||
            (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !timestamp)) {
          continue;
        }
        Value p;
        Set(Obj(p), "name", Str(f->json_name()));
        Set(Obj(p), "in", Str("query"));
        Set(Obj(p), "required", Bool(false));
        Set(Obj(p), "schema",
            timestamp ? builder.MessageRef(f->message_type())
                      : builder.FieldSchema(f));
        *parameters.mutable_list_value()->add_values() = std::move(p);
      }
    } else {
      Struct& body = Field(op, "requestBody");
      Set(body, "required", Bool(false));
      const Descriptor* body_type =
          route.body == "*"
              ? input
              : input->FindFieldByName(route.body)->message_type();
      if (body_type->full_name() == "lumo.api.HttpBody") {
        // A raw body (a lumo.api.HttpBody field): forwarded as it is.
        Value binary;
        Set(Obj(binary), "type", Str("string"));
        Set(Obj(binary), "format", Str("binary"));
        Value content;
        Set(Field(Obj(content), "application/json"), "schema", binary);
        Set(body, "content", std::move(content));
      } else {
        Set(body, "content", JsonContent(builder.MessageRef(body_type)));
      }
    }
    for (const std::string& header : route.method->options()
                                         .GetExtension(lumo::api::rest)
                                         .forward_headers()) {
      Value p;
      Set(Obj(p), "name", Str(header));
      Set(Obj(p), "in", Str("header"));
      Set(Obj(p), "required", Bool(false));
      Set(Field(Obj(p), "schema"), "type", Str("string"));
      *parameters.mutable_list_value()->add_values() = std::move(p);
    }
    if (parameters.list_value().values_size() > 0) {
      Set(op, "parameters", std::move(parameters));
    }

    Struct& responses = Field(op, "responses");
    const std::string ok_status = absl::StrCat(route.success_status);
    Struct& ok = Field(responses, ok_status);
    if (route.success_status == 204) {
      Set(ok, "description", Str("No content"));
    } else if (route.method->output_type()->full_name() ==
               "lumo.api.HttpBody") {
      // A raw body (lumo.api.HttpBody): one entry per declared type.
      if (route.method->server_streaming()) {
        // Streamed: the messages' data, concatenated, sent as it is read.
        Set(ok, "description",
            Str("The body as a file, streamed with Transfer-Encoding: "
                "chunked (HTTP/1.0: until the connection closes). A failure "
                "after the status line ends the transfer without its last "
                "chunk: a client must treat such a body as incomplete."));
        Set(ok, "x-lumo-streamed", Bool(true));
      } else {
        Set(ok, "description", Str("The body as a file"));
      }
      const auto& types = route.method->options()
                              .GetExtension(lumo::api::rest)
                              .response_content_types();
      Value content;
      Value binary;
      Set(Obj(binary), "type", Str("string"));
      Set(Obj(binary), "format", Str("binary"));
      if (types.empty()) {
        Set(Field(Obj(content), "application/octet-stream"), "schema", binary);
      }
      for (const std::string& type : types) {
        Set(Field(Obj(content), type), "schema", binary);
      }
      Set(ok, "content", std::move(content));
      Value disposition;
      Set(Obj(disposition), "description", Str("attachment; filename=\"...\""));
      Set(Field(Obj(disposition), "schema"), "type", Str("string"));
      Set(Field(ok, "headers"), "Content-Disposition", std::move(disposition));
    } else {
      Set(ok, "description", Str("Success"));
      const Descriptor* output = route.method->output_type();
      const bool is_list = output->field_count() == 2 &&
                           output->FindFieldByName("data") != nullptr &&
                           output->FindFieldByName("meta") != nullptr;
      Value envelope;
      if (rfc_style) {
        envelope = proto_names_builder.MessageRef(output);
      } else if (is_list) {
        envelope = builder.MessageRef(output);
      } else {
        Set(Obj(envelope), "type", Str("object"));
        Struct& props = Field(Obj(envelope), "properties");
        Set(props, "data", builder.MessageRef(output));
        if (!route.success_message.empty()) {
          Set(Field(props, "message"), "type", Str("string"));
        }
      }
      Set(ok, "content", JsonContent(std::move(envelope)));
    }
    // Every status the gateway can answer on a matched route
    // (docs/gateway.md, "Errors").
    Set(responses, "400", ErrorResponseRef("Invalid request", rfc_style));
    Set(responses, "401",
        ErrorResponseRef("Missing or invalid credential", rfc_style));
    Set(responses, "403",
        ErrorResponseRef("Insufficient scope or not allowed", rfc_style));
    Set(responses, "404", ErrorResponseRef("Not found", rfc_style));
    Set(responses, "409",
        ErrorResponseRef("Conflict with the current state", rfc_style));
    if (!route.body.empty()) {
      Set(responses, "415",
          ErrorResponseRef("The body is not application/json", rfc_style));
    }
    Set(responses, "429", ErrorResponseRef("Rate limited", rfc_style));
    Set(responses, "500", ErrorResponseRef("Internal error", rfc_style));
    Set(responses, "501",
        ErrorResponseRef("Not implemented by this server", rfc_style));
    Set(responses, "503", ErrorResponseRef("Service unavailable", rfc_style));
    // The HTTP server's own limits, answered before any route is chosen:
    // always the documented error body.
    Set(responses, "408",
        ErrorResponseRef("The request was not received in time", false));
    Set(responses, "413", ErrorResponseRef("The body is too large", false));
    Set(responses, "414",
        ErrorResponseRef("The request target is too long", false));
    Set(responses, "431",
        ErrorResponseRef("The request headers are too large", false));
  }

  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(doc, &json, options);
  return json;
}

}  // namespace lumo::gateway
