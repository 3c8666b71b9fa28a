package q8

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dw3Case is one DWConv3x3 call of the arm64 tests.
type dw3Case struct {
	h, w, c, stride int
	xz              int32
	y0, y1          int
	ldcPad          int  // output stride c + ldcPad
	s8              bool // int8 output
	perChannel      bool // scales
	bias            bool
	scales          int // 0 small, 1 past 0.5 (clamping), 2 extreme (0, negative, 1e30)
	wz              int // weight zero points: 0 none, 1 per channel in int8, 2 near ±32640 (W − W0 at the ends of int16)
	data            int // 0 random, 1 all 255 with weights −128, 2 all 0 with weights 127
	lo, hi          int32
	zpo             int32
}

func (k dw3Case) String() string {
	return fmt.Sprintf("%dx%dx%d/s%d xz=%d rows %d..%d ldc+%d s8=%v perch=%v bias=%v scales=%d wz=%d data=%d clip %d..%d zp=%d",
		k.h, k.w, k.c, k.stride, k.xz, k.y0, k.y1, k.ldcPad, k.s8, k.perChannel, k.bias, k.scales, k.wz, k.data, k.lo, k.hi, k.zpo)
}

// randDW3 draws the parts of a case that the loops do not fix.
func randDW3(rnd *rand.Rand, h, w, c, stride int) dw3Case {
	k := dw3Case{h: h, w: w, c: c, stride: stride}
	k.xz = []int32{0, 128, 255}[rnd.Intn(3)]
	oh := (h-1)/stride + 1
	k.y0, k.y1 = 0, oh
	switch rnd.Intn(4) {
	case 0:
		k.y0 = rnd.Intn(oh + 1)
		k.y1 = k.y0 + rnd.Intn(oh-k.y0+1)
	case 1:
		k.y1 = rnd.Intn(oh) + 1
	}
	k.ldcPad = []int{0, 0, 1, 5, 16}[rnd.Intn(5)]
	k.s8 = rnd.Intn(2) == 0
	k.perChannel = rnd.Intn(2) == 0
	k.bias = rnd.Intn(3) != 0
	k.scales = []int{0, 0, 1, 2}[rnd.Intn(4)]
	k.wz = []int{0, 0, 1, 2}[rnd.Intn(4)]
	if rnd.Intn(8) == 0 {
		k.data = 1 + rnd.Intn(2)
	}
	lo, hi := int32(0), int32(255)
	if k.s8 {
		lo, hi = -128, 127
	}
	k.zpo = lo + rnd.Int31n(hi-lo+1)
	if rnd.Intn(2) == 0 {
		// A Clip inside the type's range (Min == Max == 0 is the whole range).
		k.lo = lo + rnd.Int31n(hi-lo+1)
		k.hi = k.lo + rnd.Int31n(hi-k.lo+1)
	}
	return k
}

