package webhttp

import (
	"net/http/httptest"
	"testing"
)

func TestBearerOK(t *testing.T) {
	const token = "a-token-of-twenty-chars"
	for _, c := range []struct {
		auth string
		ok   bool
	}{
		{"Bearer " + token, true},
		{"bearer " + token, true},
		{"BEARER " + token, true},
		{"Bearer " + token + "x", false},
		{"Bearer " + token[:5], false},
		{"Basic " + token, false},
		{token, false},
		{"Bearer", false},
		{"", false},
	} {
		r := httptest.NewRequest("GET", "/control/stop", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if got := BearerOK(r, token); got != c.ok {
			t.Errorf("Authorization %q: %v, want %v", c.auth, got, c.ok)
		}
	}
}
