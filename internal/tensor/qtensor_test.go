package tensor

import (
	"math"
	"testing"
)

type quantGolden struct {
	Torch     string `json:"torch"`
	PerTensor []struct {
		DType     string   `json:"dtype"`
		Scale     uint32   `json:"scale"`
		ZeroPoint int32    `json:"zero_point"`
		DQOnly    bool     `json:"dequantize_only"`
		X         []uint32 `json:"x"`
		Q         []int64  `json:"q"`
		DQ        []uint32 `json:"dq"`
	} `json:"per_tensor"`
	PerChannel []struct {
		DType      string   `json:"dtype"`
		Shape      []int    `json:"shape"`
		Axis       int      `json:"axis"`
		Scales     []uint32 `json:"scales"`
		ZeroPoints []int32  `json:"zero_points"`
		DQOnly     bool     `json:"dequantize_only"`
		X          []uint32 `json:"x"`
		Q          []int64  `json:"q"`
		DQ         []uint32 `json:"dq"`
	} `json:"per_channel"`
}

func floatsFromBits(b []uint32) []float32 {
	out := make([]float32, len(b))
	for i, v := range b {
		out[i] = math.Float32frombits(v)
	}
	return out
}

func intsOf(t *Tensor) []int64 {
	f, _ := t.AsFloat64()
	out := make([]int64, len(f))
	for i, v := range f {
		out[i] = int64(v)
	}
	return out
}

func intTensor(dt DType, shape []int, v []int64) *Tensor {
	t := MustNew(dt, shape)
	for i, x := range v {
		switch d := t.Data.(type) {
		case []uint8:
			d[i] = uint8(x)
		case []int8:
			d[i] = int8(x)
		case []int32:
			d[i] = int32(x)
		}
	}
	return t
}