// runDW3 checks DWConv3x3 on every arm64 path against DWConv on the
// generic path (the Go twin over a bordered copy and an offset table),
// byte for byte, and that it writes nothing outside the output pixels. It
// reports whether the weights fit int8 (the sdot path then runs the SDOT
// kernels, else the NEON ones).
func runDW3(t *testing.T, rnd *rand.Rand, k dw3Case) (int8Weights bool) {
	t.Helper()
	h, w, c, st := k.h, k.w, k.c, k.stride
	x := make([]uint8, h*w*c)
	wt := make([]int8, c*9)
	switch k.data {
	case 0:
		rnd.Read(x)
		for i := range wt {
			wt[i] = int8(rnd.Intn(256) - 128)
		}
	case 1:
		fillU8(x, 255)
		for i := range wt {
			wt[i] = -128
		}
	case 2:
		for i := range wt {
			wt[i] = 127
		}
	}
	wz := []int32{0}
	switch k.wz {
	case 1:
		wz = make([]int32, c)
		for ch := range wz {
			wz[ch] = int32(rnd.Intn(256) - 128)
		}
	case 2:
		wz = make([]int32, c)
		for ch := range wz {
			wz[ch] = []int32{32640, -32640, 32639, -32639}[rnd.Intn(4)]
		}
	}
	d := PackDW(c, 9, wt, wz)
	if d.w16 == nil {
		t.Fatalf("%v: PackDW made no int16 weights", k)
	}
	scale := make([]float32, 1)
	if k.perChannel {
		scale = make([]float32, c)
	}
	for i := range scale {
		switch k.scales {
		case 0:
			scale[i] = float32(rnd.Float64()*0.01 + 0.0005)
		case 1:
			scale[i] = float32(rnd.Float64()*0.6 + 0.3)
		case 2:
			scale[i] = []float32{0, -0.003, 1e30, -1e30, 1e-30, 2.5e-6, 0.5}[rnd.Intn(7)]
		}
		if k.wz == 2 && k.scales == 0 {
			scale[i] *= 1e-3 // products up to 255·32768 a tap
		}
	}
	var bias []int32
	if k.bias {
		bias = make([]int32, c)
		for i := range bias {
			bias[i] = int32(rnd.Intn(40000) - 20000)
			if i%7 == 3 {
				// The int32 sum wraps: the kernels must wrap as the Go loop.
				bias[i] = math.MaxInt32 - int32(rnd.Intn(1000))
			}
		}
	}
	// The twin: DWConv over a bordered image (one pixel of zero points
	// appended) and an offset table of output rows y0..y1.
	ow := (w-1)/st + 1
	rows := (k.y1 - k.y0) * ow
	img, offs := dw3Twin(x, h, w, c, st, k.y0, k.y1, uint8(k.xz))
	req := func(u []uint8, ldc int) *Requant {
		q := &Requant{Bias: bias, Scale: scale, OutZero: k.zpo, Min: k.lo, Max: k.hi, Ldc: ldc}
		if k.s8 {
			q.OutS8 = make([]int8, len(u))
			for i, v := range u {
				q.OutS8[i] = int8(v)
			}
		} else {
			q.OutU8 = u
		}
		return q
	}
	bytesOf := func(q *Requant) []uint8 {
		if k.s8 {
			return s8AsU8(q.OutS8)
		}
		return q.OutU8
	}
	want := make([]uint8, rows*c)
	if rows > 0 {
		wq := req(want, c)
		withISA(t, variant{p: isaGeneric}, func() {
			DWConv(rows, img, offs, k.xz, d, Output{Q: wq})
		})
		want = bytesOf(wq)
	}
	withISA(t, variant{p: isaGeneric}, func() {
		if DWConv3x3(x, h, w, c, st, k.xz, d, k.y0, k.y1, Output{Q: req(make([]uint8, max(rows*c, 1)), c)}) {
			t.Fatalf("%v: DWConv3x3 ran on the generic path", k)
		}
	})
	ldc := c + k.ldcPad
	const guard = 48
	n := guard
	if rows > 0 {
		n += (rows-1)*ldc + c
	}
	ran := 0
	for _, p := range []isa{isaNEON, isaSDOT} {
		if !kernels[p].ok {
			continue
		}
		withISA(t, variant{p: p}, func() {
			u := make([]uint8, n)
			for i := range u {
				u[i] = uint8(i*37 + 11)
			}
			q := req(u, ldc)
			if !DWConv3x3(x, h, w, c, st, k.xz, d, k.y0, k.y1, Output{Q: q}) {
				t.Fatalf("%v %v: DWConv3x3 did not run", k, p)
			}
			ran++
			got := bytesOf(q)
			for i := range got {
				r, ch := i/ldc, i%ldc
				if r < rows && ch < c {
					if got[i] != want[r*c+ch] {
						t.Fatalf("%v %v: out[%d][%d] = %d, DWConv %d", k, p, r, ch, got[i], want[r*c+ch])
					}
				} else if got[i] != uint8(i*37+11) {
					t.Fatalf("%v %v: byte %d (row %d, channel %d) outside the output changed", k, p, i, r, ch)
				}
			}
		})
	}
	if ran == 0 && kernels[isaNEON].ok {
		t.Fatalf("%v: no arm64 path ran", k)
	}
	return d.w8 != nil
}

// TestARM64DW3Shapes runs every image from 1×1 to 9×9 at both strides for
// channel counts around the 16-channel block (fewer than one block, one,
// one and a tail overlapping the block before, several), each with random
// zero points, row bands, strides, output types, clamps, scales and biases.
func TestARM64DW3Shapes(t *testing.T) {
	if !kernels[isaNEON].ok {
		t.Skip("no ASIMD")
	}
	rnd := rand.New(rand.NewSource(33))
	var kinds [2]int
	for _, c := range []int{1, 3, 15, 16, 17, 31, 40} {
		for h := 1; h <= 9; h++ {
			for w := 1; w <= 9; w++ {
				for _, st := range []int{1, 2} {
					kinds[b2i(runDW3(t, rnd, randDW3(rnd, h, w, c, st)))]++
				}
			}
		}
	}
	// Both the SDOT kernels and, on the same path, the NEON ones.
	if kinds[0] < 100 || kinds[1] < 100 {
		t.Fatalf("%d cases with int16 weights, %d with int8", kinds[0], kinds[1])
	}
}

