package webhttp

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// BearerOK reports whether r carries token as its bearer token
// (Authorization: Bearer TOKEN). The scheme is case-insensitive (RFC
// 7235), the token is not, and the comparison takes the same time
// whatever the token.
func BearerOK(r *http.Request, token string) bool {
	auth := r.Header.Get("Authorization")
	ok := len(auth) > 7 && strings.EqualFold(auth[:7], "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(auth[7:]), []byte(token)) == 1
}
