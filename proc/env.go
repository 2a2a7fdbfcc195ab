package proc

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"pushbench/results"
)

// Environment describes this machine for results.Env: Go version,
// GOMAXPROCS, CPUs, CPU model (/proc/cpuinfo), kernel (uname) and the git
// commit of the working directory when git can tell it (else empty).
func Environment() results.Env {
	e := results.Env{
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPUModel:   cpuModel(),
		Kernel:     kernel(),
		Commit:     gitCommit(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
	e.Hostname, _ = os.Hostname()
	return e
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Model", "cpu model", "Hardware":
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		return strings.TrimSpace(unix.ByteSliceToString(u.Sysname[:]) + " " +
			unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:]))
	}
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// gitCommit is the commit of the current directory's repository, with a
// "-dirty" suffix when the work tree has changes; "" when git cannot tell.
func gitCommit() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		commit += "-dirty"
	}
	return commit
}

// BuildEnvironment is Environment with the commit this binary was
// built from (Go stamps it into binaries built inside a git work tree),
// when it has one: the work tree may move on while a comparison runs.
func BuildEnvironment() results.Env {
	env := Environment()
	if c := buildCommit(); c != "" {
		env.Commit = c
	}
	return env
}

// buildCommit is the commit Go stamped into this binary, with "-dirty"
// when the work tree had changes; "" when it carries none.
func buildCommit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	rev, dirty := "", ""
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// Version names this pushbench build: the commit it was built from and
// the Go version. A binary that carries no commit (built with
// -buildvcs=false, or outside a git work tree), or one built from a work
// tree with changes, is also named by the SHA-256 of its own file
// ("devel+3f2a…", "<commit>-dirty+3f2a…"): two such binaries agree only
// when they are the same build. Agents and their coordinator must run the same version: the
// measurement they exchange has no other contract.
func Version() string {
	versionOnce.Do(func() {
		commit := buildCommit()
		if commit == "" || strings.HasSuffix(commit, "-dirty") {
			// No commit, or one with changes on top: only the build
			// itself names what runs.
			commit = cmp.Or(commit, "devel")
			if exe, err := os.Executable(); err == nil {
				if f, err := os.Open(exe); err == nil {
					h := sha256.New()
					if _, err := io.Copy(h, f); err == nil {
						commit += "+" + hex.EncodeToString(h.Sum(nil))[:12]
					}
					f.Close()
				}
			}
		}
		version = commit + " " + runtime.Version()
	})
	return version
}

var (
	versionOnce sync.Once
	version     string
)
