package q8

import (
	"os"
	"syscall"
	"testing"
)

// TestARM64DW3PageEdges runs DWConv3x3 with the image and the output each
// ending exactly at the end of a readable page followed by an inaccessible
// one, and starting at a page's start after one: a kernel that reads or
// writes one byte outside x or the output faults (runDW3's guard bytes see
// only writes). The image's last pixel is where a 16-byte load of a channel
// tail would overrun.
func TestARM64DW3PageEdges(t *testing.T) {
	if !kernels[isaNEON].ok {
		t.Skip("no ASIMD")
	}
	ps := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 5*ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(mem)
	for _, g := range []int{0, 2, 4} {
		if err := syscall.Mprotect(mem[g*ps:(g+1)*ps], syscall.PROT_NONE); err != nil {
			t.Skipf("mprotect: %v", err)
		}
	}
	xp, op := mem[ps:2*ps:2*ps], mem[3*ps:4*ps:4*ps]
	wt := make([]int8, 64*9)
	for i := range wt {
		wt[i] = int8(i*29 + 5)
	}
	for _, c := range []int{1, 7, 16, 17, 31, 33, 48} {
		d := PackDW(c, 9, wt, []int32{3})
		for _, hw := range [][2]int{{1, 1}, {3, 5}, {5, 4}, {7, 7}} {
			h, w := hw[0], hw[1]
			if h*w*c > ps {
				continue
			}
			for _, st := range []int{1, 2} {
				oh, ow := (h-1)/st+1, (w-1)/st+1
				n := oh * ow * c
				want := make([]uint8, n)
				x := xp[:h*w*c]
				for i := range x {
					x[i] = uint8(i*13 + c)
				}
				q := Requant{Scale: []float32{0.02}, OutZero: 100, Ldc: c}
				withISA(t, variant{p: isaGeneric}, func() {
					img, offs := dw3Twin(x, h, w, c, st, 0, oh, 9)
					q.OutU8 = want
					DWConv(oh*ow, img, offs, 9, d, Output{Q: &q})
				})
				for _, p := range []isa{isaNEON, isaSDOT} {
					if !kernels[p].ok {
						continue
					}
					for _, xEnd := range []bool{false, true} {
						x := xp[: h*w*c : h*w*c]
						out := op[:n:n]
						if xEnd {
							x = xp[ps-h*w*c:]
							out = op[ps-n:]
						}
						for i := range x {
							x[i] = uint8(i*13 + c)
						}
						q.OutU8 = out
						withISA(t, variant{p: p}, func() {
							if !DWConv3x3(x, h, w, c, st, 9, d, 0, oh, Output{Q: &q}) {
								t.Fatalf("%v: DWConv3x3 did not run", p)
							}
						})
						for i := range want {
							if out[i] != want[i] {
								t.Fatalf("%v %dx%dx%d/s%d end=%v: out[%d] = %d, want %d", p, h, w, c, st, xEnd, i, out[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}