// TestARM64DW3Channels runs channel counts 1..70 and MobileNet's 96, 144
// and 960 on random small images, and 56×56 images at both strides.
func TestARM64DW3Channels(t *testing.T) {
	if !kernels[isaNEON].ok {
		t.Skip("no ASIMD")
	}
	rnd := rand.New(rand.NewSource(34))
	cs := []int{96, 144, 960}
	for c := 1; c <= 70; c++ {
		cs = append(cs, c)
	}
	for _, c := range cs {
		for i := 0; i < 4; i++ {
			runDW3(t, rnd, randDW3(rnd, 1+rnd.Intn(9), 1+rnd.Intn(9), c, 1+i%2))
		}
	}
	for _, c := range []int{8, 16, 24, 37} {
		for _, st := range []int{1, 2} {
			k := randDW3(rnd, 56, 56, c, st)
			runDW3(t, rnd, k)
		}
	}
	// Every zero point and output type at least once on a larger layer.
	for _, xz := range []int32{0, 128, 255} {
		for _, s8 := range []bool{false, true} {
			k := randDW3(rnd, 14, 13, 144, 2)
			k.xz, k.s8, k.lo, k.hi = xz, s8, 0, 0
			k.zpo = 3
			runDW3(t, rnd, k)
		}
	}
}

// TestARM64DW3Fallback checks the cases the kernels leave to DWConv: weights
// beyond int16 after the zero point, taps other than 9, int32 output.
func TestARM64DW3Fallback(t *testing.T) {
	if !kernels[isaNEON].ok {
		t.Skip("no ASIMD")
	}
	x := make([]uint8, 4*4*16)
	out := make([]uint8, 4*4*16)
	q := Output{Q: &Requant{Scale: []float32{0.1}, OutU8: out, Ldc: 16}}
	wt := make([]int8, 16*9)
	for _, p := range []isa{isaNEON, isaSDOT} {
		if !kernels[p].ok {
			continue
		}
		withISA(t, variant{p: p}, func() {
			if DWConv3x3(x, 4, 4, 16, 1, 0, PackDW(16, 9, wt, []int32{-40000}), 0, 4, q) {
				t.Errorf("%v: ran on weights beyond int16", p)
			}
			if DWConv3x3(x, 4, 4, 16, 1, 0, PackDW(16, 4, wt, []int32{0}), 0, 4, q) {
				t.Errorf("%v: ran on 4 taps", p)
			}
			if DWConv3x3(x, 4, 4, 16, 1, 0, PackDW(16, 9, wt, []int32{0}), 0, 4, Int32(make([]int32, 256), 16)) {
				t.Errorf("%v: ran with int32 output", p)
			}
			if !DWConv3x3(x, 4, 4, 16, 1, 0, PackDW(16, 9, wt, []int32{0}), 0, 4, q) {
				t.Errorf("%v: did not run", p)
			}
		})
	}
}

// TestDW3ArmLayout checks dw3Arm's field offsets against the ones
// gen_dw3_arm64.py compiles into the kernels.
func TestDW3ArmLayout(t *testing.T) {
	src, err := os.ReadFile("gen_dw3_arm64.py")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(src), "\nOFF = {")
	block, _, ok2 := strings.Cut(block, "\n}")
	if !ok || !ok2 {
		t.Fatal("no OFF table in gen_dw3_arm64.py")
	}
	ms := regexp.MustCompile(`"(\w+)": (\d+)`).FindAllStringSubmatch(block, -1)
	typ := reflect.TypeOf(dw3Arm{})
	if len(ms) != typ.NumField() {
		t.Fatalf("%d offsets in gen_dw3_arm64.py for %d fields", len(ms), typ.NumField())
	}
	for _, m := range ms {
		f, ok := typ.FieldByName(m[1])
		off, _ := strconv.Atoi(m[2])
		if !ok || int(f.Offset) != off {
			t.Errorf("field %s: generator offset %d, Go %v (found %v)", m[1], off, f.Offset, ok)
		}
	}
}
