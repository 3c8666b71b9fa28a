package tensor

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
)

type qparamsGolden struct {
	Torch string `json:"torch"`
	Cases []struct {
		DType       string `json:"dtype"`
		Scheme      string `json:"scheme"`
		ReduceRange bool   `json:"reduce_range"`
		HasRange    bool   `json:"has_range"`
		QMin        int64  `json:"qmin"`
		QMax        int64  `json:"qmax"`
		Eps         uint32 `json:"eps"`
		Error       string `json:"error"`
		ActualQMin  int64  `json:"actual_qmin"`
		ActualQMax  int64  `json:"actual_qmax"`
		// [min bits, max bits, scale bits, zero point] or [min, max, "error"]
		Results [][]any `json:"results"`
	} `json:"cases"`
}

var torchDTypes = map[string]DType{"quint8": Uint8, "qint8": Int8, "qint32": Int32}

var torchSchemes = map[string]QScheme{
	"per_tensor_affine": PerTensorAffine, "per_tensor_symmetric": PerTensorSymmetric,
	"per_channel_affine": PerChannelAffine, "per_channel_symmetric": PerChannelSymmetric,
	"per_channel_affine_float_qparams": PerChannelFloatQParams,
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func f32bits(v any) float32 { return math.Float32frombits(uint32(v.(float64))) }

// TestChooseQParamsTorchGolden compares with PyTorch 1.13's
// _calculate_qparams for every dtype × scheme × reduce_range × quant range ×
// eps in testdata/qparams.json (tools/golden/torch_tensor.py qparams).
func TestChooseQParamsTorchGolden(t *testing.T) {
	var g qparamsGolden
	readJSON(t, "qparams.json", &g)
	if len(g.Cases) < 100 {
		t.Fatalf("only %d golden cases", len(g.Cases))
	}
	checked := 0
	for _, c := range g.Cases {
		o := QParamsOpts{DType: torchDTypes[c.DType], Scheme: torchSchemes[c.Scheme], ReduceRange: c.ReduceRange,
			HasRange: c.HasRange, QuantMin: int32(c.QMin), QuantMax: int32(c.QMax), Eps: math.Float32frombits(c.Eps)}
		qmin, qmax, err := QuantRange(o)
		if c.Error != "" {
			if err == nil {
				t.Errorf("%+v: torch refuses (%s), QuantRange gives [%d, %d]", o, c.Error, qmin, qmax)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", o, err)
			continue
		}
		if int64(qmin) != c.ActualQMin || int64(qmax) != c.ActualQMax {
			t.Errorf("%+v: range [%d, %d], torch [%d, %d]", o, qmin, qmax, c.ActualQMin, c.ActualQMax)
		}
		if o.Scheme == PerChannelFloatQParams {
			var mins, maxs []float32
			for _, r := range c.Results {
				mins = append(mins, f32bits(r[0]))
				maxs = append(maxs, f32bits(r[1]))
			}
			s, z, err := PerChannelAffineFloatQParams(mins, maxs, o)
			if err != nil {
				t.Errorf("%+v: %v", o, err)
				continue
			}
			for i, r := range c.Results {
				checked++
				if math.Float32bits(s[i]) != uint32(r[2].(float64)) || math.Float32bits(z[i]) != uint32(r[3].(float64)) {
					t.Errorf("%+v [%g, %g]: got (%g, %g), torch (%g, %g)", o, mins[i], maxs[i], s[i], z[i], f32bits(r[2]), f32bits(r[3]))
				}
			}
			continue
		}
		for _, r := range c.Results {
			mn, mx := f32bits(r[0]), f32bits(r[1])
			s, z, err := ChooseQParams(mn, mx, o)
			checked++
			if r[2] == "error" {
				if err == nil {
					t.Errorf("%+v [%g, %g]: torch refuses, got (%g, %d)", o, mn, mx, s, z)
				}
				continue
			}
			if err != nil {
				t.Errorf("%+v [%g, %g]: %v", o, mn, mx, err)
				continue
			}
			ws, wz := f32bits(r[2]), int32(r[3].(float64))
			if math.Float32bits(s) != math.Float32bits(ws) || z != wz {
				t.Errorf("%+v [%g, %g]: got (%g, %d), torch (%g, %d)", o, mn, mx, s, z, ws, wz)
			}
			if o.Scheme.PerChannel() {
				ss, zz, err := ChooseQParamsPerChannel([]float32{mn, mx}, []float32{mx, mx}, o)
				if err != nil || ss[0] != s || zz[0] != z {
					t.Errorf("per-channel disagrees with per-tensor: %v %v %v", ss, zz, err)
				}
			}
		}
	}
	t.Logf("%d qparams compared with torch %s", checked, g.Torch)
}

func TestChooseQParamsErrors(t *testing.T) {
	o := QParamsOpts{DType: Uint8}
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, r := range [][2]float32{{nan, 1}, {0, nan}, {-inf, 1}, {0, inf}, {2, 1}} {
		if _, _, err := ChooseQParams(r[0], r[1], o); err == nil {
			t.Errorf("[%v, %v]: no error", r[0], r[1])
		}
	}
	if _, _, err := ChooseQParams(inf, -inf, o); !errors.Is(err, ErrEmptyRange) {
		t.Errorf("[inf, -inf]: %v, want ErrEmptyRange", err)
	}
	if _, _, err := ChooseQParams(0, 1, QParamsOpts{DType: Float32}); err == nil {
		t.Error("float32 dtype accepted")
	}
	if _, _, err := ChooseQParamsPerChannel([]float32{0}, []float32{1, 2}, o); err == nil {
		t.Error("length mismatch accepted")
	}
	if _, _, err := ChooseQParamsPerChannel([]float32{0, nan}, []float32{1, 2}, o); err == nil {
		t.Error("NaN channel accepted")
	}
}

// The 16-bit dtypes are not in PyTorch; check the formulas give the
// expected textbook values.
func TestChooseQParams16(t *testing.T) {
	s, z, err := ChooseQParams(-1, 1, QParamsOpts{DType: Uint16})
	if err != nil || s != float32(2)/65535 || z != 32768 {
		t.Errorf("uint16 affine: %v %v %v", s, z, err)
	}
	s, z, err = ChooseQParams(-1, 3, QParamsOpts{DType: Int16, Scheme: PerTensorSymmetric})
	if err != nil || s != float32(3)/float32(65535.0/2) || z != 0 {
		t.Errorf("int16 symmetric: %v %v %v", s, z, err)
	}
	_, z, _ = ChooseQParams(-1, 3, QParamsOpts{DType: Uint16, Scheme: PerTensorSymmetric})
	if z != 32768 {
		t.Errorf("uint16 symmetric zp %d", z)
	}
}
