// Package e2e runs the real subscribers of package clients against the real
// servers of package servers over loopback TCP: exactly-once delivery under
// load, resume and explicit gaps after a cut from either side, shutdown with
// many connected clients, and the exact wire-byte arithmetic of docs/design.md
// section 7. It is the one package that imports both sides; it holds tests
// only.
package e2e
