package bench

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"sort"
	"strings"

	"github.com/klauspost/cpuid/v2"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/qdq"
	"github.com/qtool/qtool/internal/tensor"
)

// Model is one model to time.
type Model struct {
	Path  string
	Graph *graph.Graph
	// Given holds inputs read from files (by input name); the others are
	// synthesized (SynthInput). Sources names each given input's file.
	Given   map[string]*tensor.Tensor
	Sources map[string]string
}

// Config is what Run needs besides the models.
type Config struct {
	Threads int
	// Batch is the size of a symbolic first dim of synthesized inputs and
	// the samples per run for throughput.
	Batch int
	// Dims and Values shape and fill synthesized inputs (see Synth).
	Dims   map[string]int
	Values map[string]float64
	// Profile collects per-op times during the timed runs.
	Profile  bool
	TopNodes int // nodes listed in the profile (default 10)
	Timing   Options
}

// InputError is a problem with the models or inputs the user gave (bad
// usage, exit 2), as opposed to a failure while running them.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// IsInputError reports whether err is (or wraps) an InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

func inputErr(format string, a ...any) error { return &InputError{fmt.Errorf(format, a...)} }

// Run plans every model, prepares its inputs, runs each once to check it,
// then times them together (interleaved, see Measure) and reports.
func Run(models []Model, c Config) (*Report, error) {
	if len(models) == 0 {
		return nil, inputErr("no model to bench")
	}
	if c.Batch < 1 {
		return nil, inputErr("--batch must be at least 1, got %d", c.Batch)
	}
	if c.Threads < 1 {
		c.Threads = 1
	}
	if c.TopNodes <= 0 {
		c.TopNodes = 10
	}
	if c.Timing.Runs < 0 || c.Timing.Warmup < 0 {
		return nil, inputErr("--runs and --warmup must not be negative")
	}
	rep := &Report{Threads: c.Threads, Batch: c.Batch, Warmup: c.Timing.Warmup, Runs: c.Timing.Runs, Host: host()}
	if c.Timing.Runs == 0 {
		o := c.Timing.withDefaults()
		rep.Tolerance = o.Tolerance
	}
	type prepared struct {
		sess  *runtime.Session
		feeds map[string]*tensor.Tensor
		prof  *Profiler
	}
	preps := make([]prepared, len(models))
	fns := make([]func() error, len(models))
	for i, m := range models {
		if m.Graph == nil {
			return nil, inputErr("%s: no graph", m.Path)
		}
		// Time QDQ models on the integer kernels, as `qtool run` executes them.
		if _, err := qdq.Rewrite(m.Graph); err != nil {
			return nil, inputErr("%s: %v", m.Path, err)
		}
		// Sorted, so that with several bad inputs the same one is reported
		// every time.
		names := make([]string, 0, len(m.Given))
		for name := range m.Given {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if err := checkGiven(m.Graph, name, m.Given[name]); err != nil {
				// The file is what the user has to fix; the model says
				// what it wants.
				if f, ok := m.Sources[name]; ok {
					return nil, inputErr("%s: %v (model %s)", f, err, m.Path)
				}
				return nil, inputErr("%s: %v", m.Path, err)
			}
		}
		feeds, err := Inputs(m.Graph, m.Given, Synth{Batch: c.Batch, Dims: c.Dims, Values: c.Values})
		if err != nil {
			return nil, inputErr("%s: %v", m.Path, err)
		}
		opts := runtime.Options{Threads: c.Threads}
		var prof *Profiler
		if c.Profile {
			prof = NewProfiler(m.Graph)
			opts.NodeTime = prof.Record
		}
		sess, err := runtime.NewSession(m.Graph, opts)
		if err != nil {
			return nil, inputErr("%s: %v", m.Path, err)
		}
		preps[i] = prepared{sess, feeds, prof}
		mr := ModelResult{Path: m.Path, Nodes: len(m.Graph.Nodes), Samples: c.Batch}
		for _, v := range m.Graph.Inputs {
			t := feeds[v.Name]
			src := "synthetic"
			if f, ok := m.Sources[v.Name]; ok {
				src = f
			} else if _, ok := m.Given[v.Name]; ok {
				src = "given"
			}
			mr.Inputs = append(mr.Inputs, InputInfo{Name: v.Name, DType: t.DType.String(), Shape: t.Shape, Source: src})
		}
		// A given first input decides how many samples a run holds.
		if len(m.Graph.Inputs) > 0 {
			if _, ok := m.Given[m.Graph.Inputs[0].Name]; ok {
				if t := feeds[m.Graph.Inputs[0].Name]; len(t.Shape) > 0 {
					mr.Samples = t.Shape[0]
				}
			}
		}
		rep.Models = append(rep.Models, mr)
		p := preps[i]
		fns[i] = func() error {
			_, err := p.sess.Run(p.feeds)
			if p.prof != nil {
				p.prof.EndRun()
			}
			return err
		}
	}
	// One checked run each, so that a model that cannot run fails before
	// any timing and names itself.
	for i, f := range fns {
		if err := f(); err != nil {
			if g := guessedDims(models[i].Graph, models[i].Given, Synth{Batch: c.Batch, Dims: c.Dims}); len(g) > 0 {
				return nil, fmt.Errorf("%s: %v (inputs were synthesized with %s: size symbolic dims with --dim NAME=N or give --input)",
					models[i].Path, err, strings.Join(g, ", "))
			}
			return nil, fmt.Errorf("%s: %v", models[i].Path, err)
		}
	}
	t := c.Timing
	userAfter := t.AfterWarmup
	t.AfterWarmup = func() {
		for _, p := range preps {
			if p.prof != nil {
				p.prof.Start()
			}
		}
		if userAfter != nil {
			userAfter()
		}
	}
	res, err := Measure(fns, t)
	if err != nil {
		return nil, err
	}
	rep.Stable = res.Stable
	rep.ElapsedS = res.Elapsed.Seconds()
	for i := range rep.Models {
		mr := &rep.Models[i]
		ms := Millis(res.Samples[i])
		mr.Runs = len(ms)
		mr.LatencyMs = Summarize(ms)
		if mr.LatencyMs.P50 > 0 {
			mr.Throughput = float64(mr.Samples) / (mr.LatencyMs.P50 / 1000)
		}
		mr.PeakActivationBytes = preps[i].sess.PeakBytes()
		if preps[i].prof != nil {
			mr.Profile = preps[i].prof.Report(c.TopNodes)
		}
	}
	if len(rep.Models) == 2 {
		rep.Comparison = Compare(rep.Models[0], rep.Models[1])
	}
	if mem, err := ReadMemory(); err == nil {
		rep.Memory = &mem
	}
	return rep, nil
}

