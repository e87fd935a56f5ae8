// The peer in the benchmark's gateway rows (docs/benchmarks.md "A peer
// gateway"): grpc-gateway's reverse proxy, generated from our protos by
// Debian's protoc-gen-grpc-gateway, in front of the same lumokeys-server.
// It serves the KeyService routes only; the API key travels as it does
// through ours (an `x-api-key` request header becomes `x-api-key`
// metadata). Nothing else of ours is added: no service token, no client
// address, no request limits. Benchmark only, never a product component.
//
//	peer_gateway --listen=127.0.0.1:0 --backend=127.0.0.1:50051
//
// Prints "listening on <host>:<port>" once it serves.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	"google.golang.org/grpc"

	keys "lumopeer/lumo/keys/v1"
)

// forwardAPIKey passes the API key header on as metadata, and what
// grpc-gateway passes by default as it does.
func forwardAPIKey(header string) (string, bool) {
	if strings.EqualFold(header, "x-api-key") {
		return "x-api-key", true
	}
	return runtime.DefaultHeaderMatcher(header)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve HTTP on")
	backend := flag.String("backend", "", "lumokeys-server gRPC address")
	flag.Parse()
	if *backend == "" {
		fmt.Fprintln(os.Stderr, "--backend is required")
		os.Exit(2)
	}
	mux := runtime.NewServeMux(runtime.WithIncomingHeaderMatcher(forwardAPIKey))
	err := keys.RegisterKeyServiceHandlerFromEndpoint(
		context.Background(), mux, *backend,
		[]grpc.DialOption{grpc.WithInsecure()})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	os.Stdout.Sync()
	log.Fatal(http.Serve(l, mux))
}
