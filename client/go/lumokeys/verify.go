// Package lumokeys verifies the API key of an incoming HTTP request with
// LumoKeys and turns the outcome into the HTTP answer to send
// (docs/clients.md).
//
//	v, err := lumokeys.FromEnv("")
//	verdict := v.Verify(r.Context(), r.Header, []string{"admin:read"}, peer)
//	if !verdict.OK { verdict.WriteTo(w); return }
//
// A Verifier holds one gRPC connection; Verify is safe for concurrent use.
// The key is never logged and never part of an answer.
package lumokeys

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	authv1 "lumokeysgen/lumo/auth/v1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ErrorBody is the documented error body.
type ErrorBody struct {
	Error   bool   `json:"error"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Verdict is the outcome of one verification: OK with Key, or the Status,
// Headers and Body to send.
type Verdict struct {
	OK      bool
	Reason  string
	Status  int
	Headers map[string]string
	Body    *ErrorBody
	Key     *authv1.KeyMetadata
}

// WriteTo writes a refusal as the HTTP answer.
func (v *Verdict) WriteTo(w http.ResponseWriter) {
	for name, value := range v.Headers {
		w.Header().Set(name, value)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(v.Status)
	_ = json.NewEncoder(w).Encode(v.Body)
}

func refusal(reason string, code int, name, message string,
	headers map[string]string) *Verdict {
	if headers == nil {
		headers = map[string]string{}
	}
	return &Verdict{Reason: reason, Status: code, Headers: headers,
		Body: &ErrorBody{Error: true, Status: code, Code: name,
			Message: message}}
}

// Reasons that all mean "this key does not authenticate you"; the answer
// does not say which.
var invalid = map[authv1.VerifyReason]bool{
	authv1.VerifyReason_MALFORMED: true, authv1.VerifyReason_NOT_FOUND: true,
	authv1.VerifyReason_REVOKED: true, authv1.VerifyReason_EXPIRED: true,
	authv1.VerifyReason_ROTATED: true, authv1.VerifyReason_WRONG_TENANT: true,
}

// PresentedKey returns the key from "Authorization: Bearer|ApiKey <key>" or
// "X-API-Key", "" when neither is there, or a refusal when the request is
// malformed.
func PresentedKey(h http.Header) (string, *Verdict) {
	var keys []string
	if auth := strings.TrimSpace(h.Get("Authorization")); auth != "" {
		fields := strings.Fields(auth)
		if len(fields) != 2 || (!strings.EqualFold(fields[0], "bearer") &&
			!strings.EqualFold(fields[0], "apikey")) {
			return "", refusal("", 401, "invalid_token",
				"Authorization must be 'Bearer <key>' or 'ApiKey <key>'",
				map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`})
		}
		keys = append(keys, fields[1])
	}
	if k := strings.TrimSpace(h.Get("X-API-Key")); k != "" {
		keys = append(keys, k)
	}
	if len(keys) == 2 && keys[0] != keys[1] {
		return "", refusal("", 400, "invalid_request",
			"send the key in Authorization or X-API-Key, not two different keys",
			nil)
	}
	if len(keys) == 0 {
		return "", nil
	}
	return keys[0], nil
}

// Config says where LumoKeys is and how to reach it.
type Config struct {
	Address, ServiceToken, Tenant         string
	CAFile, CertFile, KeyFile, ServerName string
	Timeout                               time.Duration
}

// Verifier verifies keys for one tenant. Safe for concurrent use.
type Verifier struct {
	conn   *grpc.ClientConn
	client authv1.AuthServiceClient
	cfg    Config
}

// New connects (lazily) to LumoKeys.
func New(cfg Config) (*Verifier, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	opt := grpc.WithInsecure()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificate in " + cfg.CAFile)
		}
		tlsConfig := &tls.Config{RootCAs: pool, ServerName: cfg.ServerName}
		if cfg.CertFile != "" {
			pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, err
			}
			tlsConfig.Certificates = []tls.Certificate{pair}
		}
		opt = grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig))
	}
	conn, err := grpc.Dial(cfg.Address, opt)
	if err != nil {
		return nil, err
	}
	return &Verifier{conn: conn, client: authv1.NewAuthServiceClient(conn),
		cfg: cfg}, nil
}

