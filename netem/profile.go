// Package netem puts an emulated network between the clients and the
// server: a round-trip time, its jitter and a bandwidth limit per
// direction, applied by a Toxiproxy proxy (github.com/Shopify/toxiproxy/v2)
// running inside this process. `pushbench emulate` (Main) runs it as a
// process of its own, so its CPU is measured apart from the server's and the
// clients'. docs/network.md lists the profiles, their sources, how each value
// maps onto Toxiproxy's toxics and what such an emulator cannot model.
package netem

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Profile is a network between the clients and the server.
type Profile struct {
	Name string
	// RTT is the round-trip time the emulator adds, split half per
	// direction (Split); 0 adds none.
	RTT time.Duration
	// Jitter is how far the round trip may stray from RTT either way; it is
	// split half per direction like RTT, each direction's delay drawn
	// uniformly from its half-RTT ± its half-jitter (Split, docs/network.md).
	Jitter time.Duration
	// DownBps and UpBps limit each connection's bits per second from the
	// server to the client (down) and back (up); 0 is no limit.
	DownBps, UpBps int64
	// Source says where the values come from.
	Source string
}

// Loopback is the default profile: no emulator in the path.
const Loopback = "loopback"

// Bounds on what a profile may ask for.
const (
	// MaxRTT is the largest round-trip time accepted (a GEO satellite link
	// is 0.6 s; a larger figure is a typo).
	MaxRTT = 10 * time.Second
	// MaxBps is the largest bandwidth accepted, 100 Gbit/s.
	MaxBps = 100_000_000_000
	// BpsStep is the resolution of Toxiproxy's bandwidth toxic: it counts
	// in 1000 bytes per second, so a limit must be a multiple of 8 kbit/s.
	BpsStep = 8000
	// DelayStep is the resolution of Toxiproxy's latency toxic: whole
	// milliseconds.
	DelayStep = time.Millisecond
)

// profiles is the table of named profiles; docs/network.md repeats it with
// the reasoning behind each source. No source gives a jitter, so none is
// invented: --jitter adds one. Every value is one Toxiproxy can apply
// exactly (whole milliseconds, multiples of 8 kbit/s).
var profiles = []Profile{
	{Name: Loopback, Source: "no emulator: this machine's loopback interface"},
	{Name: "lan", RTT: 2 * time.Millisecond, DownBps: 30_000_000, UpBps: 15_000_000,
		Source: `Firefox DevTools' "Wi-Fi" throttling preset (2 ms, 30/15 Mbit/s); 2 ms is also the smallest even RTT Toxiproxy's whole-millisecond latency can split`},
	{Name: "broadband", RTT: 28 * time.Millisecond, DownBps: 5_000_000, UpBps: 1_000_000,
		Source: `WebPageTest's "Cable" connectivity profile (28 ms RTT, 5/1 Mbit/s)`},
	{Name: "4g", RTT: 150 * time.Millisecond, DownBps: 1_600_000, UpBps: 768_000,
		Source: `Lighthouse's default mobile throttling "Slow 4G" (rttMs 150, 1.6 Mbit/s down), the packet-level form of Chrome DevTools' "Fast 3G"/"Slow 4G"; 768 kbit/s up as WebPageTest's "3G Fast"`},
	{Name: "3g", RTT: 400 * time.Millisecond, DownBps: 400_000, UpBps: 400_000,
		Source: `WebPageTest's "3G Slow" (400 ms RTT, 400 kbit/s), the packet-level form of Chrome DevTools' "Slow 3G" (500 kbit/s x 0.8, 400 ms x 5 request latency)`},
	{Name: "satellite", RTT: 600 * time.Millisecond, DownBps: 25_000_000, UpBps: 3_000_000,
		Source: "geostationary link: 4 x 35,786 km at the speed of light is 477 ms before any ground segment, about 600 ms measured; 25/3 Mbit/s as the GEO consumer plans (HughesNet Gen5)"},
}

// Profiles returns the named profiles in the order of the table.
func Profiles() []Profile {
	return append([]Profile(nil), profiles...)
}

