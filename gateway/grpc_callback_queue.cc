#include "gateway/grpc_callback_queue.h"

#include <cstdlib>
#include <memory>

#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace lumo::gateway {

void PinGrpcCallbackQueue() {
  // A server with a callback service takes a reference on the shared
  // queue when it is built. It listens on no port and is never shut down
  // or destroyed, so neither is that reference released.
  static grpc::Server* const pin = [] {
    auto* service = new grpc::CallbackGenericService();
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (server == nullptr) std::abort();  // gRPC cannot start at all
    return server.release();
  }();
  (void)pin;
}

}  // namespace lumo::gateway
