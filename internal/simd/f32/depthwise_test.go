package f32

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"testing"
)

// refDW is the definition of DepthwiseConv2D in float64: taps outside the
// input are skipped. It returns the value before the epilogue and the sum of
// magnitudes for the rounding tolerance.
func refDW(s DWShape, x, w []float32, c, oh, ow int) (float64, float64) {
	s = s.norm()
	var sum, mag float64
	ic := c / s.Mult
	for kh := 0; kh < s.KH; kh++ {
		ih := oh*s.StrideH - s.PadT + kh*s.DilH
		if ih < 0 || ih >= s.InH {
			continue
		}
		for kw := 0; kw < s.KW; kw++ {
			iw := ow*s.StrideW - s.PadL + kw*s.DilW
			if iw < 0 || iw >= s.InW {
				continue
			}
			v := float64(x[(ic*s.InH+ih)*s.InW+iw]) * float64(w[(c*s.KH+kh)*s.KW+kw])
			sum += v
			mag += math.Abs(v)
		}
	}
	return sum, mag
}

// outSize is ONNX's output size for explicit pads.
func outSize(in, k, stride, dil, padBegin, padEnd int) int {
	return (in+padBegin+padEnd-dil*(k-1)-1)/stride + 1
}

type dwCase struct {
	k, stride, dil, padB, padE, mult int
}

func dwShape(cs dwCase, c, inH, inW int) DWShape {
	return DWShape{
		C: c, Mult: cs.mult, InH: inH, InW: inW, KH: cs.k, KW: cs.k,
		StrideH: cs.stride, StrideW: cs.stride, DilH: cs.dil, DilW: cs.dil,
		PadT: cs.padB, PadL: cs.padB,
		OutH: outSize(inH, cs.k, cs.stride, cs.dil, cs.padB, cs.padE),
		OutW: outSize(inW, cs.k, cs.stride, cs.dil, cs.padB, cs.padE),
	}
}

var dwCases = []dwCase{
	{k: 3, stride: 1, dil: 1, padB: 1, padE: 1},
	{k: 3, stride: 2, dil: 1, padB: 1, padE: 1},
	{k: 3, stride: 2, dil: 1, padB: 0, padE: 1}, // TF-style SAME_UPPER
	{k: 5, stride: 1, dil: 1, padB: 2, padE: 2},
	{k: 5, stride: 2, dil: 1, padB: 2, padE: 2},
	{k: 3, stride: 1, dil: 2, padB: 2, padE: 2},
	{k: 3, stride: 1, dil: 1, padB: 0, padE: 0},
	{k: 1, stride: 1, dil: 1, padB: 0, padE: 0},
	{k: 7, stride: 3, dil: 1, padB: 3, padE: 1},
	{k: 3, stride: 1, dil: 1, padB: 1, padE: 1, mult: 2},
	{k: 2, stride: 2, dil: 1, padB: 0, padE: 0},
}

func TestDepthwiseConv2D(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(6))
		for _, cs := range dwCases {
			for _, hw := range [][2]int{{1, 1}, {5, 7}, {14, 14}, {17, 40}, {33, 3}, {3, 131}, {2, 70}, {9, 16}, {6, 32}, {7, 8}, {5, 64}} {
				s := dwShape(cs, 6, hw[0], hw[1])
				if s.OutH <= 0 || s.OutW <= 0 {
					continue
				}
				ep := epilogues[r.Intn(len(epilogues))]
				if r.Intn(2) == 0 {
					ep.RowBias = randMat(r, s.C)
				}
				cin := s.C / max(1, s.Mult)
				x, w := randMat(r, cin*s.InH*s.InW), randMat(r, s.C*s.KH*s.KW)
				y0 := randMat(r, s.C*s.OutH*s.OutW)
				y := append([]float32(nil), y0...)
				DepthwiseConv2D(&s, x, w, 0, s.C, y, ep)
				for c := 0; c < s.C; c++ {
					for oh := 0; oh < s.OutH; oh++ {
						for ow := 0; ow < s.OutW; ow++ {
							i := (c*s.OutH+oh)*s.OutW + ow
							dot, mag := refDW(s, x, w, c, oh, ow)
							want, mg := wantEp(&ep, dot, mag, float64(y0[i]), c, 0)
							if !closeTo(y[i], want, mg, s.KH*s.KW) {
								t.Fatalf("%+v ep=%+v: y[%d][%d][%d] = %v, want %v", s, ep, c, oh, ow, y[i], want)
							}
						}
					}
				}
			}
		}
	})
}

