// An OpenAPI 3.0 document generated from the same route annotations the
// gateway serves, so the document and the routes cannot drift apart.
#ifndef LUMOKEYS_GATEWAY_OPENAPI_H_
#define LUMOKEYS_GATEWAY_OPENAPI_H_

#include <string>

#include "gateway/transcoding/route_table.h"

namespace lumo::gateway {

// JSON text of the OpenAPI 3.0.3 document for every route in `routes`.
std::string BuildOpenApiDocument(const RouteTable& routes);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_OPENAPI_H_
