package q8

import (
	"os"
	"syscall"
	"testing"
)

// TestLookupU8PageEdges runs LookupU8 on every path over runs that end
// exactly at the end of a readable page, followed by an inaccessible one,
// and that start at the page's start, after an inaccessible one: a kernel
// that reads or writes one byte outside src or dst faults (the guard bytes
// of TestLookupU8Paths only see writes).
func TestLookupU8PageEdges(t *testing.T) {
	ps := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 3*ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(mem)
	if err := syscall.Mprotect(mem[:ps], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	if err := syscall.Mprotect(mem[2*ps:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	page := mem[ps : 2*ps : 2*ps]
	var tab [256]uint8
	for i := range tab {
		tab[i] = uint8(i*7 + 3)
	}
	for _, p := range lookupPaths(t) {
		withISA(t, variant{p: p}, func() {
			for n := 1; n <= 300; n++ {
				for _, start := range []int{0, ps - n} {
					run := page[start : start+n : start+n]
					for i := range run {
						run[i] = uint8(i*13 + n)
					}
					want := make([]uint8, n)
					lookupGo(want, run, &tab)
					// In place: both src and dst touch the page's edge.
					LookupU8(run, run, &tab)
					for i := range run {
						if run[i] != want[i] {
							t.Fatalf("%v n=%d start=%d: dst[%d] = %d, want %d", p, n, start, i, run[i], want[i])
						}
					}
				}
			}
		})
	}
}
