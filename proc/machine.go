package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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

// PIDCPU returns the user+sys CPU time a process has used so far, from
// /proc/PID/stat (fields 14 and 15, in USER_HZ ticks of 10 ms, which Linux
// fixes at 100 per second for /proc).
func PIDCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parsePIDStat(string(b))
}

func parsePIDStat(text string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after its closing one.
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/PID/stat: no command field in %q", text)
	}
	f := strings.Fields(text[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields after the command, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/PID/stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
