package observe

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/qtool/qtool/internal/tensor"
)

func normalBatches(seed uint64, n, size int, scale float64) []batch {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]batch, n)
	for i := range out {
		x := make([]float32, size)
		for j := range x {
			x[j] = float32(rng.NormFloat64() * scale * (1 + 0.3*float64(i)))
		}
		out[i] = batch{Shape: []int{2, 3, size / 6}, Data: x}
	}
	return out
}

func mustNew(t *testing.T, k Kind, c Config) Observer {
	t.Helper()
	o, err := New(k, c)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func observeAll(t *testing.T, o Observer, bs []batch) {
	t.Helper()
	for _, b := range bs {
		if err := o.Observe(b.Data, b.Shape); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMergeMinMaxIsExact(t *testing.T) {
	bs := normalBatches(1, 6, 96, 1)
	for _, k := range []Kind{KindMinMax, KindPerChannelMinMax} {
		c := Config{DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric}
		if k == KindPerChannelMinMax {
			c.Scheme, c.Axis = tensor.PerChannelAffine, 1
		}
		whole, a, b := mustNew(t, k, c), mustNew(t, k, c), mustNew(t, k, c)
		observeAll(t, whole, bs)
		observeAll(t, a, bs[:2])
		observeAll(t, b, bs[2:])
		if err := a.Merge(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a.State(), whole.State()) {
			t.Errorf("%s: merged state %+v, whole %+v", k, a.State(), whole.State())
		}
		s1, z1, _ := a.QParams()
		s2, z2, _ := whole.QParams()
		if !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(z1, z2) {
			t.Errorf("%s: merged qparams differ", k)
		}
	}
}

func TestMergeMovingAverageFollowsOrder(t *testing.T) {
	bs := normalBatches(2, 7, 96, 1)
	for _, k := range []Kind{KindMovingAverageMinMax, KindMovingAveragePerChannelMinMax} {
		c := Config{DType: tensor.Uint8, AveragingConstant: 0.2}
		if k == KindMovingAveragePerChannelMinMax {
			c.Scheme = tensor.PerChannelAffine
		}
		whole, a, b := mustNew(t, k, c), mustNew(t, k, c), mustNew(t, k, c)
		observeAll(t, whole, bs)
		observeAll(t, a, bs[:3])
		observeAll(t, b, bs[3:])
		if err := a.Merge(b); err != nil {
			t.Fatal(err)
		}
		ws, as := whole.State(), a.State()
		if as.Batches != ws.Batches {
			t.Fatalf("%s: batches %d vs %d", k, as.Batches, ws.Batches)
		}
		for i := range ws.Min {
			for _, p := range [][2]F32{{as.Min[i], ws.Min[i]}, {as.Max[i], ws.Max[i]}} {
				if d := math.Abs(float64(p[0]-p[1])) / math.Abs(float64(p[1])); d > 1e-5 {
					t.Errorf("%s ch %d: merged %v, sequential %v", k, i, p[0], p[1])
				}
			}
		}
	}
}

func cdf(h []float32) []float64 {
	out := make([]float64, len(h))
	var s float64
	for i, v := range h {
		s += float64(v)
		out[i] = s
	}
	return out
}

func TestMergeHistogramWithinResolution(t *testing.T) {
	bs := normalBatches(3, 8, 6000, 1)
	c := Config{DType: tensor.Uint8}
	whole, a, b := mustNew(t, KindPercentile, c), mustNew(t, KindPercentile, c), mustNew(t, KindPercentile, c)
	observeAll(t, whole, bs)
	observeAll(t, a, bs[:4])
	observeAll(t, b, bs[4:])
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	ha, hw := a.(*Histogram), whole.(*Histogram)
	if ha.min != hw.min {
		t.Errorf("merged min %v, whole %v", ha.min, hw.min)
	}
	ca, cw := cdf(ha.hist), cdf(hw.hist)
	if math.Abs(ca[len(ca)-1]-cw[len(cw)-1]) > 1e-5*cw[len(cw)-1] {
		t.Fatalf("mass %v vs %v", ca[len(ca)-1], cw[len(cw)-1])
	}
	// Both histograms re-binned the data several times; compare CDFs at the
	// same points: they may differ by the mass of a few bins.
	var maxBin float64
	for _, v := range hw.hist {
		maxBin = max(maxBin, float64(v))
	}
	wa := float64(ha.max-ha.min) / float64(len(ha.hist))
	ww := float64(hw.max-hw.min) / float64(len(hw.hist))
	for k := range cw {
		x := float64(hw.min) + ww*float64(k+1)
		j := int((x - float64(ha.min)) / wa)
		if j < 0 || j >= len(ca) {
			continue
		}
		if d := math.Abs(ca[j] - cw[k]); d > 3*maxBin {
			t.Fatalf("CDF at %v: merged %v, whole %v (max bin %v)", x, ca[j], cw[k], maxBin)
		}
	}
	sa, _, _ := a.QParams()
	sw, _, _ := whole.QParams()
	if math.Abs(float64(sa[0]-sw[0]))/float64(sw[0]) > 0.01 {
		t.Errorf("percentile scale merged %v, whole %v", sa[0], sw[0])
	}
}

func TestJSONRoundTrip(t *testing.T) {
	bs := normalBatches(4, 3, 60, 2)
	cfgs := map[Kind]Config{
		KindMinMax:                        {DType: tensor.Uint8, ReduceRange: true},
		KindMovingAverageMinMax:           {DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric, AveragingConstant: 0.3},
		KindPerChannelMinMax:              {DType: tensor.Int8, Scheme: tensor.PerChannelSymmetric, Axis: -1},
		KindMovingAveragePerChannelMinMax: {DType: tensor.Uint8, Scheme: tensor.PerChannelAffine, Axis: 1, HasRange: true, QuantMin: 0, QuantMax: 15},
		KindHistogram:                     {DType: tensor.Int32, Eps: 1e-4},
		KindPercentile:                    {DType: tensor.Uint8, Percentile: 99.9, Tails: true},
		KindEntropy:                       {DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric, EntropyBins: 64},
		KindRecording:                     {},
		KindNoop:                          {},
		KindPlaceholder:                   {},
	}
	for _, k := range Kinds {
		o := mustNew(t, k, cfgs[k])
		observeAll(t, o, bs[:2])
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		back, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("%s: %v\n%s", k, err, data)
		}
		if back.Config() != o.Config() {
			t.Errorf("%s: config %+v after round trip, was %+v", k, back.Config(), o.Config())
		}
		// Both continue identically.
		observeAll(t, o, bs[2:])
		observeAll(t, back, bs[2:])
		s1, z1, e1 := o.QParams()
		s2, z2, e2 := back.QParams()
		if !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(z1, z2) || (e1 == nil) != (e2 == nil) {
			t.Errorf("%s: qparams %v %v %v after round trip, %v %v %v before", k, s2, z2, e2, s1, z1, e1)
		}
		// UnmarshalJSON into an observer of another kind fails.
		other := mustNew(t, KindMinMax, Config{DType: tensor.Uint8})
		if k != KindMinMax && json.Unmarshal(data, other) == nil {
			t.Errorf("%s state accepted by a minmax observer", k)
		}
	}
}

func TestBadInput(t *testing.T) {
	o := mustNew(t, KindHistogram, Config{DType: tensor.Uint8})
	if err := o.Observe([]float32{1, 2, 3}, []int{2, 2}); err == nil {
		t.Error("length/shape mismatch accepted")
	}
	if err := o.Observe([]float32{1, float32(math.NaN()), 3, 4}, []int{4}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN: %v", err)
	}
	if err := o.Observe([]float32{1, float32(math.Inf(1))}, []int{2}); !errors.Is(err, ErrNonFinite) {
		t.Errorf("Inf: %v", err)
	}
	if s, z, err := o.QParams(); !errors.Is(err, ErrEmpty) || s[0] != 1 || z[0] != 0 {
		t.Errorf("empty observer: %v %v %v", s, z, err)
	}
	if err := o.Observe(nil, []int{0, 3}); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	pc := mustNew(t, KindPerChannelMinMax, Config{DType: tensor.Int8, Scheme: tensor.PerChannelSymmetric, Axis: 3})
	if err := pc.Observe(make([]float32, 6), []int{2, 3}); err == nil {
		t.Error("axis out of range accepted")
	}
	pc = mustNew(t, KindPerChannelMinMax, Config{DType: tensor.Int8, Scheme: tensor.PerChannelSymmetric})
	if err := pc.Observe(make([]float32, 6), []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Observe(make([]float32, 6), []int{3, 2}); err == nil {
		t.Error("channel count change accepted")
	}
	for _, c := range []struct {
		k Kind
		c Config
	}{
		{KindMinMax, Config{DType: tensor.Uint8, Scheme: tensor.PerTensorSymmetric, ReduceRange: true}},
		{KindMinMax, Config{DType: tensor.Uint8, Scheme: tensor.PerChannelAffine}},
		{KindPerChannelMinMax, Config{DType: tensor.Uint8, Scheme: tensor.PerTensorAffine}},
		{KindMinMax, Config{DType: tensor.Float32}},
		{KindMinMax, Config{DType: tensor.Int8, HasRange: true, QuantMin: 1, QuantMax: 5}},
		{KindMovingAverageMinMax, Config{DType: tensor.Uint8, AveragingConstant: 2}},
		{KindHistogram, Config{DType: tensor.Uint8, Bins: -1}},
		{Kind("nope"), Config{DType: tensor.Uint8}},
	} {
		if _, err := New(c.k, c.c); err == nil {
			t.Errorf("%s %+v accepted", c.k, c.c)
		}
	}
	a := mustNew(t, KindMinMax, Config{DType: tensor.Uint8})
	if err := a.Merge(mustNew(t, KindMinMax, Config{DType: tensor.Int8})); err == nil {
		t.Error("merge of different configs accepted")
	}
	if err := a.Merge(mustNew(t, KindHistogram, Config{DType: tensor.Uint8})); err == nil {
		t.Error("merge of different kinds accepted")
	}
	for _, js := range []string{
		`{"kind":"histogram","config":{"dtype":"quint8"},"batches":1,"min":[0],"max":[1],"histogram":[1,2]}`,
		`{"kind":"histogram","config":{"dtype":"quint8"},"batches":-1}`,
		`{"kind":"minmax","config":{"dtype":"quint8"},"batches":2,"min":[3],"max":[1]}`,
		`{"kind":"minmax","config":{"dtype":"quint8"},"batches":2,"min":["nan"],"max":[1]}`,
		`{"kind":"minmax","config":{"dtype":"quint9"}}`,
		`{"kind":"minmax","config":{"dtype":"quint8","quant_min":0}}`,
		`{"kind":"recording","config":{"dtype":"quint8"},"batches":1,"recorded":[{"shape":[2],"data":[1]}]}`,
		`{"kind":"moving_average_minmax","config":{"dtype":"quint8"},"batches":2,"min":[0],"max":[1]}`,
		`[1,2`,
	} {
		if _, err := Unmarshal([]byte(js)); err == nil {
			t.Errorf("bad state accepted: %s", js)
		}
	}
}

func TestPassthroughObservers(t *testing.T) {
	n := mustNew(t, KindNoop, Config{})
	if n.Config().DType != tensor.Float16 {
		t.Errorf("noop dtype %v, want float16", n.Config().DType)
	}
	if err := n.Observe([]float32{1, 2}, []int{2}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.QParams(); !errors.Is(err, ErrNoQParams) {
		t.Errorf("noop qparams: %v", err)
	}
	r := mustNew(t, KindRecording, Config{})
	observeAll(t, r, []batch{{Shape: []int{2}, Data: []float32{1, 2}}, {Shape: []int{1, 1}, Data: []float32{3}}})
	rec := r.(*Recording).Recorded
	if len(rec) != 2 || rec[1].Data[0] != 3 || !reflect.DeepEqual(rec[1].Shape, []int{1, 1}) {
		t.Errorf("recorded %+v", rec)
	}
	if _, _, err := r.QParams(); !errors.Is(err, ErrNoQParams) {
		t.Errorf("recording qparams: %v", err)
	}
}

// heavyBatch is a normal batch with a few far outliers.
func heavyBatch(seed uint64, n int) batch {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	x[3], x[n/2] = 80, -60
	return batch{Shape: []int{n}, Data: x}
}

func TestPercentileAndEntropyClipOutliers(t *testing.T) {
	bs := []batch{heavyBatch(1, 50000), heavyBatch(2, 50000)}
	mm := mustNew(t, KindMinMax, Config{DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric})
	observeAll(t, mm, bs)
	smm, _, _ := mm.QParams()
	for _, tc := range []struct {
		k    Kind
		c    Config
		lo   float64 // expected clipping threshold range for a unit normal
		hi   float64
		zero int32
	}{
		{KindPercentile, Config{DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric, Percentile: 99.9}, 3.0, 3.6, 0},
		{KindPercentile, Config{DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric, Percentile: 99.9, Tails: true}, 2.8, 3.6, 0},
		{KindEntropy, Config{DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric}, 2.0, 6.0, 0},
	} {
		o := mustNew(t, tc.k, tc.c)
		observeAll(t, o, bs)
		s, z, err := o.QParams()
		if err != nil {
			t.Fatal(err)
		}
		thr := float64(s[0]) * 127.5
		if thr < tc.lo || thr > tc.hi || z[0] != tc.zero {
			t.Errorf("%s %+v: threshold %.3f (scale %v zp %d), want %.1f..%.1f; minmax scale %v", tc.k, tc.c, thr, s[0], z[0], tc.lo, tc.hi, smm[0])
		}
	}
	// The 99.9th percentile of |x| for N(0,1) is 3.29; with Tails, 0.05% is
	// cut from each side: the same ±3.29.
	o := mustNew(t, KindPercentile, Config{DType: tensor.Uint8, Percentile: 99.9, Tails: true})
	observeAll(t, o, bs)
	lo, hi := o.(*Histogram).percentileRange()
	if math.Abs(float64(lo)+3.29) > 0.1 || math.Abs(float64(hi)-3.29) > 0.1 {
		t.Errorf("tails: [%v, %v], want about ±3.29", lo, hi)
	}
	o = mustNew(t, KindPercentile, Config{DType: tensor.Uint8, Percentile: 99.9})
	observeAll(t, o, bs)
	lo, hi = o.(*Histogram).percentileRange()
	if math.Abs(float64(hi)-3.29) > 0.1 || lo != -hi {
		t.Errorf("|x|: [%v, %v], want about ±3.29", lo, hi)
	}
}

func TestFakeQuantizeErrors(t *testing.T) {
	pc := mustNew(t, KindPerChannelMinMax, Config{DType: tensor.Int8, Scheme: tensor.PerChannelSymmetric})
	fq, err := NewFakeQuantize(pc)
	if err != nil {
		t.Fatal(err)
	}
	fq.ObserverEnabled = false // scales stay [1]: wrong count for 3 channels
	if _, err := fq.Forward(make([]float32, 6), []int{3, 2}, nil); err == nil {
		t.Error("per-channel fake quant with one scale for 3 channels accepted")
	}
	if _, err := fq.Forward(make([]float32, 5), []int{3, 2}, nil); err == nil {
		t.Error("shape mismatch accepted")
	}
	if err := FakeQuantizePerChannel(make([]float32, 6), []int{3, 2}, 2, []float32{1, 1}, []int32{0, 0}, -128, 127, make([]float32, 6)); err == nil {
		t.Error("bad axis accepted")
	}
	// Empty observer: PyTorch's defaults (scale 1, zero point 0) are used.
	mm := mustNew(t, KindMinMax, Config{DType: tensor.Uint8})
	fq, _ = NewFakeQuantize(mm)
	out, err := fq.Forward(nil, []int{0}, nil)
	if err != nil || len(out) != 0 || fq.Scales[0] != 1 {
		t.Errorf("empty batch: %v %v %v", out, fq.Scales, err)
	}
}

func FuzzObserveNoPanic(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64}, uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, kind uint8) {
		x := make([]float32, len(raw)/4)
		for i := range x {
			x[i] = math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
		}
		k := []Kind{KindMinMax, KindHistogram, KindPercentile, KindEntropy, KindMovingAverageMinMax}[int(kind)%5]
		o, _ := New(k, Config{DType: tensor.Uint8})
		for r := 0; r < 2; r++ {
			_ = o.Observe(x, []int{len(x)})
			_, _, _ = o.QParams()
			x = append(x, float32(r+1)*1000)
		}
	})
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"histogram": KindHistogram, "HistogramObserver": KindHistogram,
		"MovingAveragePerChannelMinMaxObserver": KindMovingAveragePerChannelMinMax, "minmax": KindMinMax,
		"NoopObserver": KindNoop, "entropy": KindEntropy} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseKind("FixedQParamsObserver"); err == nil {
		t.Error("unsupported observer accepted")
	}
}

func TestSmallHistogramSettings(t *testing.T) {
	bs := normalBatches(9, 4, 60, 1)
	bs = append(bs, batch{Shape: []int{3}, Data: []float32{40, -40, 0}})
	for _, k := range []Kind{KindHistogram, KindPercentile, KindEntropy} {
		for _, bins := range []int{1, 2, 3, 17} {
			for _, up := range []int{1, 2, 128} {
				o := mustNew(t, k, Config{DType: tensor.Int8, Scheme: tensor.PerTensorSymmetric, Bins: bins, UpsampleRate: up})
				observeAll(t, o, bs)
				s, _, err := o.QParams()
				if err != nil || !(s[0] > 0) {
					t.Errorf("%s bins %d up %d: scale %v, %v", k, bins, up, s, err)
				}
				var mass float64
				for _, v := range o.(*Histogram).hist {
					mass += float64(v)
				}
				if !(mass > 0) {
					t.Errorf("%s bins %d up %d: empty histogram", k, bins, up)
				}
			}
		}
	}
}
