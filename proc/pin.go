package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CPUSplit divides the CPUs this process may use into two disjoint sets:
// the first half (rounded down, at least one) for the server, the rest for
// the load generator.
func CPUSplit() (server, client unix.CPUSet, err error) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		return server, client, fmt.Errorf("pin: sched_getaffinity: %w", err)
	}
	cpus := cpuList(all)
	if len(cpus) < 2 {
		return server, client, fmt.Errorf("pin: needs at least 2 CPUs, this process may use %d", len(cpus))
	}
	half := len(cpus) / 2
	for i, c := range cpus {
		if i < half {
			server.Set(c)
		} else {
			client.Set(c)
		}
	}
	return server, client, nil
}

// PinProcess sets the affinity of every thread of process pid (0: this
// process). Threads created later inherit the mask of the thread that
// creates them. Two passes catch threads started during the first.
func PinProcess(pid int, set unix.CPUSet) error {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/task"
	}
	for range 2 {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d of %s to CPUs %s: %w", tid, dir, FormatCPUs(set), err)
			}
		}
	}
	return nil
}

// AffinityCount is the number of CPUs this process may run on.
func AffinityCount() int {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil {
		return 0
	}
	return s.Count()
}

// CurrentAffinity is this process's CPU set.
func CurrentAffinity() (unix.CPUSet, error) {
	var s unix.CPUSet
	err := unix.SchedGetaffinity(0, &s)
	return s, err
}

func cpuList(s unix.CPUSet) []int {
	var out []int
	for c := 0; c < len(s)*64; c++ {
		if s.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// FormatCPUs writes a CPU set as a list like "0-3,8".
func FormatCPUs(s unix.CPUSet) string {
	cpus := cpuList(s)
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}
