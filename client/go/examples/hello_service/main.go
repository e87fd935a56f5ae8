// An example web service (net/http) whose GET /hello needs an API key with
// the scope admin:read.
//
//	LUMOKEYS_ADDRESS=... LUMOKEYS_SERVICE_TOKEN_FILE=... \
//	LUMOKEYS_TENANT=acme-corp [LUMOKEYS_TLS_CA_FILE=...] \
//	hello_service 127.0.0.1:8092
//
// Prints "listening on <host>:<port>" once it serves (port 0: any free one).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"lumokeys"
)

var requiredScopes = []string{"admin:read"}

func main() {
	address := "127.0.0.1:8092"
	if len(os.Args) > 1 {
		address = os.Args[1]
	}
	verifier, err := lumokeys.FromEnv("")
	if err != nil {
		log.Fatal(err)
	}
	defer verifier.Close()
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		peer, _, _ := net.SplitHostPort(r.RemoteAddr)
		verdict := verifier.Verify(r.Context(), r.Header, requiredScopes, peer)
		if !verdict.OK {
			verdict.WriteTo(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]interface{}{
			"hello": verdict.Key.GetName(), "keyId": verdict.Key.GetId(),
			"scopes": verdict.Key.GetScopes()})
	})
	listener, err := net.Listen("tcp", address)
	if err != nil {
		log.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(address)
	fmt.Printf("listening on %s:%d\n", host,
		listener.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(http.Serve(listener, nil))
}
