package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrNotLoopback is returned for a server address outside 127.0.0.0/8 and ::1.
var ErrNotLoopback = errors.New("load only goes to loopback (127.0.0.0/8 or ::1)")

// CheckLoopback reports whether rawURL is an http URL whose host is a
// loopback address (a name must resolve to loopback addresses only).
func CheckLoopback(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("server %q: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("server %q: want http[s]://HOST:PORT", rawURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("server %s: %w", host, ErrNotLoopback)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("server %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("server %s resolves to %s: %w", host, a.IP, ErrNotLoopback)
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("server %s: no address", host)
	}
	return nil
}
