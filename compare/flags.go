package compare

import (
	"errors"
	"fmt"
	"pushbench/transport"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseTransports parses a comma-separated transport list into display
// order without duplicates.
func ParseTransports(list string) ([]string, error) {
	names, err := ParseList("transports", list, func(s string) (string, error) {
		if !slices.Contains(transport.Names(), s) {
			return "", fmt.Errorf("unknown transport (want %s)", strings.Join(transport.Names(), ", "))
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range transport.Names() {
		if slices.Contains(names, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// ParseList parses a comma-separated list of flag name with parse,
// dropping duplicates.
func ParseList[T comparable](name, list string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("compare: --%s %q: empty list element", name, list)
		}
		v, err := parse(f)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) {
				err = ne.Err
			}
			return nil, fmt.Errorf("compare: --%s: %q: %v", name, f, err)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// JoinInts, JoinFloats and JoinDurations write a list as a flag takes it.
func JoinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func JoinFloats(vs []float64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func JoinDurations(vs []time.Duration) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ",")
}