func checkBits(t *testing.T, what string, got []float32, want []uint32) {
	t.Helper()
	bad := 0
	for i := range want {
		if math.Float32bits(got[i]) != want[i] {
			if bad < 5 {
				t.Errorf("%s[%d]: got %g (%#x), torch %g (%#x)", what, i, got[i], math.Float32bits(got[i]), math.Float32frombits(want[i]), want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d differ", what, bad, len(want))
	}
}

// TestQuantizeTorchGolden: RuleTorch against torch.quantize_per_tensor /
// quantize_per_channel and dequantize() on adversarial values
// (testdata/quantize.json from tools/golden/torch_tensor.py quantize).
func TestQuantizeTorchGolden(t *testing.T) {
	var g quantGolden
	readJSON(t, "quantize.json", &g)
	n := 0
	for _, c := range g.PerTensor {
		dt := torchDTypes[c.DType]
		scale := math.Float32frombits(c.Scale)
		var q *QTensor
		if c.DQOnly {
			var err error
			q, err = NewQTensor(intTensor(dt, []int{len(c.Q)}, c.Q), PerTensorAffine, []float32{scale}, []int32{c.ZeroPoint}, 0)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			x := floatsFromBits(c.X)
			var err error
			q, err = QuantizePerTensor(FromFloat32([]int{len(x)}, x), scale, c.ZeroPoint, dt, RuleTorch)
			if err != nil {
				t.Fatal(err)
			}
			got := intsOf(q.Data)
			for i := range c.Q {
				if got[i] != c.Q[i] {
					t.Errorf("%s scale %g zp %d: x=%g: q=%d, torch %d", c.DType, scale, c.ZeroPoint, x[i], got[i], c.Q[i])
				}
			}
		}
		checkBits(t, c.DType+" dequantize", q.Dequantize().F32(), c.DQ)
		n += len(c.Q)
	}
	for _, c := range g.PerChannel {
		dt := torchDTypes[c.DType]
		if c.DQOnly {
			q, err := NewQTensor(intTensor(dt, c.Shape, c.Q), PerChannelAffine, floatsFromBits(c.Scales), c.ZeroPoints, c.Axis)
			if err != nil {
				t.Fatal(err)
			}
			checkBits(t, "int32 per-channel dequantize", q.Dequantize().F32(), c.DQ)
			continue
		}
		x := floatsFromBits(c.X)
		q, err := QuantizePerChannel(FromFloat32(c.Shape, x), floatsFromBits(c.Scales), c.ZeroPoints, c.Axis, dt, RuleTorch)
		if err != nil {
			t.Fatal(err)
		}
		got := intsOf(q.Data)
		for i := range c.Q {
			if got[i] != c.Q[i] {
				t.Errorf("%s %v axis %d: x[%d]=%g: q=%d, torch %d", c.DType, c.Shape, c.Axis, i, x[i], got[i], c.Q[i])
			}
		}
		checkBits(t, c.DType+" per-channel dequantize", q.Dequantize().F32(), c.DQ)
		n += len(c.Q)
	}
	t.Logf("%d values compared with torch %s", n, g.Torch)
}

// TestMagicRound proves roundMagic == RoundToEven for every float32 with
// 2^-2 <= |t| <= 2^22 (below 2^-2 both give 0; sampled).
func TestMagicRound(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive")
	}
	lo := math.Float32bits(0.25)
	hi := math.Float32bits(1 << 22)
	for b := lo; b <= hi; b++ {
		for _, v := range [2]float32{math.Float32frombits(b), -math.Float32frombits(b)} {
			if r := roundMagic(v); r != float32(math.RoundToEven(float64(v))) {
				t.Fatalf("roundMagic(%v) = %v", v, r)
			}
		}
	}
	for b := uint32(0); b < lo; b += 4099 {
		v := math.Float32frombits(b)
		if roundMagic(v) != 0 || roundMagic(-v) != 0 {
			t.Fatalf("roundMagic(%v) != 0", v)
		}
	}
}

// TestRulesDiffer finds values where PyTorch's x*(1/scale) and ONNX's
// x/scale quantize to different integers, and checks each rule gives its
// own reference's answer there.
func TestRulesDiffer(t *testing.T) {
	scale := float32(0.0123)
	inv := 1 / scale
	var found []float32
	for i := 0; i < 200000 && len(found) < 20; i++ {
		x := float32(i) * 0.001173
		if math.RoundToEven(float64(float32(x*inv))) != math.RoundToEven(float64(x/scale)) {
			found = append(found, x)
		}
	}
	if len(found) == 0 {
		t.Fatal("no value found where the rules differ")
	}
	xt := FromFloat32([]int{len(found)}, found)
	qt, _ := QuantizePerTensor(xt, scale, 0, Int32, RuleTorch)
	qo, _ := QuantizePerTensor(xt, scale, 0, Int32, RuleONNX)
	q8t, _ := QuantizePerTensor(xt, scale, 0, Uint8, RuleTorch)
	q8o, _ := QuantizePerTensor(xt, scale, 0, Uint8, RuleONNX)
	for i, x := range found {
		wt := int32(math.RoundToEven(float64(float32(x * inv))))
		wo := int32(math.RoundToEven(float64(x / scale)))
		if qt.Data.I32()[i] != wt || qo.Data.I32()[i] != wo || wt == wo {
			t.Errorf("x=%v: torch rule %d (want %d), onnx rule %d (want %d)", x, qt.Data.I32()[i], wt, qo.Data.I32()[i], wo)
		}
		if wt <= 255 && (int32(q8t.Data.U8()[i]) != wt || int32(q8o.Data.U8()[i]) != wo) {
			t.Errorf("x=%v uint8: torch %d onnx %d", x, q8t.Data.U8()[i], q8o.Data.U8()[i])
		}
	}
	t.Logf("%d values differ between the rules at scale %v, first x=%v (torch %v, onnx %v)", len(found), scale, found[0],
		float32(found[0]*inv), found[0]/scale)
}

// TestRuleONNXReference checks the fast 8/16-bit ONNX loop against the
// formula evaluated in float64 after the float32 division, on edge values.
func TestRuleONNXReference(t *testing.T) {
	var xs []float32
	for i := -2000; i <= 2000; i++ {
		xs = append(xs, float32(i)*0.25*0.37, float32(i)*0.37/2)
	}
	inf := float32(math.Inf(1))
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 1e-45, 1e38, -1e38, inf, -inf, float32(math.NaN()))
	x := FromFloat32([]int{len(xs)}, xs)
	for _, dt := range []DType{Uint8, Int8, Uint16, Int16, Int32} {
		lo, hi := storageRange(dt)
		for _, zp := range []int32{0, 3, int32(lo), int32(hi)} {
			q, err := QuantizePerTensor(x, 0.37, zp, dt, RuleONNX)
			if err != nil {
				t.Fatal(err)
			}
			got := intsOf(q.Data)
			for i, v := range xs {
				want := lo
				if v == v {
					r := math.RoundToEven(float64(v/0.37)) + float64(zp)
					want = int64(math.Max(float64(lo), math.Min(float64(hi), r)))
				}
				if got[i] != want {
					t.Fatalf("%v zp %d x=%v: %d, want %d", dt, zp, v, got[i], want)
				}
			}
		}
	}
}

func TestQTensorErrors(t *testing.T) {
	x := FromFloat32([]int{2, 3}, make([]float32, 6))
	cases := []func() error{
		func() error { _, err := QuantizePerTensor(x, 0, 0, Uint8, RuleTorch); return err },
		func() error { _, err := QuantizePerTensor(x, float32(math.NaN()), 0, Uint8, RuleTorch); return err },
		func() error { _, err := QuantizePerTensor(x, 1, 256, Uint8, RuleTorch); return err },
		func() error { _, err := QuantizePerTensor(x, 1, -129, Int8, RuleTorch); return err },
		func() error { _, err := QuantizePerTensor(x, 1, 0, Float32, RuleTorch); return err },
		func() error {
			_, err := QuantizePerChannel(x, []float32{1, 1}, []int32{0, 0}, 1, Uint8, RuleTorch)
			return err
		},
		func() error {
			_, err := QuantizePerChannel(x, []float32{1, 1}, []int32{0, 0}, 2, Uint8, RuleTorch)
			return err
		},
		func() error {
			_, err := QuantizePerTensor(&Tensor{DType: Float32, Shape: []int{3}, Data: []float32{1}}, 1, 0, Uint8, RuleTorch)
			return err
		},
		func() error {
			_, err := NewQTensor(MustNew(Uint8, []int{2, 3}), PerChannelAffine, []float32{1, 1}, []int32{0, 0}, 1)
			return err
		},
	}
	for i, f := range cases {
		if f() == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}

// TestQuantizeORTGolden: RuleONNX against ONNX Runtime's QuantizeLinear on
// ties, range ends, huge values, ±Inf, NaN and the values where the torch
// rule differs (testdata/ort_quantize.json, tools/golden/ort_quantize.py).
func TestQuantizeORTGolden(t *testing.T) {
	var g struct {
		Scale uint32   `json:"scale"`
		X     []uint32 `json:"x"`
		Cases []struct {
			DType     string  `json:"dtype"`
			ZeroPoint int32   `json:"zero_point"`
			Y         []int64 `json:"y"`
		} `json:"cases"`
	}
	readJSON(t, "ort_quantize.json", &g)
	xs := floatsFromBits(g.X)
	x := FromFloat32([]int{len(xs)}, xs)
	scale := math.Float32frombits(g.Scale)
	for _, c := range g.Cases {
		dt := map[string]DType{"uint8": Uint8, "int8": Int8}[c.DType]
		for _, rule := range []RoundingRule{RuleONNX, RuleTorch} {
			q, err := QuantizePerTensor(x, scale, c.ZeroPoint, dt, rule)
			if err != nil {
				t.Fatal(err)
			}
			got := intsOf(q.Data)
			diff := 0
			for i := range c.Y {
				if got[i] != c.Y[i] {
					if rule == RuleONNX {
						t.Errorf("%s x=%v: %d, ORT %d", c.DType, xs[i], got[i], c.Y[i])
					}
					diff++
				}
			}
			if rule == RuleTorch {
				// The torch rule must differ somewhere (the file holds
				// such values); this documents by how much.
				if diff == 0 {
					t.Errorf("%s: torch rule agrees with ORT everywhere; the golden lacks distinguishing values", c.DType)
				}
				t.Logf("%s: torch rule differs from ORT on %d of %d values", c.DType, diff, len(c.Y))
			}
		}
	}
}