// checkGiven rejects a file input whose dtype, rank or fixed dims differ
// from the model's declaration, before anything runs.
func checkGiven(g *graph.Graph, name string, t *tensor.Tensor) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("input %q: %v", name, err)
	}
	for _, v := range g.Inputs {
		if v.Name != name {
			continue
		}
		if v.DType != tensor.Undefined && t.DType != v.DType {
			return fmt.Errorf("input %q: dtype %v, the model declares %v", name, t.DType, v.DType)
		}
		if v.Shape == nil {
			return nil
		}
		if len(t.Shape) != len(v.Shape) {
			return fmt.Errorf("input %q: shape %v, the model declares %v", name, t.Shape, v.Shape)
		}
		for i, d := range v.Shape {
			if d.Known() && int64(t.Shape[i]) != d.Value {
				return fmt.Errorf("input %q: shape %v, the model declares %v", name, t.Shape, v.Shape)
			}
		}
		return nil
	}
	if contains(g.InitializerInputs, name) {
		return nil
	}
	names := make([]string, len(g.Inputs))
	for i, v := range g.Inputs {
		names[i] = v.Name
	}
	return fmt.Errorf("the model has no input %q (inputs: %v)", name, names)
}

// guessedDims lists the symbolic dims of synthesized inputs that no --dim
// sized, with the size used, which is the likeliest reason such a model
// fails.
func guessedDims(g *graph.Graph, given map[string]*tensor.Tensor, s Synth) []string {
	dims := resolveDims(g, s)
	var out []string
	for _, v := range g.Inputs {
		if _, ok := given[v.Name]; ok {
			continue
		}
		for i, d := range v.Shape {
			if d.Known() {
				continue
			}
			if _, ok := s.Dims[d.Param]; ok && d.Param != "" {
				continue
			}
			n := 1
			if m, ok := dims[d.Param]; ok && d.Param != "" {
				n = m
			} else if i == 0 {
				n = s.Batch
			}
			out = append(out, fmt.Sprintf("%s dim %d (%s) = %d", v.Name, i, d, n))
		}
	}
	return out
}

func host() Host {
	return Host{GoVersion: goruntime.Version(), OS: goruntime.GOOS, Arch: goruntime.GOARCH,
		CPUs: goruntime.NumCPU(), CPU: cpuid.CPU.BrandName}
}
