package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Memory is the process's resident memory as Linux reports it.
type Memory struct {
	// PeakRSS is VmHWM, the high-water mark of the resident set since the
	// process started (it cannot be reset, so with two models it covers
	// both, and it includes the model files' decoded weights).
	PeakRSS int64 `json:"peak_rss_bytes"`
	// RSS is VmRSS, the resident set now.
	RSS int64 `json:"rss_bytes"`
}

// ReadMemory reads /proc/self/status. Where that file does not exist (not
// Linux) it returns an error and callers report the memory as unknown.
func ReadMemory() (Memory, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(b)
}

// parseStatus extracts VmHWM and VmRSS ("VmHWM:	  123456 kB") in bytes.
func parseStatus(b []byte) (Memory, error) {
	var m Memory
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &m.PeakRSS
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &m.RSS
		default:
			continue
		}
		f := bytes.Fields(line[6:])
		if len(f) != 2 || string(f[1]) != "kB" {
			return Memory{}, fmt.Errorf("/proc/self/status: unexpected line %q", line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 {
			return Memory{}, fmt.Errorf("/proc/self/status: unexpected line %q", line)
		}
		*dst = kb * 1024
		found++
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("/proc/self/status: no VmHWM/VmRSS lines")
	}
	return m, nil
}