// Splitting channels between callers gives identical bits and leaves the
// other channels alone.
func TestDepthwiseSplit(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(7))
		s := dwShape(dwCases[1], 9, 19, 23)
		x, w := randMat(r, s.C*s.InH*s.InW), randMat(r, s.C*s.KH*s.KW)
		ep := Epilogue{RowBias: randMat(r, s.C), Act: ActRelu, Accumulate: true}
		y0 := randMat(r, s.C*s.OutH*s.OutW)
		whole := append([]float32(nil), y0...)
		DepthwiseConv2D(&s, x, w, 0, s.C, whole, ep)
		for _, sp := range splits(r, s.C) {
			y := append([]float32(nil), y0...)
			for i := 0; i+1 < len(sp); i++ {
				before := append([]float32(nil), y...)
				DepthwiseConv2D(&s, x, w, sp[i], sp[i+1], y, ep)
				plane := s.OutH * s.OutW
				for j := range y {
					if (j/plane < sp[i] || j/plane >= sp[i+1]) && y[j] != before[j] {
						t.Fatalf("channels %d..%d wrote element %d", sp[i], sp[i+1], j)
					}
				}
			}
			assertBits(t, fmt.Sprintf("channels %v", sp), whole, y)
		}
	})
}

// A dilation far larger than the image takes the direct path instead of a
// padded plane of millions of rows.
func TestDepthwiseHugeDilation(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	s := DWShape{C: 2, InH: 5, InW: 6, KH: 3, KW: 3, DilH: 3_000_000_000_000_000_000, DilW: 2, PadT: 3_000_000, PadL: 2, OutH: 5, OutW: 6}
	x, w, y := randMat(r, 2*30), randMat(r, 18), make([]float32, 2*30)
	ep := Epilogue{RowBias: randMat(r, 2), Act: ActRelu}
	DepthwiseConv2D(&s, x, w, 0, 2, y, ep)
	for c := 0; c < 2; c++ {
		for i := 0; i < 30; i++ {
			dot, mag := refDW(s, x, w, c, i/6, i%6)
			want, mg := wantEp(&ep, dot, mag, 0, c, 0)
			if got := y[c*30+i]; !closeTo(got, want, mg, 9) {
				t.Fatalf("y[%d][%d] = %v, want %v", c, i, got, want)
			}
		}
	}
}

func TestDepthwiseBadArgs(t *testing.T) {
	good := DWShape{C: 2, InH: 4, InW: 4, KH: 3, KW: 3, PadT: 1, PadL: 1, OutH: 4, OutW: 4}
	for name, f := range map[string]func(){
		"short x": func() {
			DepthwiseConv2D(&good, make([]float32, 31), make([]float32, 18), 0, 2, make([]float32, 32), Epilogue{})
		},
		"short y": func() {
			DepthwiseConv2D(&good, make([]float32, 32), make([]float32, 18), 0, 2, make([]float32, 31), Epilogue{})
		},
		"channels": func() {
			DepthwiseConv2D(&good, make([]float32, 32), make([]float32, 18), 0, 3, make([]float32, 32), Epilogue{})
		},
		"colbias": func() {
			DepthwiseConv2D(&good, make([]float32, 32), make([]float32, 18), 0, 2, make([]float32, 32), Epilogue{ColBias: []float32{1}})
		},
		"mult": func() {
			s := good
			s.Mult = 3
			DepthwiseConv2D(&s, make([]float32, 32), make([]float32, 18), 0, 2, make([]float32, 32), Epilogue{})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestDepthwiseNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race; allocation counts are meaningless")
	}
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(8))
		s := dwShape(dwCases[1], 5, 20, 30)
		x, w, y := randMat(r, s.C*s.InH*s.InW), randMat(r, s.C*9), make([]float32, s.C*s.OutH*s.OutW)
		ep := Epilogue{RowBias: randMat(r, s.C), Act: ActRelu}
		f := func() { DepthwiseConv2D(&s, x, w, 1, 4, y, ep) }
		f()
		if a := testing.AllocsPerRun(20, f); a != 0 {
			t.Errorf("%v allocations per call", a)
		}
	})
}