// Names returns the names of the profiles in the order of the table.
func Names() []string {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	return names
}

// Lookup returns the named profile.
func Lookup(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown network %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Emulated reports whether the profile needs an emulator in the path: any
// delay or bandwidth limit at all.
func (p Profile) Emulated() bool {
	return p.RTT != 0 || p.Jitter != 0 || p.DownBps != 0 || p.UpBps != 0
}

// Split is how the profile's round trip is applied per direction: the
// downstream (server to client) direction gets the larger half of an odd
// millisecond, so down + up is exactly RTT and downJitter + upJitter
// exactly Jitter. An event pushed by the server therefore needs at least
// down − downJitter to arrive: the physical floor of the profile.
func (p Profile) Split() (down, downJitter, up, upJitter time.Duration) {
	half := func(d time.Duration) (time.Duration, time.Duration) {
		ms := int64(d / time.Millisecond)
		return time.Duration(ms-ms/2) * time.Millisecond, time.Duration(ms/2) * time.Millisecond
	}
	down, up = half(p.RTT)
	downJitter, upJitter = half(p.Jitter)
	return down, downJitter, up, upJitter
}

// Validate checks that the emulator can apply the profile exactly.
func (p Profile) Validate() error {
	switch {
	case p.RTT < 0:
		return fmt.Errorf("rtt %v: must not be negative", p.RTT)
	case p.RTT > MaxRTT:
		return fmt.Errorf("rtt %v: more than %v is not a network this benchmark models", p.RTT, MaxRTT)
	case p.RTT%DelayStep != 0:
		return fmt.Errorf("rtt %v: the emulator delays in whole milliseconds; give e.g. %v", p.RTT, p.RTT.Round(DelayStep))
	case p.Jitter < 0:
		return fmt.Errorf("jitter %v: must not be negative", p.Jitter)
	case p.Jitter%DelayStep != 0:
		return fmt.Errorf("jitter %v: the emulator delays in whole milliseconds; give e.g. %v", p.Jitter, p.Jitter.Round(DelayStep))
	case p.Jitter > p.RTT:
		return fmt.Errorf("jitter %v is more than the rtt %v: a delay cannot go below zero", p.Jitter, p.RTT)
	}
	for _, r := range []struct {
		dir string
		bps int64
	}{{"down-bandwidth", p.DownBps}, {"up-bandwidth", p.UpBps}} {
		if err := checkBps(r.bps); err != nil {
			return fmt.Errorf("%s %s: %w", r.dir, FormatRate(r.bps), err)
		}
	}
	return nil
}

// checkBps checks a bandwidth limit in bits per second (0: none).
func checkBps(bps int64) error {
	switch {
	case bps < 0:
		return errors.New("must not be negative")
	case bps > MaxBps:
		return fmt.Errorf("more than %s is not a network this benchmark models", FormatRate(MaxBps))
	case bps%BpsStep != 0:
		lo := bps / BpsStep * BpsStep
		if lo == 0 {
			return fmt.Errorf("the emulator limits in steps of 8kbit (1000 bytes/s); the smallest limit is 8kbit")
		}
		return fmt.Errorf("the emulator limits in steps of 8kbit (1000 bytes/s); give %s or %s", FormatRate(lo), FormatRate(lo+BpsStep))
	}
	return nil
}

// Resolve returns the named profile with the overrides applied; a nil
// override keeps the profile's value. A bandwidth override is a rate for
// ParseRate or "unlimited". The result is validated, and when an override
// changed a value its Source says so.
func Resolve(name string, rtt, jitter *time.Duration, down, up *string) (Profile, error) {
	p, err := Lookup(name)
	if err != nil {
		return Profile{}, err
	}
	var changed []string
	if rtt != nil && *rtt != p.RTT {
		p.RTT = *rtt
		changed = append(changed, "rtt "+rtt.String())
	}
	if jitter != nil && *jitter != p.Jitter {
		p.Jitter = *jitter
		changed = append(changed, "jitter "+jitter.String())
	}
	for _, o := range []struct {
		flag string
		s    *string
		bps  *int64
	}{{"down-bandwidth", down, &p.DownBps}, {"up-bandwidth", up, &p.UpBps}} {
		if o.s == nil {
			continue
		}
		bps := int64(0)
		if !strings.EqualFold(strings.TrimSpace(*o.s), "unlimited") {
			if bps, err = ParseRate(*o.s); err != nil {
				return Profile{}, fmt.Errorf("%s: %w", o.flag, err)
			}
		}
		if bps != *o.bps {
			*o.bps = bps
			changed = append(changed, o.flag+" "+FormatRate(bps))
		}
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	if len(changed) > 0 {
		p.Source += "; overridden: " + strings.Join(changed, ", ")
	}
	return p, nil
}

// rateUnits are the units ParseRate accepts, in bits per second. Like
// tc(8), a k is 1000.
var rateUnits = map[string]int64{
	"bit":  1,
	"kbit": 1_000,
	"mbit": 1_000_000,
	"gbit": 1_000_000_000,
}

// numberRE is a plain decimal number: digits with at most one point.
var numberRE = regexp.MustCompile(`^[+]?([0-9]+\.?[0-9]*|\.[0-9]+)$`)

// ParseRate parses a bandwidth such as "10mbit", "512kbit", "1.5mbit" or
// "1gbit" (units bit, kbit, mbit, gbit in any case; k = 1000) into bits
// per second. It rejects a number without a unit, zero, negative, fractional
// bits and more than 100gbit.
func ParseRate(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	units := "bit, kbit, mbit or gbit, e.g. 10mbit or 512kbit"
	switch {
	case t == "":
		return 0, fmt.Errorf("empty bandwidth: want a number and a unit (%s)", units)
	case num == "":
		return 0, fmt.Errorf("bandwidth %q: want a number before the unit (%s)", s, units)
	case unit == "":
		return 0, fmt.Errorf("bandwidth %q without a unit: give one of %s", s, units)
	case strings.HasPrefix(num, "-"):
		return 0, fmt.Errorf("bandwidth %q: must be positive", s)
	}
	mult, ok := rateUnits[unit]
	if !ok {
		return 0, fmt.Errorf("bandwidth %q: unknown unit %q (units are in bits: %s)", s, unit, units)
	}
	if !numberRE.MatchString(num) {
		return 0, fmt.Errorf("bandwidth %q: %q is not a number", s, num)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("bandwidth %q: %q is not a number", s, num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	switch {
	case r.Sign() == 0:
		return 0, fmt.Errorf("bandwidth %q: must be positive", s)
	case r.Cmp(new(big.Rat).SetInt64(MaxBps)) > 0:
		return 0, fmt.Errorf("bandwidth %q: more than %s is not a network this benchmark models", s, FormatRate(MaxBps))
	case !r.IsInt():
		return 0, fmt.Errorf("bandwidth %q: not a whole number of bits per second", s)
	}
	return r.Num().Int64(), nil
}

// FormatRate writes bits per second in the largest unit that keeps it a
// whole number ("10mbit", "768kbit", "12500bit"); 0 is "unlimited".
// ParseRate(FormatRate(b)) == b for every b > 0.
func FormatRate(bps int64) string {
	if bps == 0 {
		return "unlimited"
	}
	for _, u := range []string{"gbit", "mbit", "kbit"} {
		if m := rateUnits[u]; bps%m == 0 {
			return strconv.FormatInt(bps/m, 10) + u
		}
	}
	return strconv.FormatInt(bps, 10) + "bit"
}

// String describes the profile on one line, e.g. "4g: rtt 150ms, down
// 1600kbit, up 768kbit".
func (p Profile) String() string {
	if !p.Emulated() {
		return p.Name + ": no emulator"
	}
	s := p.Name + ": rtt " + p.RTT.String()
	if p.Jitter != 0 {
		s += " ± " + p.Jitter.String()
	}
	return s + ", down " + FormatRate(p.DownBps) + ", up " + FormatRate(p.UpBps)
}
