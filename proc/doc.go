// Package proc holds the process helpers of the harness, apart from the
// measuring itself: starting and stopping the server child (or an
// in-process server for tests), CPU pinning, the open-files and port
// limits, the loopback rule, and the description of this machine.
package proc
