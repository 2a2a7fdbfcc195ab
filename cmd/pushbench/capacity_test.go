package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCapacityBadInput: bad flags are one line and exit 2, before any
// load; an objective no step can meet is not one of them (it is a result).
func TestCapacityBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"capacity"}, "--transport T"},
		{[]string{"capacity", "--transport", "foo"}, `--transport: "foo": unknown transport`},
		{[]string{"capacity", "--transport", "ws", "--slo-p99", "soon"}, "invalid value"},
		{[]string{"capacity", "--transport", "ws", "--slo-p99", "-1s"}, "must be positive"},
		{[]string{"capacity", "--transport", "ws", "--duration", "0s"}, "positive window"},
		{[]string{"capacity", "--transport", "ws", "--min-clients", "300000"}, "above the machine's ceiling"},
		{[]string{"capacity", "--transport", "ws", "--min-clients", "50", "--max-clients", "10"}, "below --min-clients"},
		{[]string{"capacity", "--transport", "ws", "--dimension", "payload"}, "want clients or rate"},
		{[]string{"capacity", "--transport", "ws", "--payload", "3"}, "payload 3"},
		{[]string{"compare", "--preset", "capacity", "--rates", "1"}, "takes --out, --transports and --dry-run only"},
	} {
		var stdout, stderr bytes.Buffer
		code := pushbench(context.Background(), tc.args, &stdout, &stderr)
		if code != 2 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := pushbench(context.Background(), []string{"compare", "--preset", "capacity", "--dry-run"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "p99 ≤ 100 ms") || !strings.Contains(stdout.String(), "ceiling") {
		t.Errorf("dry run: exit %d, %q %q", code, stdout.String(), stderr.String())
	}
}
