package tensor

import (
	"math"
	"math/rand"
	"testing"
)

// TestQuantAVX2Twin runs the assembly and the pure-Go quantize loops on
// the same adversarial and random inputs, for both rules and both 8-bit
// types, and requires identical bytes.
func TestQuantAVX2Twin(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 path on this machine/build")
	}
	r := rand.New(rand.NewSource(7))
	var xs []float32
	specials := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1.5, 2.5, -2.5, 127.5, 128.5, 255.5, -128.5,
		1e-45, -1e-45, 1e30, -1e30, 3.4028235e38, -3.4028235e38, 9.3e18, 9.2e18, -9.3e18, 2147483648, -2147483904,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 4194304.5, 8388607.5, 16777217}
	for rep := 0; rep < 4; rep++ {
		xs = append(xs, specials...)
	}
	for i := 0; i < 20000; i++ {
		switch i % 3 {
		case 0:
			xs = append(xs, float32(r.NormFloat64()*200))
		case 1:
			xs = append(xs, (float32(r.Intn(1200)-600)+0.5)*0.37) // near ties at scale 0.37
		default:
			xs = append(xs, math.Float32frombits(r.Uint32()))
		}
	}
	for _, scale := range []float32{0.37, 1, 0.0123, 1e-6, 3e4} {
		for _, rule := range []RoundingRule{RuleTorch, RuleONNX} {
			for _, zp := range []int32{0, 3, 128, 255} {
				fast := make([]uint8, len(xs))
				slow := make([]uint8, len(xs))
				n := quant8Fast(fast, xs, scale, zp, 0, 255, rule, false)
				if n != len(xs)&^31 {
					t.Fatalf("fast path did %d of %d", n, len(xs))
				}
				if rule == RuleONNX {
					quantONNX(slow, xs, scale, zp, 0, 255)
				} else {
					quantTorch(slow, xs, 1/scale, zp, 0, 255)
				}
				for i := 0; i < n; i++ {
					if fast[i] != slow[i] {
						t.Fatalf("uint8 %v scale %v zp %d x=%v: asm %d, Go %d", rule, scale, zp, xs[i], fast[i], slow[i])
					}
				}
			}
			for _, zp := range []int32{0, -128, 5, 127} {
				fast := make([]byte, len(xs))
				slow := make([]int8, len(xs))
				n := quant8Fast(fast, xs, scale, zp, -128, 127, rule, true)
				if rule == RuleONNX {
					quantONNX(slow, xs, scale, zp, -128, 127)
				} else {
					quantTorch(slow, xs, 1/scale, zp, -128, 127)
				}
				for i := 0; i < n; i++ {
					if int8(fast[i]) != slow[i] {
						t.Fatalf("int8 %v scale %v zp %d x=%v: asm %d, Go %d", rule, scale, zp, xs[i], int8(fast[i]), slow[i])
					}
				}
			}
		}
	}
}

// TestQuantLastAxisTwin: per-element-qparams assembly against lastAxisGo,
// for channel counts whose period with 32 lanes differs.
func TestQuantLastAxisTwin(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 path on this machine/build")
	}
	r := rand.New(rand.NewSource(9))
	for _, c := range []int{1, 3, 8, 32, 48, 100} {
		rows := 2*lcm32(c)/c + 3
		xs := make([]float32, rows*c)
		for i := range xs {
			switch i % 5 {
			case 0:
				xs[i] = math.Float32frombits(r.Uint32())
			case 1:
				xs[i] = float32(r.Intn(800)-400) + 0.5
			default:
				xs[i] = float32(r.NormFloat64() * 100)
			}
		}
		scales := make([]float32, c)
		zps := make([]int32, c)
		for i := range scales {
			scales[i] = float32(0.1 + r.Float64())
			zps[i] = int32(r.Intn(20) - 10)
		}
		for _, rule := range []RoundingRule{RuleTorch, RuleONNX} {
			fast := make([]byte, len(xs))
			slow := make([]int8, len(xs))
			n := quant8LastAxisFast(fast, xs, scales, zps, -128, 127, rule, true)
			if n == 0 {
				t.Fatalf("c=%d: fast path did nothing", c)
			}
			lastAxisGo(slow, xs, rows, scales, zps, -128, 127, rule)
			for i := 0; i < n; i++ {
				if int8(fast[i]) != slow[i] {
					t.Fatalf("c=%d %v x[%d]=%v: asm %d, Go %d", c, rule, i, xs[i], int8(fast[i]), slow[i])
				}
			}
		}
	}
}

func lcm32(c int) int {
	p := c
	for p%32 != 0 {
		p += c
	}
	return p
}

// TestDequantLastAxisTwin: per-channel (last axis) assembly dequantize
// against the per-channel table loop, which the torch goldens check.
func TestDequantLastAxisTwin(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2 path on this machine/build")
	}
	r := rand.New(rand.NewSource(11))
	for _, c := range []int{1, 3, 8, 32, 48, 100} {
		rows := 2*lcm32(c)/c + 3
		for _, dt := range []DType{Uint8, Int8} {
			data := MustNew(dt, []int{rows, c})
			switch d := data.Data.(type) {
			case []uint8:
				for i := range d {
					d[i] = uint8(r.Intn(256))
				}
			case []int8:
				for i := range d {
					d[i] = int8(r.Intn(256) - 128)
				}
			}
			scales := make([]float32, c)
			zps := make([]int32, c)
			lo, hi := storageRange(dt)
			for i := range scales {
				scales[i] = float32(r.ExpFloat64())
				zps[i] = int32(lo) + int32(r.Int63n(hi-lo+1))
			}
			q, err := NewQTensor(data, PerChannelAffine, scales, zps, 1)
			if err != nil {
				t.Fatal(err)
			}
			fast := make([]float32, rows*c)
			q.DequantizeInto(fast)
			iv := ints(data)
			for i, v := range fast {
				ch := i % c
				want := float32(iv[i]-int64(zps[ch])) * scales[ch]
				if math.Float32bits(v) != math.Float32bits(want) {
					t.Fatalf("c=%d %v element %d: %v, want %v", c, dt, i, v, want)
				}
			}
		}
	}
}
