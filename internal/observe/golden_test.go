package observe

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

// Goldens come from tools/golden/torch_observers.py run with PyTorch 1.13.

type batch struct {
	Shape []int
	Data  []float32
}

func decodeF32(t testing.TB, s string) []float32 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("bad base64 float32 data: %v", err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// synth is tools/golden/torch_observers.py's synth: splitmix64 of a counter,
// twelve 32-bit uniforms summed exactly in float64, minus 6.
func synth(seed uint64, n int) []float64 {
	out := make([]float64, n)
	base := seed << 32
	for j := range out {
		var s float64
		for k := 0; k < 12; k++ {
			z := (base + uint64(12*j+k)) * 0x9E3779B97F4A7C15
			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
			z = (z ^ (z >> 27)) * 0x94D049BB133111EB
			z ^= z >> 31
			s += float64(float64(z>>32) * (1.0 / (1 << 32)))
		}
		out[j] = s - 6
	}
	return out
}

type synthSpec struct {
	Seed   uint64  `json:"seed"`
	Shape  []int   `json:"shape"`
	Scale  float64 `json:"scale"`
	Offset float64 `json:"offset"`
	Kind   string  `json:"kind"`
	SHA    string  `json:"sha"`
}

func (sp synthSpec) batch() batch {
	n := 1
	for _, d := range sp.Shape {
		n *= d
	}
	a := synth(sp.Seed, n)
	if sp.Kind == "heavy" {
		b := synth(sp.Seed+1000, n)
		for i := range a {
			a[i] = a[i] / float64(math.Abs(b[i])+0.05)
		}
	}
	x := make([]float32, n)
	for i, v := range a {
		v = float64(v*sp.Scale) + sp.Offset // no FMA: numpy rounds the product
		if sp.Kind == "relu" {
			v = math.Max(v, 0)
		}
		x[i] = float32(v)
	}
	return batch{Shape: sp.Shape, Data: x}
}

type inputsFile struct {
	Seqs map[string][]struct {
		Shape []int  `json:"shape"`
		Data  string `json:"data"`
	} `json:"seqs"`
	Synth map[string][]synthSpec `json:"synth"`
	Sums  []struct {
		Seed uint64 `json:"seed"`
		N    int    `json:"n"`
		Sum  F32    `json:"sum"`
	} `json:"sums"`
}

func loadSeqs(t testing.TB) map[string][]batch {
	var raw inputsFile
	readJSON(t, "inputs.json", &raw)
	out := map[string][]batch{}
	for name, bs := range raw.Seqs {
		for _, b := range bs {
			out[name] = append(out[name], batch{Shape: b.Shape, Data: decodeF32(t, b.Data)})
		}
	}
	for name, specs := range raw.Synth {
		for _, sp := range specs {
			b := sp.batch()
			if got := histSHA(b.Data); got != sp.SHA {
				t.Fatalf("synthetic batch %s seed %d differs from the golden script's", name, sp.Seed)
			}
			out[name] = append(out[name], b)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func f32sEqual(a []float32, b []F32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(float32(b[i])) && !(a[i] == float32(b[i])) {
			return false
		}
	}
	return true
}

func TestMinMaxFamilyMatchesTorch(t *testing.T) {
	seqs := loadSeqs(t)
	var g struct {
		Stats map[string][]struct {
			Min []F32 `json:"min"`
			Max []F32 `json:"max"`
		} `json:"stats"`
		Cases []struct {
			Kind   Kind            `json:"kind"`
			Config json.RawMessage `json:"config"`
			Seq    string          `json:"seq"`
			Stats  string          `json:"stats"`
			Steps  [][2][]float64  `json:"steps"`
			Error  string          `json:"error"`
		} `json:"cases"`
	}
	readJSON(t, "minmax.json", &g)
	checked, steps := 0, 0
	for _, c := range g.Cases {
		var cfg Config
		if err := json.Unmarshal(c.Config, &cfg); err != nil {
			t.Fatalf("config %s: %v", c.Config, err)
		}
		name := fmt.Sprintf("%s %s %s", c.Kind, c.Config, c.Seq)
		obs, err := New(c.Kind, cfg)
		if c.Error != "" {
			if err == nil {
				t.Errorf("%s: torch refuses (%s), we accept", name, c.Error)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		stats := g.Stats[c.Stats]
		for i, b := range seqs[c.Seq] {
			if err := obs.Observe(b.Data, b.Shape); err != nil {
				t.Fatalf("%s step %d: %v", name, i, err)
			}
			var mn, mx []float32
			switch o := obs.(type) {
			case *MinMax:
				a, b := o.Range()
				mn, mx = []float32{a}, []float32{b}
			case *PerChannelMinMax:
				mn, mx = o.Range()
			}
			if stats != nil && (!f32sEqual(mn, stats[i].Min) || !f32sEqual(mx, stats[i].Max)) {
				t.Fatalf("%s step %d: range %v %v, torch %v %v", name, i, mn, mx, stats[i].Min, stats[i].Max)
			}
			s, z, err := obs.QParams()
			if err != nil {
				t.Fatalf("%s step %d: %v", name, i, err)
			}
			want := c.Steps[i]
			if len(s) != len(want[0]) || len(z) != len(want[1]) {
				t.Fatalf("%s step %d: %d qparams, torch %d", name, i, len(s), len(want[0]))
			}
			for j := range s {
				if s[j] != float32(want[0][j]) || z[j] != int32(want[1][j]) {
					t.Fatalf("%s step %d ch %d: scale %v zp %d, torch %v %v", name, i, j, s[j], z[j], float32(want[0][j]), want[1][j])
				}
			}
			steps++
		}
		checked++
	}
	t.Logf("%d observer runs, %d steps: qparams and min/max identical to torch", checked, steps)
	if checked < 500 {
		t.Fatalf("only %d cases checked", checked)
	}
}

func histSHA(h []float32) string {
	b := make([]byte, 4*len(h))
	for i, v := range h {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])[:16]
}

func TestHistogramStateMatchesTorch(t *testing.T) {
	seqs := loadSeqs(t)
	var g struct {
		States map[string]struct {
			Steps []struct {
				Min  F32    `json:"min"`
				Max  F32    `json:"max"`
				Sum  string `json:"hist_sha"`
				HSum float64
			} `json:"steps"`
			FinalHist string `json:"final_hist"`
			Error     *string
		} `json:"states"`
	}
	readJSON(t, "histogram.json", &g)
	for _, name := range sortedKeys(g.States) {
		st := g.States[name]
		obs, _ := New(KindHistogram, Config{DType: tensor.Uint8})
		h := obs.(*Histogram)
		for i, b := range seqs[name] {
			if err := h.Observe(b.Data, b.Shape); err != nil {
				t.Fatalf("%s step %d: %v", name, i, err)
			}
			want := st.Steps[i]
			if h.min != float32(want.Min) || h.max != float32(want.Max) {
				t.Errorf("%s step %d: range [%v, %v], torch [%v, %v]", name, i, h.min, h.max, want.Min, want.Max)
			}
			if got := histSHA(h.hist); got != want.Sum {
				t.Errorf("%s step %d: histogram differs from torch's", name, i)
			}
		}
		final := decodeF32(t, st.FinalHist)
		for k := range final {
			if final[k] != h.hist[k] {
				t.Errorf("%s: final bin %d = %v, torch %v", name, k, h.hist[k], final[k])
				break
			}
		}
	}
}

func TestHistogramQParamsMatchTorch(t *testing.T) {
	seqs := loadSeqs(t)
	var g struct {
		Cases []struct {
			Config json.RawMessage `json:"config"`
			Seq    string          `json:"seq"`
			Steps  []struct {
				Scales     []F32   `json:"scales"`
				ZeroPoints []int32 `json:"zero_points"`
			} `json:"steps"`
			Error string `json:"error"`
		} `json:"cases"`
	}
	readJSON(t, "histogram.json", &g)
	var worst float64
	exact, total := 0, 0
	for _, c := range g.Cases {
		var cfg Config
		if err := json.Unmarshal(c.Config, &cfg); err != nil {
			t.Fatal(err)
		}
		if c.Error != "" {
			continue
		}
		obs, err := New(KindHistogram, cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.Config, err)
		}
		for i, b := range seqs[c.Seq] {
			if err := obs.Observe(b.Data, b.Shape); err != nil {
				t.Fatal(err)
			}
			s, z, err := obs.QParams()
			if err != nil {
				t.Fatalf("%s %s step %d: %v", c.Config, c.Seq, i, err)
			}
			ws, wz := float32(c.Steps[i].Scales[0]), c.Steps[i].ZeroPoints[0]
			rel := math.Abs(float64(s[0])-float64(ws)) / float64(ws)
			worst = max(worst, rel)
			total++
			if s[0] == ws {
				exact++
			}
			if z[0] != wz || rel > 1e-6 {
				t.Errorf("%s %s step %d: scale %v zp %d, torch %v %d (rel %.2g)", c.Config, c.Seq, i, s[0], z[0], ws, wz, rel)
			}
		}
	}
	t.Logf("%d histogram qparams: %d scales bit-identical, worst relative scale error %.3g, zero points identical", total, exact, worst)
}

func TestFakeQuantizeMatchesTorch(t *testing.T) {
	seqs := loadSeqs(t)
	var g struct {
		Modules []struct {
			Name  string `json:"name"`
			Seq   string `json:"seq"`
			Steps []struct {
				Out        string  `json:"out"`
				Scales     []F32   `json:"scales"`
				ZeroPoints []int32 `json:"zero_points"`
			} `json:"steps"`
		} `json:"modules"`
		Functions []struct {
			Fn         string  `json:"fn"`
			Scale      F32     `json:"scale"`
			ZeroPoint  int32   `json:"zero_point"`
			Scales     []F32   `json:"scales"`
			ZeroPoints []int32 `json:"zero_points"`
			Axis       int     `json:"axis"`
			Shape      []int   `json:"shape"`
			QuantMin   int32   `json:"quant_min"`
			QuantMax   int32   `json:"quant_max"`
			X          string  `json:"x"`
			Out        string  `json:"out"`
		} `json:"functions"`
	}
	readJSON(t, "fakequant.json", &g)
	ctor := map[string]func() (Observer, error){
		"default_fake_quant": func() (Observer, error) {
			return New(KindMovingAverageMinMax, Config{DType: tensor.Uint8, Scheme: tensor.PerTensorAffine,
				HasRange: true, QuantMin: 0, QuantMax: 255, ReduceRange: true})
		},
		"minmax_qint8_symmetric": func() (Observer, error) {
			return New(KindMinMax, Config{DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric,
				HasRange: true, QuantMin: -128, QuantMax: 127})
		},
		"per_channel_qint8_symmetric_axis1": func() (Observer, error) {
			return New(KindMovingAveragePerChannelMinMax, Config{DType: tensor.Int8, Scheme: tensor.PerChannelSymmetric,
				HasRange: true, QuantMin: -128, QuantMax: 127, Axis: 1})
		},
		"per_channel_quint8_affine_axis0": func() (Observer, error) {
			return New(KindPerChannelMinMax, Config{DType: tensor.Uint8, Scheme: tensor.PerChannelAffine,
				HasRange: true, QuantMin: 0, QuantMax: 255, Axis: 0})
		},
		"toggles": func() (Observer, error) {
			return New(KindMovingAverageMinMax, Config{DType: tensor.Uint8, Scheme: tensor.PerTensorAffine,
				HasRange: true, QuantMin: 0, QuantMax: 255})
		},
	}
	values := 0
	for _, m := range g.Modules {
		obs, err := ctor[m.Name]()
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		fq, err := NewFakeQuantize(obs)
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range seqs[m.Seq] {
			if m.Name == "toggles" {
				switch i {
				case 2:
					fq.ObserverEnabled, fq.FakeQuantEnabled = false, true
				case 3:
					fq.ObserverEnabled, fq.FakeQuantEnabled = false, false
				case 4:
					fq.ObserverEnabled, fq.FakeQuantEnabled = true, true
				}
			}
			out, err := fq.Forward(b.Data, b.Shape, nil)
			if err != nil {
				t.Fatalf("%s %s step %d: %v", m.Name, m.Seq, i, err)
			}
			want := decodeF32(t, m.Steps[i].Out)
			if !f32sEqual(fq.Scales, m.Steps[i].Scales) {
				t.Fatalf("%s %s step %d: scales %v, torch %v", m.Name, m.Seq, i, fq.Scales, m.Steps[i].Scales)
			}
			for k := range want {
				if math.Float32bits(out[k]) != math.Float32bits(want[k]) {
					t.Fatalf("%s %s step %d elem %d: x=%v out %v, torch %v", m.Name, m.Seq, i, k, b.Data[k], out[k], want[k])
				}
			}
			values += len(want)
		}
	}
	for _, f := range g.Functions {
		x, want := decodeF32(t, f.X), decodeF32(t, f.Out)
		out := make([]float32, len(x))
		if f.Fn == "per_tensor" {
			FakeQuantizePerTensor(x, float32(f.Scale), f.ZeroPoint, f.QuantMin, f.QuantMax, out)
		} else {
			if err := FakeQuantizePerChannel(x, f.Shape, f.Axis, fromF32(f.Scales), f.ZeroPoints, f.QuantMin, f.QuantMax, out); err != nil {
				t.Fatal(err)
			}
		}
		for k := range want {
			if math.Float32bits(out[k]) != math.Float32bits(want[k]) {
				t.Fatalf("%s scale %v zp %d [%d,%d] elem %d: x=%v out %v, torch %v", f.Fn, f.Scale, f.ZeroPoint,
					f.QuantMin, f.QuantMax, k, x[k], out[k], want[k])
			}
		}
		values += len(want)
	}
	t.Logf("%d fake-quantized values bit-identical to torch", values)
}

func TestTorchSumMatchesTorch(t *testing.T) {
	var raw inputsFile
	readJSON(t, "inputs.json", &raw)
	if len(raw.Sums) == 0 {
		t.Fatal("no torch.sum goldens")
	}
	for _, c := range raw.Sums {
		a := synth(c.Seed, c.N)
		x := make([]float32, c.N)
		for i, v := range a {
			x[i] = float32(math.Pow(math.Abs(v), 5) * 37)
		}
		if got := torchSum(x); got != float32(c.Sum) {
			t.Errorf("n=%d: torchSum %v, torch.sum %v", c.N, got, c.Sum)
		}
	}
}

// Every golden histogram state survives a JSON round trip, including those
// whose combine steps left slightly negative bins (torch's rounding).
func TestHistogramStatesRoundTrip(t *testing.T) {
	seqs := loadSeqs(t)
	negative := 0
	for _, name := range sortedKeys(seqs) {
		o := mustNew(t, KindHistogram, Config{DType: tensor.Uint8})
		observeAll(t, o, seqs[name])
		for _, v := range o.(*Histogram).hist {
			if v < 0 {
				negative++
			}
		}
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s1, z1, _ := o.QParams()
		s2, z2, _ := back.QParams()
		if s1[0] != s2[0] || z1[0] != z2[0] {
			t.Errorf("%s: qparams changed in the round trip", name)
		}
	}
	t.Logf("%d negative bins across the golden sequences", negative)
}
