package webhttp

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// BearerOK reports whether r carries token as its bearer token
// (Authorization: Bearer TOKEN). The scheme is case-insensitive (RFC
// 7235), the token is not. The tokens' SHA-256 digests are compared in
// constant time, so that neither the token's bytes nor its length show in
// the time a refusal takes.
func BearerOK(r *http.Request, token string) bool {
	auth := r.Header.Get("Authorization")
	ok := len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ")
	if !ok {
		auth = "       " // compared all the same
	}
	got, want := sha256.Sum256([]byte(auth[7:])), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1 && ok
}

// IsLoopbackHost reports whether host (a name or an address, no port) is
// this machine's loopback: "localhost", 127.0.0.0/8 or ::1. Beyond it a
// pushbench server or agent asks for a bearer token.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
