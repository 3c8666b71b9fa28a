//go:build unix

package f32

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time. The benchmarks divide work
// by it as well as by wall time: on a machine shared with other jobs the
// wall clock also counts the time this process waited for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