// The plane fills against their Go twins, with source slices cut exactly
// at the last element read.
func TestPlaneFills(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(9))
		for _, f := range []struct {
			stride    int
			got, want func(dst []float32, dstStride int, src []float32, srcStride int, rows, n int)
		}{{1, active().copyRows, copyRowsGeneric}, {2, active().gather2, gather2Generic}} {
			for n := 1; n <= 41; n++ {
				for rows := 1; rows <= 3; rows++ {
					srcStride, dstStride := f.stride*n+r.Intn(3), n+r.Intn(3)
					src := randMat(r, (rows-1)*srcStride+f.stride*(n-1)+1)
					dst := randMat(r, (rows-1)*dstStride+n)
					want := append([]float32(nil), dst...)
					f.want(want, dstStride, src, srcStride, rows, n)
					f.got(dst, dstStride, src, srcStride, rows, n)
					assertBits(t, fmt.Sprintf("stride %d n=%d rows=%d", f.stride, n, rows), want, dst)
				}
			}
		}
	})
}

// PyTorch 1.13's depthwise conv2d (testdata/gen_depthwise.py) as the
// reference: strides, dilation, asymmetric pads, a channel multiplier and
// the bias, through every kernel.
func TestDepthwiseTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/depthwise_torch.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases []struct {
			Cin, Mult, H, W, K, Stride, Dil int
			Pads, Out                       []int
			X, Weight, Bias, Y              []float32
		}
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) == 0 {
		t.Fatal("no cases in golden file")
	}
	forEachKernel(t, func(t *testing.T) {
		for i, g := range golden.Cases {
			s := DWShape{C: g.Cin * g.Mult, Mult: g.Mult, InH: g.H, InW: g.W, KH: g.K, KW: g.K,
				StrideH: g.Stride, StrideW: g.Stride, DilH: g.Dil, DilW: g.Dil,
				PadT: g.Pads[0], PadL: g.Pads[1], OutH: g.Out[0], OutW: g.Out[1]}
			y := make([]float32, len(g.Y))
			DepthwiseConv2D(&s, g.X, g.Weight, 0, s.C, y, Epilogue{RowBias: g.Bias})
			plane := s.OutH * s.OutW
			for j := range y {
				c, oh, ow := j/plane, j%plane/s.OutW, j%s.OutW
				_, mag := refDW(s, g.X, g.Weight, c, oh, ow)
				if !closeTo(y[j], float64(g.Y[j]), 2*mag+math.Abs(float64(g.Bias[c])), s.KH*s.KW) {
					t.Fatalf("case %d %+v: y[%d] = %v, torch %v", i, s, j, y[j], g.Y[j])
				}
			}
		}
	})
}

// The AVX-512 3x3 row kernels (dw3, dw3s2) against the kernel's own row
// kernels (dw), bit for bit: the same FMA chains in the same tap order, on
// widths around the vector length, heights not a multiple of four, both
// strides with SAME_UPPER pads too, and every epilogue. (The Go twin rounds
// each product, so it only agrees to within TestDepthwiseConv2D's
// tolerance, which covers these kernels on every ISA run.)
func TestDepthwise3x3RowsBits(t *testing.T) {
	var k3 *kernel
	for _, k := range kernels() {
		if k.dw3 != nil {
			k3 = k
		}
	}
	if k3 == nil {
		t.Skip("no dw3 kernel on this CPU")
	}
	prev := active()
	defer current.Store(prev)
	current.Store(k3)
	dw3, dw3s2 := k3.dw3, k3.dw3s2
	defer func() { k3.dw3, k3.dw3s2 = dw3, dw3s2 }()
	r := rand.New(rand.NewSource(12))
	for _, cs := range []dwCase{dwCases[0], dwCases[1], dwCases[2]} {
		for _, hw := range [][2]int{{4, 17}, {9, 35}, {12, 33}, {8, 40}, {15, 67}, {23, 100}} {
			for _, base := range epilogues {
				s := dwShape(cs, 5, hw[0], hw[1])
				ep := base
				ep.RowBias = randMat(r, s.C)
				x, w := randMat(r, s.C*s.InH*s.InW), randMat(r, s.C*9)
				y0 := randMat(r, s.C*s.OutH*s.OutW)
				var ys [2][]float32
				for i, on := range []bool{true, false} {
					k3.dw3, k3.dw3s2 = dw3, dw3s2
					if !on {
						k3.dw3, k3.dw3s2 = nil, nil
					}
					ys[i] = append([]float32(nil), y0...)
					DepthwiseConv2D(&s, x, w, 0, s.C, ys[i], ep)
				}
				k3.dw3, k3.dw3s2 = dw3, dw3s2
				assertBits(t, fmt.Sprintf("%+v %v %+v", cs, hw, base), ys[1], ys[0])
			}
		}
	}
}
