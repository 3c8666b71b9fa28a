package convert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// Automatic mixed precision: which few layers get 16-bit activations.
// On squeezenet-cifar10 the 8-bit activations of the stem alone cost as
// much top-1 agreement as all the weights; which layers matter that much
// depends on the model, so SelectA16 measures it: each weighted node in
// turn gets 16-bit activations (its inputs and outputs, by the 16-bit
// tensor rule), the model runs on calibration samples, and the nodes whose
// promotion raises the output SQNR most are kept. Both tables come from the
// same samples (one calibrated at 8 bits, one with every activation at 16
// bits), so a candidate only swaps table entries: no recalibration per
// candidate.

// A16Options tunes SelectA16.
type A16Options struct {
	// N is how many nodes to promote (the best N that improve the SQNR).
	N int
	// DType is the 16-bit activation type: quint16 (default) or qint16.
	DType string
	// Rounding is the weight rounding Static will use (may be nil).
	Rounding *WeightRounding
	// Threads for the evaluation runs.
	Threads int
	// Progress, if set, is called after each candidate.
	Progress func(done, total int)
}

// A16Choice is one candidate node and the model's output SQNR (dB) on the
// samples with it promoted.
type A16Choice struct {
	Node, OpType string
	SQNR         float64
}

// A16Result is what SelectA16 found.
type A16Result struct {
	// Config is cfg with a 16-bit activation override per chosen node.
	Config Config
	// Table holds the 16-bit entries for the promoted tensors and the
	// 8-bit ones elsewhere, for Static with Config.
	Table *calibrate.Table
	// Base is the output SQNR with every activation 8-bit; Chosen the
	// promoted nodes in the order they were added, Final the SQNR with all
	// of them, and Ranked every candidate alone, best first.
	Base, Final float64
	Chosen      []A16Choice
	Ranked      []A16Choice
}

// SelectA16 promotes the o.N weighted nodes whose 16-bit activations raise
// the model's output SQNR most on samples. clone returns a fresh copy of
// the fused float graph that the tables were calibrated on (Static changes
// the graph it is given); tab8 is the table for cfg, tab16 the same data
// calibrated with every activation 16-bit (A16CalibrationConfig).
func SelectA16(ctx context.Context, clone func() (*graph.Graph, error), tab8, tab16 *calibrate.Table, cfg Config, samples []map[string]*tensor.Tensor, o A16Options) (*A16Result, error) {
	if o.N <= 0 {
		return nil, errors.New("16-bit selection: N must be at least 1")
	}
	if len(samples) == 0 {
		return nil, errors.New("16-bit selection needs samples")
	}
	if o.DType == "" {
		o.DType = "quint16"
	}
	if a := (ActivationSpec{DType: o.DType}); !a.Is16() {
		return nil, fmt.Errorf("16-bit selection: %q is not a 16-bit activation type", o.DType)
	}
	f, err := clone()
	if err != nil {
		return nil, err
	}
	ref, err := runOutputs(f, samples, o.Threads)
	if err != nil {
		return nil, fmt.Errorf("16-bit selection, float model: %v", err)
	}
	eval := func(c Config) (float64, *calibrate.Table, error) {
		g, err := clone()
		if err != nil {
			return 0, nil, err
		}
		tab, err := mergeA16Tables(tab8, tab16, wideActivations(c, g))
		if err != nil {
			return 0, nil, err
		}
		if _, err := Static(g, tab, c, StaticOptions{Format: FormatQDQ, Rounding: o.Rounding}); err != nil {
			return 0, nil, err
		}
		out, err := runOutputs(g, samples, o.Threads)
		if err != nil {
			return 0, nil, err
		}
		return sqnr(ref, out), tab, nil
	}
	res := &A16Result{}
	if res.Base, _, err = eval(cfg); err != nil {
		return nil, fmt.Errorf("16-bit selection, 8-bit model: %v", err)
	}
	var cands []*graph.Node
	for _, n := range f.Nodes {
		switch n.OpType {
		case "Conv", "Gemm", "MatMul", "ConvTranspose":
		default:
			continue
		}
		// Overrides match names as globs (* and ?): a name holding them
		// cannot be singled out.
		if s := cfg.Resolve(n); graph.IsDefaultDomain(n.Domain) && !s.Excluded && !s.Activation.Is16() && n.Name != "" && !strings.ContainsAny(n.Name, "*?") {
			cands = append(cands, n)
		}
	}
	for i, n := range cands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q, _, err := eval(withA16(cfg, []string{n.Name}, o.DType))
		if err != nil {
			return nil, fmt.Errorf("16-bit selection, %s: %v", n.Name, err)
		}
		res.Ranked = append(res.Ranked, A16Choice{Node: n.Name, OpType: n.OpType, SQNR: q})
		if o.Progress != nil {
			o.Progress(i+1, len(cands))
		}
	}
	sort.SliceStable(res.Ranked, func(a, b int) bool { return res.Ranked[a].SQNR > res.Ranked[b].SQNR })
	// Greedy, in ranked order: a node joins only if the model with it and
	// the ones already chosen scores better than without it (promotions
	// interact: two that help alone can hurt together). At most 2N+2
	// combinations are tried.
	res.Final, res.Config = res.Base, cfg
	if res.Table, err = mergeA16Tables(tab8, tab16, nil); err != nil {
		return nil, err
	}
	var names []string
	for i, c := range res.Ranked {
		if len(res.Chosen) == o.N || i >= 2*o.N+2 || !(c.SQNR > res.Base) {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		try := withA16(cfg, append(append([]string(nil), names...), c.Node), o.DType)
		q, tab, err := eval(try)
		if err != nil {
			return nil, fmt.Errorf("16-bit selection, %v: %v", append(names, c.Node), err)
		}
		if q > res.Final {
			names = append(names, c.Node)
			res.Chosen = append(res.Chosen, c)
			res.Final, res.Config, res.Table = q, try, tab
		}
	}
	return res, nil
}