// FromEnv reads the `lumokeys` CLI's settings: LUMOKEYS_ADDRESS,
// LUMOKEYS_SERVICE_TOKEN_FILE, LUMOKEYS_TENANT (unless tenant is given),
// LUMOKEYS_TLS_CA_FILE, LUMOKEYS_TLS_CERT_FILE, LUMOKEYS_TLS_KEY_FILE,
// LUMOKEYS_TLS_SERVER_NAME, LUMOKEYS_TIMEOUT (seconds).
func FromEnv(tenant string) (*Verifier, error) {
	need := func(name string) (string, error) {
		if v := os.Getenv(name); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%s is not set", name)
	}
	address, err := need("LUMOKEYS_ADDRESS")
	if err != nil {
		return nil, err
	}
	tokenFile, err := need("LUMOKEYS_SERVICE_TOKEN_FILE")
	if err != nil {
		return nil, err
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, err
	}
	if tenant == "" {
		if tenant, err = need("LUMOKEYS_TENANT"); err != nil {
			return nil, err
		}
	}
	timeout := 2 * time.Second
	if s := os.Getenv("LUMOKEYS_TIMEOUT"); s != "" {
		seconds, err := strconv.ParseFloat(s, 64)
		if err != nil || seconds <= 0 {
			return nil, errors.New("LUMOKEYS_TIMEOUT must be a positive number")
		}
		timeout = time.Duration(seconds * float64(time.Second))
	}
	return New(Config{Address: address,
		ServiceToken: strings.TrimSpace(string(token)), Tenant: tenant,
		CAFile:     os.Getenv("LUMOKEYS_TLS_CA_FILE"),
		CertFile:   os.Getenv("LUMOKEYS_TLS_CERT_FILE"),
		KeyFile:    os.Getenv("LUMOKEYS_TLS_KEY_FILE"),
		ServerName: os.Getenv("LUMOKEYS_TLS_SERVER_NAME"), Timeout: timeout})
}

// Close ends the connection.
func (v *Verifier) Close() error { return v.conn.Close() }

// Verify returns the verdict for the key in h (docs/clients.md). Fails
// closed: an error of the call is a 503.
func (v *Verifier) Verify(ctx context.Context, h http.Header,
	requiredScopes []string, clientIP string) *Verdict {
	key, refused := PresentedKey(h)
	if refused != nil {
		return refused
	}
	if key == "" {
		return refusal("", 401, "invalid_token", "an API key is required",
			map[string]string{"WWW-Authenticate": "Bearer"})
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-lumo-service-token",
		v.cfg.ServiceToken)
	var trailer metadata.MD
	reply, err := v.client.VerifyApiKey(ctx, &authv1.VerifyApiKeyRequest{
		Key: key, TenantSlug: v.cfg.Tenant, RequiredScopes: requiredScopes,
		ClientIp: clientIP}, grpc.Trailer(&trailer))
	if err != nil {
		if status.Code(err) == codes.ResourceExhausted {
			headers := map[string]string{}
			if wait := trailer.Get("retry-after"); len(wait) > 0 {
				headers["Retry-After"] = wait[0]
			}
			return refusal("RATE_LIMITED", 429, "rate_limit_exceeded",
				"too many failed attempts; retry later", headers)
		}
		return refusal("", 503, "service_unavailable",
			"key verification is unavailable", nil)
	}
	reason := reply.GetReason()
	switch {
	case reply.GetValid() && reason == authv1.VerifyReason_VALID:
		return &Verdict{OK: true, Reason: reason.String(), Status: 200,
			Key: reply.GetKey()}
	case invalid[reason]:
		return refusal(reason.String(), 401, "invalid_token",
			"the API key is not valid",
			map[string]string{"WWW-Authenticate": `Bearer error="invalid_token"`})
	case reason == authv1.VerifyReason_INSUFFICIENT_SCOPE:
		scope := strings.Join(requiredScopes, " ")
		return refusal(reason.String(), 403, "insufficient_scope",
			"the API key lacks a required scope ("+scope+")",
			map[string]string{"WWW-Authenticate": `Bearer error="insufficient_scope", scope="` + scope + `"`})
	case reason == authv1.VerifyReason_IP_NOT_ALLOWED:
		return refusal(reason.String(), 403, "ip_not_allowed",
			"the API key may not be used from this address", nil)
	case reason == authv1.VerifyReason_RATE_LIMITED:
		return refusal(reason.String(), 429, "rate_limit_exceeded",
			"the API key's rate limit is exhausted", nil)
	}
	return refusal(reason.String(), 503, "service_unavailable",
		"unexpected verification outcome", nil)
}
