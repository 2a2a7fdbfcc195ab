package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// MachineCPU returns the whole machine's CPU time so far from /proc/stat,
// in clock ticks: busy (every state but idle and iowait) and total (user
// through steal). Two readings give the machine's utilisation between
// them: Δbusy ÷ Δtotal.
func MachineCPU() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(string(b))
}

func parseProcStat(text string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(text, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: no aggregate cpu line in %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// already counted in user and nice).
	var v [8]uint64
	for i := 0; i < len(v) && i+1 < len(f); i++ {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		total += v[i]
	}
	return total - v[3] - v[4], total, nil
}