// A16CalibrationConfig is cfg with every activation in the 16-bit type
// (quint16 when cfg's are unsigned, else qint16): what the 16-bit table of
// SelectA16 is calibrated with.
func A16CalibrationConfig(cfg Config) Config {
	dt := "quint16"
	if cfg.Activation.ActDType() == tensor.Int8 {
		dt = "qint16"
	}
	f := false
	c := cfg
	c.Activation.DType, c.Activation.ReduceRange = dt, &f
	c.OpTypes = append([]Override(nil), cfg.OpTypes...)
	c.Nodes = append([]Override(nil), cfg.Nodes...)
	for i := range c.OpTypes {
		c.OpTypes[i].Activation.DType, c.OpTypes[i].Activation.ReduceRange = "", nil
	}
	for i := range c.Nodes {
		c.Nodes[i].Activation.DType, c.Nodes[i].Activation.ReduceRange = "", nil
	}
	return c
}

// withA16 adds a 16-bit activation override for each named node.
func withA16(cfg Config, names []string, dt string) Config {
	c := cfg
	c.Nodes = append([]Override(nil), cfg.Nodes...)
	for _, n := range names {
		c.Nodes = append(c.Nodes, Override{Name: n, Activation: ActivationSpec{DType: dt}})
	}
	return c
}

// mergeA16Tables takes the 16-bit tensors' entries from tab16 and every
// other entry from tab8.
func mergeA16Tables(tab8, tab16 *calibrate.Table, wide map[*graph.Value]ActivationSpec) (*calibrate.Table, error) {
	names := map[string]bool{}
	for v := range wide {
		names[v.Name] = true
	}
	out := *tab8
	out.Tensors = make([]*calibrate.Entry, 0, len(tab8.Tensors))
	for _, e := range tab8.Tensors {
		if names[e.Name] {
			w := tab16.Lookup(e.Name)
			if w == nil {
				return nil, fmt.Errorf("the 16-bit table has no entry for %q", e.Name)
			}
			e = w
		}
		out.Tensors = append(out.Tensors, e)
	}
	return &out, nil
}

// runOutputs runs g on each sample and returns every float output,
// concatenated in output order.
func runOutputs(g *graph.Graph, samples []map[string]*tensor.Tensor, threads int) ([]float32, error) {
	s, err := runtime.NewSession(g, runtime.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	var out []float32
	for _, in := range samples {
		res, err := s.Run(in)
		if err != nil {
			return nil, err
		}
		for _, name := range s.OutputNames() {
			if t := res[name]; t != nil && t.DType == tensor.Float32 {
				out = append(out, t.F32()...)
			}
		}
	}
	return out, nil
}

// sqnr is 10·log10(Σref² / Σ(ref−q)²) in dB (+Inf when equal).
func sqnr(ref, q []float32) float64 {
	if len(ref) != len(q) {
		return math.Inf(-1)
	}
	var s, n float64
	for i := range ref {
		d := float64(ref[i]) - float64(q[i])
		s += float64(ref[i]) * float64(ref[i])
		n += d * d
	}
	if n == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s/n)
}
