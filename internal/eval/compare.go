package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// Pair links a quantized activation of the QDQ model to the float model's
// tensor it stands for.
type Pair struct {
	// Float is the float model's tensor.
	Float string
	// Quant is the QDQ model's DequantizeLinear output carrying it.
	Quant string
	// OpType is the float op that produces it ("input" for a graph input).
	OpType    string
	Scale     float32
	ZeroPoint int32
	DType     tensor.DType
}

// QRange is the float interval a quantized tensor can represent.
func (p Pair) QRange() (lo, hi float64) {
	qmin, qmax := 0.0, 255.0
	if p.DType == tensor.Int8 {
		qmin, qmax = -128, 127
	}
	return (qmin - float64(p.ZeroPoint)) * float64(p.Scale), (qmax - float64(p.ZeroPoint)) * float64(p.Scale)
}

// Pairs finds the quantized activations of q (QuantizeLinear followed by
// DequantizeLinear with per-tensor constant qparams) that have a float
// counterpart in f. convert gives the DequantizeLinear output the float
// tensor's name; a quantized graph input keeps its name on the
// QuantizeLinear input instead. The result is in q's node order.
func Pairs(f, q *graph.Graph) []Pair {
	fvals := map[string]*graph.Value{}
	fprod := map[string]string{}
	for _, v := range f.Inputs {
		if v.Const == nil {
			fvals[v.Name] = v
			fprod[v.Name] = "input"
		}
	}
	for _, n := range f.Nodes {
		for _, o := range n.Outputs {
			if o != nil {
				fvals[o.Name] = o
				fprod[o.Name] = n.OpType
			}
		}
	}
	qix := q.Index()
	var out []Pair
	seen := map[string]bool{}
	for _, dn := range q.Nodes {
		if dn.OpType != "DequantizeLinear" || !graph.IsDefaultDomain(dn.Domain) || len(dn.Outputs) == 0 || dn.Outputs[0] == nil {
			continue
		}
		qn := qix.Producer[dn.Input(0)]
		if qn == nil || qn.OpType != "QuantizeLinear" {
			continue // weights and biases: a constant dequantized
		}
		scale, zp, dt, ok := qparams(qn)
		if !ok {
			continue
		}
		name := dn.Outputs[0].Name
		if _, ok := fvals[name]; !ok {
			in := qn.Input(0)
			if in == nil || fprod[in.Name] != "input" {
				continue
			}
			name = in.Name
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, Pair{Float: name, Quant: dn.Outputs[0].Name, OpType: fprod[name], Scale: scale, ZeroPoint: zp, DType: dt})
	}
	return out
}

// qparams reads a QuantizeLinear's per-tensor scale and zero point.
func qparams(n *graph.Node) (float32, int32, tensor.DType, bool) {
	s := n.Input(1)
	if s == nil || s.Const == nil || s.Const.DType != tensor.Float32 || s.Const.Len() != 1 {
		return 0, 0, 0, false
	}
	z := n.Input(2)
	if z == nil || z.Const == nil {
		return s.Const.F32()[0], 0, tensor.Uint8, true
	}
	if z.Const.Len() != 1 {
		return 0, 0, 0, false
	}
	switch z.Const.DType {
	case tensor.Uint8:
		return s.Const.F32()[0], int32(z.Const.U8()[0]), tensor.Uint8, true
	case tensor.Int8:
		return s.Const.F32()[0], int32(z.Const.I8()[0]), tensor.Int8, true
	}
	return 0, 0, 0, false
}

// Options controls Compare.
type Options struct {
	Threads int
	// PerLayer compares every paired activation (slower: each produced
	// tensor is observed and float ones are copied).
	PerLayer bool
	// Labels, when not nil, are the class of each dataset sample (indexed
	// by dataset position); otherwise the dataset's own labels (class
	// subfolders) are used where it has them.
	Labels []int64
	// Progress, when set, is told the samples done after each batch.
	Progress func(done, total int)
	// Deployed, when set, is the quantized model as it is executed (the
	// QDQ graph rewritten for the integer kernels, as 'qtool run' does):
	// accuracy, agreement and output error are measured on it. The
	// per-layer comparison needs the DequantizeLinear outputs, which the
	// rewrite fuses away, so it runs the QDQ graph as written in a second
	// session (as ONNX Runtime's qdq_loss_debug does); the two differ by
	// the integer kernels' rounding (at most 1 LSB per fused node).
	Deployed *graph.Graph
}

// InputError is a problem with the user's data or models (exit 2 for the
// command), as opposed to a failure of the run.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// layerState accumulates one pair over the run.
type layerState struct {
	pair  Pair
	acc   Accum
	hist  *fineHist
	skips int64 // batches whose shapes did not match
}

