// Package testnet holds test helpers for loopback servers that several
// packages' tests share.
package testnet

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Serve starts a loopback TCP server that runs serve on every connection
// and returns its address. The test's cleanup closes the listener and every
// connection and waits for the handlers, so no goroutine outlives it.
func Serve(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Echo writes back whatever it reads.
func Echo(c net.Conn) { _, _ = io.Copy(c, c) }