// Compare runs the float and the quantized graphs on every batch of ds and
// accumulates the comparison.
func Compare(ctx context.Context, fg, qg *graph.Graph, ds *calibrate.Dataset, o Options) (*Report, error) {
	var (
		mu     sync.Mutex
		layers []*layerState
		byF    = map[string]*layerState{}
		byQ    = map[string]*layerState{}
		saved  = map[string]*tensor.Tensor{}
		fopts  = runtime.Options{Threads: o.Threads}
		qopts  = runtime.Options{Threads: o.Threads}
		report = &Report{}
	)
	if o.PerLayer {
		for _, p := range Pairs(fg, qg) {
			ls := &layerState{pair: p, hist: newFineHist(p.QRange())}
			layers = append(layers, ls)
			byF[p.Float] = ls
			byQ[p.Quant] = ls
		}
		fopts.Observe = func(v *graph.Value, t *tensor.Tensor) {
			if byF[v.Name] == nil || t.DType != tensor.Float32 {
				return
			}
			c := &tensor.Tensor{DType: t.DType, Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.F32()...)}
			mu.Lock()
			saved[v.Name] = c
			mu.Unlock()
		}
		qopts.Observe = func(v *graph.Value, t *tensor.Tensor) {
			ls := byQ[v.Name]
			if ls == nil || t.DType != tensor.Float32 {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ref := saved[ls.pair.Float]
			if ref == nil || !sameShape(ref.Shape, t.Shape) {
				ls.skips++
				return
			}
			ls.acc.Add(ref.F32(), t.F32())
			ls.hist.add(ref.F32())
		}
	}
	// The scored sessions run without the observer, so that their times
	// are comparable; the observing ones only feed the per-layer sums.
	fs, err := runtime.NewSession(fg, runtime.Options{Threads: o.Threads})
	if err != nil {
		return nil, &InputError{fmt.Errorf("float model: %v", err)}
	}
	var fobs *runtime.Session
	if o.PerLayer {
		if fobs, err = runtime.NewSession(fg, fopts); err != nil {
			return nil, &InputError{fmt.Errorf("float model: %v", err)}
		}
	}
	// qs is scored; ls, when not nil, only feeds the per-layer observer.
	scored := qg
	if o.Deployed != nil {
		scored = o.Deployed
	}
	qs, err := runtime.NewSession(scored, runtime.Options{Threads: o.Threads})
	if err != nil {
		return nil, &InputError{fmt.Errorf("quantized model: %v", err)}
	}
	var ls *runtime.Session
	if o.PerLayer {
		if ls, err = runtime.NewSession(qg, qopts); err != nil {
			return nil, &InputError{fmt.Errorf("quantized model: %v", err)}
		}
	}
	if !sameSet(fs.InputNames(), qs.InputNames()) {
		return nil, &InputError{fmt.Errorf("the models' inputs differ: float %v, quantized %v", fs.InputNames(), qs.InputNames())}
	}
	fouts, qouts := fs.OutputNames(), qs.OutputNames()
	if len(fouts) != len(qouts) {
		return nil, &InputError{fmt.Errorf("the float model has %d outputs, the quantized one %d", len(fouts), len(qouts))}
	}
	outAcc := make([]Accum, len(fouts))
	var (
		samples, labeled                int
		ftop1, ftop5, qtop1, qtop5, agr int
		classes                         int
		ftime, qtime                    time.Duration
	)
	it := ds.Iter()
	for {
		b, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			return nil, &InputError{err}
		}
		for k := range saved {
			delete(saved, k)
		}
		t0 := time.Now()
		fr, err := fs.Run(b.Inputs)
		if err != nil {
			return nil, fmt.Errorf("float model, samples %v: %v", b.Samples, err)
		}
		t1 := time.Now()
		qr, err := qs.Run(b.Inputs)
		if err != nil {
			return nil, fmt.Errorf("quantized model, samples %v: %v", b.Samples, err)
		}
		ftime += t1.Sub(t0)
		qtime += time.Since(t1)
		if fobs != nil {
			if _, err := fobs.Run(b.Inputs); err != nil {
				return nil, fmt.Errorf("float model, samples %v: %v", b.Samples, err)
			}
		}
		if ls != nil {
			if _, err := ls.Run(b.Inputs); err != nil {
				return nil, fmt.Errorf("quantized model (QDQ as written), samples %v: %v", b.Samples, err)
			}
		}
		var fl, ql [][]float32
		for i := range fouts {
			ft, qt := fr[fouts[i]], qr[qouts[i]]
			if ft == nil || qt == nil {
				continue
			}
			fv, err1 := asF32(ft)
			qv, err2 := asF32(qt)
			if err1 != nil || err2 != nil || len(fv) != len(qv) {
				return nil, &InputError{fmt.Errorf("output %d (%q): float %v %v and quantized %v %v cannot be compared", i, fouts[i], ft.DType, ft.Shape, qt.DType, qt.Shape)}
			}
			outAcc[i].Add(fv, qv)
			if i == 0 {
				n := len(b.Samples)
				if n == 0 || len(fv)%n != 0 {
					return nil, &InputError{fmt.Errorf("output %q has %d values for %d samples", fouts[0], len(fv), n)}
				}
				per := len(fv) / n
				classes = per
				for s := 0; s < n; s++ {
					fl = append(fl, fv[s*per:(s+1)*per])
					ql = append(ql, qv[s*per:(s+1)*per])
				}
			}
		}
		for s, idx := range b.Samples {
			samples++
			f5, q5 := TopK(fl[s], 5), TopK(ql[s], 5)
			if len(f5) > 0 && len(q5) > 0 && f5[0] == q5[0] {
				agr++
			}
			label := -1
			if o.Labels != nil {
				if idx < 0 || idx >= len(o.Labels) {
					return nil, &InputError{fmt.Errorf("no label for sample %d (%d labels)", idx, len(o.Labels))}
				}
				label = int(o.Labels[idx])
			} else if s < len(b.Labels) {
				label = b.Labels[s]
			}
			if label < 0 {
				continue
			}
			if label >= classes {
				return nil, &InputError{fmt.Errorf("sample %d: label %d, but the model's output has %d classes", idx, label, classes)}
			}
			labeled++
			ftop1 += hit(f5, label, 1)
			ftop5 += hit(f5, label, 5)
			qtop1 += hit(q5, label, 1)
			qtop5 += hit(q5, label, 5)
		}
		if o.Progress != nil {
			o.Progress(it.Done(), ds.Len())
		}
	}
	if samples == 0 {
		return nil, &InputError{errors.New("no samples to evaluate")}
	}
	sm := &report.Summary
	sm.Samples, sm.Labeled, sm.Classes = samples, labeled, classes
	sm.Agreement = float64(agr) / float64(samples)
	sm.FloatMsPerSample = ftime.Seconds() * 1000 / float64(samples)
	sm.QuantMsPerSample = qtime.Seconds() * 1000 / float64(samples)
	if labeled > 0 {
		d := float64(labeled)
		sm.Float = &Accuracy{Top1: float64(ftop1) / d, Top5: float64(ftop5) / d}
		sm.Quant = &Accuracy{Top1: float64(qtop1) / d, Top5: float64(qtop5) / d}
	}
	for i := range fouts {
		a := &outAcc[i]
		report.Outputs = append(report.Outputs, Output{Name: fouts[i], SQNR: Float(a.SQNR()), Cosine: Float(a.Cosine()), MaxAbs: Float(a.MaxAbs)})
	}
	if o.PerLayer {
		report.PerLayer = true
		for _, ls := range layers {
			if ls.acc.N == 0 {
				report.Unobserved = append(report.Unobserved, ls.pair.Float)
				continue
			}
			lo, hi := ls.pair.QRange()
			l := Layer{
				Name: ls.pair.Float, OpType: ls.pair.OpType,
				SQNR: Float(ls.acc.SQNR()), Cosine: Float(ls.acc.Cosine()), MaxAbs: Float(ls.acc.MaxAbs),
				Elements: ls.acc.N, NonFinite: ls.acc.NonFinite,
				Scale: ls.pair.Scale, ZeroPoint: ls.pair.ZeroPoint, DType: ls.pair.DType.String(),
				QMin: lo, QMax: hi, Min: ls.hist.min, Max: ls.hist.max,
				Clipped: ls.hist.clipped,
				hist:    ls.hist,
			}
			report.Layers = append(report.Layers, l)
		}
		sortWorstFirst(report.Layers)
	}
	return report, nil
}

func hit(top []int, label, k int) int {
	for i := 0; i < k && i < len(top); i++ {
		if top[i] == label {
			return 1
		}
	}
	return 0
}

// sortWorstFirst orders layers by SQNR, lowest first (NaN last, ties by
// name so the order is stable across runs).
func sortWorstFirst(ls []Layer) {
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := float64(ls[i].SQNR), float64(ls[j].SQNR)
		if math.IsNaN(a) != math.IsNaN(b) {
			return !math.IsNaN(a)
		}
		if a != b {
			return a < b
		}
		return ls[i].Name < ls[j].Name
	})
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}

func asF32(t *tensor.Tensor) ([]float32, error) {
	if t.DType == tensor.Float32 {
		return t.F32(), nil
	}
	v, err := t.AsFloat64()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out, nil
}
