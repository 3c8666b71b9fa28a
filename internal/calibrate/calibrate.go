// Package calibrate runs a float model over representative data with
// observers on the tensors a quantizer needs, and reads and writes the
// resulting calibration table.
//
//   - dataset.go, sources.go, images.go: data sets (.npy/.npz with the
//     sample on the first axis, folders of .npy files, image folders and
//     .tar archives with a preprocessing recipe), read a batch at a time.
//   - calibrate.go: which tensors get which observer (Config), and Run.
//   - table.go: the calibration table (JSON), its validation, and Merge.
//
// Calibration is deterministic: the same model, data, config and options
// give a byte-identical table whatever the thread count, because the
// runtime's kernels do not depend on it and observers see the batches in
// data order.
package calibrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/observe"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// ObserverSpec chooses an observer and its settings. Zero fields keep the
// value they override (the role's default, then PyTorch's).
type ObserverSpec struct {
	// Observer is an observe.Kind ("histogram", "minmax", "per_channel_minmax",
	// "moving_average_minmax", "percentile", "entropy", "noop", ...) or
	// "none" to leave the tensor unobserved. The short names
	// "moving_average" and "per_channel" are accepted.
	Observer          string  `json:"observer,omitempty"`
	DType             string  `json:"dtype,omitempty"`   // quint8/uint8, qint8/int8, quint16/uint16, qint16/int16, qint32/int32, float16
	QScheme           string  `json:"qscheme,omitempty"` // per_tensor_affine, per_tensor_symmetric, per_channel_*
	ReduceRange       *bool   `json:"reduce_range,omitempty"`
	QuantMin          *int32  `json:"quant_min,omitempty"`
	QuantMax          *int32  `json:"quant_max,omitempty"`
	Eps               float32 `json:"eps,omitempty"`
	AveragingConstant float64 `json:"averaging_constant,omitempty"`
	Axis              *int    `json:"axis,omitempty"`
	Bins              int     `json:"bins,omitempty"`
	UpsampleRate      int     `json:"upsample_rate,omitempty"`
	Percentile        float64 `json:"percentile,omitempty"`
	Tails             *bool   `json:"tails,omitempty"`
	EntropyBins       int     `json:"entropy_bins,omitempty"`
}

// Override applies an ObserverSpec to the tensors it matches: by tensor
// name, or by op type (the producing node of an activation, the consuming
// node of a weight or constant).
type Override struct {
	Name   string `json:"name,omitempty"`
	OpType string `json:"op_type,omitempty"`
	ObserverSpec
}

// Config is the calibration section of the configuration.
type Config struct {
	// Activation and Weight are the defaults for the two roles (histogram
	// quint8 per-tensor affine; per-channel symmetric MinMax qint8).
	Activation ObserverSpec `json:"activation"`
	Weight     ObserverSpec `json:"weight"`
	// OpTypes apply in order, then Tensors (a later match wins).
	OpTypes []Override `json:"op_types,omitempty"`
	Tensors []Override `json:"tensors,omitempty"`
	// SkipNonFinite skips and counts samples with NaN or Inf instead of
	// failing.
	SkipNonFinite bool `json:"skip_nonfinite,omitempty"`
	// Inputs maps model inputs to data, for models with several inputs.
	Inputs []DataSpec `json:"inputs,omitempty"`
	// Preprocess is the image recipe.
	Preprocess *Preprocess `json:"preprocess,omitempty"`
}

// DecodeConfig reads a Config from a generic value (the YAML section as the
// config loader gives it), refusing unknown keys so that typos are errors.
func DecodeConfig(raw any) (Config, error) {
	var c Config
	if raw == nil {
		return c, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return c, fmt.Errorf("calibration config: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("calibration config: %v", err)
	}
	if c.Preprocess != nil {
		if err := c.Preprocess.validate(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Roles of a calibrated tensor.
const (
	RoleActivation = "activation" // a graph input or a node output
	RoleWeight     = "weight"     // the weight of Conv, ConvTranspose, Gemm, MatMul, RNNs, Gather
	RoleConstant   = "constant"   // another float initializer an op the quantizer handles reads
)

var (
	defaultActivation = ObserverSpec{Observer: string(observe.KindHistogram), DType: "quint8", QScheme: "per_tensor_affine"}
	defaultWeight     = ObserverSpec{Observer: string(observe.KindPerChannelMinMax), DType: "qint8", QScheme: "per_channel_symmetric"}
)

// merge returns s with o's set fields.
func (s ObserverSpec) merge(o ObserverSpec) ObserverSpec {
	if o.Observer != "" {
		s.Observer = o.Observer
	}
	if o.DType != "" {
		s.DType = o.DType
	}
	if o.QScheme != "" {
		s.QScheme = o.QScheme
	}
	if o.ReduceRange != nil {
		s.ReduceRange = o.ReduceRange
	}
	if o.QuantMin != nil {
		s.QuantMin = o.QuantMin
	}
	if o.QuantMax != nil {
		s.QuantMax = o.QuantMax
	}
	if o.Eps != 0 {
		s.Eps = o.Eps
	}
	if o.AveragingConstant != 0 {
		s.AveragingConstant = o.AveragingConstant
	}
	if o.Axis != nil {
		s.Axis = o.Axis
	}
	if o.Bins != 0 {
		s.Bins = o.Bins
	}
	if o.UpsampleRate != 0 {
		s.UpsampleRate = o.UpsampleRate
	}
	if o.Percentile != 0 {
		s.Percentile = o.Percentile
	}
	if o.Tails != nil {
		s.Tails = o.Tails
	}
	if o.EntropyBins != 0 {
		s.EntropyBins = o.EntropyBins
	}
	return s
}

// ParseKind accepts observe's kind names and a few short forms.
func ParseKind(s string) (observe.Kind, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	switch k {
	case "moving_average", "movingaverage", "moving_average_min_max":
		k = string(observe.KindMovingAverageMinMax)
	case "per_channel", "perchannel", "per_channel_min_max":
		k = string(observe.KindPerChannelMinMax)
	case "min_max":
		k = string(observe.KindMinMax)
	case "kl", "kl_divergence":
		k = string(observe.KindEntropy)
	}
	for _, kk := range observe.Kinds {
		if string(kk) == k {
			return kk, nil
		}
	}
	var names []string
	for _, kk := range observe.Kinds {
		names = append(names, string(kk))
	}
	return "", fmt.Errorf("unknown observer %q (want one of %s, or none)", s, strings.Join(names, ", "))
}

func histogramKind(k observe.Kind) bool {
	return k == observe.KindHistogram || k == observe.KindPercentile || k == observe.KindEntropy
}

// contradiction refuses a spec that names both a per-tensor observer and a
// per-channel scheme, or the reverse, in the same place. Build reconciles
// the two when one of them is inherited (an override's minmax over the
// weights' per-channel default), but written side by side they are a
// mistake, and silently dropping one would hide it.
func (s ObserverSpec) contradiction() error {
	if s.Observer == "" || s.QScheme == "" || strings.EqualFold(s.Observer, "none") {
		return nil
	}
	k, err := ParseKind(s.Observer)
	if err != nil {
		return nil // build reports it
	}
	sc, err := observe.ParseQScheme(s.QScheme)
	if err != nil {
		return nil
	}
	if perChannelKind(k) != sc.PerChannel() {
		return fmt.Errorf("observer %s contradicts qscheme %s (per-channel observers take per_channel_* schemes, the others per_tensor_*)", s.Observer, s.QScheme)
	}
	return nil
}

func perChannelKind(k observe.Kind) bool {
	return k == observe.KindPerChannelMinMax || k == observe.KindMovingAveragePerChannelMinMax
}

// build turns a resolved spec into an observer config. defAxis is the
// channel axis the role implies, used when the spec names none.
func (s ObserverSpec) build(defAxis int) (observe.Kind, observe.Config, error) {
	var c observe.Config
	k, err := ParseKind(s.Observer)
	if err != nil {
		return "", c, err
	}
	if s.DType != "" {
		if c.DType, err = observe.ParseDType(s.DType); err != nil {
			return "", c, err
		}
	}
	if s.QScheme != "" {
		if c.Scheme, err = observe.ParseQScheme(s.QScheme); err != nil {
			return "", c, err
		}
	}
	// A per-channel observer with a per-tensor scheme (or the reverse)
	// keeps the scheme's affine/symmetric choice.
	switch {
	case perChannelKind(k) && !c.Scheme.PerChannel():
		if c.Scheme.Symmetric() {
			c.Scheme = tensor.PerChannelSymmetric
		} else {
			c.Scheme = tensor.PerChannelAffine
		}
	case !perChannelKind(k) && c.Scheme.PerChannel():
		if c.Scheme.Symmetric() {
			c.Scheme = tensor.PerTensorSymmetric
		} else {
			c.Scheme = tensor.PerTensorAffine
		}
	}
	if k == observe.KindNoop && s.DType == "" {
		c.DType = tensor.Float16
	}
	if s.ReduceRange != nil {
		c.ReduceRange = *s.ReduceRange
	}
	if (s.QuantMin == nil) != (s.QuantMax == nil) {
		return "", c, errors.New("quant_min and quant_max must be given together")
	}
	// The histogram search is over the target's 2^bits levels (PyTorch's
	// HistogramObserver sizes its destination histogram so): for int32 it
	// is meaningless, and int32 tensors (biases) want minmax anyway.
	if histogramKind(k) && c.DType == tensor.Int32 {
		return "", c, fmt.Errorf("observer %s cannot target dtype int32; use minmax for int32", k)
	}
	if s.QuantMin != nil {
		c.HasRange, c.QuantMin, c.QuantMax = true, *s.QuantMin, *s.QuantMax
	}
	c.Eps, c.AveragingConstant = s.Eps, s.AveragingConstant
	c.Bins, c.UpsampleRate, c.Percentile, c.EntropyBins = s.Bins, s.UpsampleRate, s.Percentile, s.EntropyBins
	if s.Tails != nil {
		c.Tails = *s.Tails
	}
	if perChannelKind(k) {
		c.Axis = defAxis
		if s.Axis != nil {
			c.Axis = *s.Axis
		}
	}
	if _, err := observe.New(k, c); err != nil {
		return "", c, err
	}
	return k, c, nil
}

// target is a tensor to observe.
type target struct {
	v      *graph.Value
	role   string
	opType string // producer (activation) or first consumer (weight, constant)
	node   string
	axis   int // default channel axis for per-channel observers
	kind   observe.Kind
	cfg    observe.Config
	obs    observe.Observer
	rank   int // rank of the observed data (-1 before any)
}

// weightAxis says whether input i of n is a weight and its output-channel
// axis (negative: from the end).
func weightAxis(n *graph.Node, i int) (bool, int) {
	if !graph.IsDefaultDomain(n.Domain) {
		return false, 0
	}
	switch n.OpType {
	case "Conv":
		return i == 1, 0
	case "ConvTranspose":
		return i == 1, 1 // [Cin, Cout/group, k...]
	case "Gemm":
		if i == 1 {
			tb, _ := n.AttrInt("transB", 0)
			if tb != 0 {
				return true, 0
			}
			return true, 1
		}
		if i == 0 {
			ta, _ := n.AttrInt("transA", 0)
			if ta != 0 {
				return true, 1
			}
			return true, 0
		}
	case "MatMul":
		if i == 1 {
			return true, -1
		}
		if i == 0 {
			return true, -2
		}
	case "LSTM", "GRU", "RNN":
		return i == 1 || i == 2, 1 // [dirs, gates*hidden, in]
	case "Gather":
		return i == 0, 0
	}
	return false, 0
}

// constantOps read float initializers that a static quantizer turns into
// quantized constants like activations (not attribute-like parameters such
// as Resize scales or Clip bounds).
var constantOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Sum": true, "Max": true, "Min": true,
	"Mean": true, "Concat": true, "PRelu": true, "Where": true, "Equal": true, "Greater": true, "Less": true,
}

// Plan is the set of tensors a calibration observes, with their observers.
type Plan struct {
	g       *graph.Graph
	targets []*target
	byValue map[*graph.Value]*target
}

// NewPlan chooses the observed tensors and their observers: every float
// graph input and node output (activations), the weights of the ops that
// have them, and other float constants of elementwise ops, each with the
// role's default observer adjusted by the config's op-type and tensor
// overrides. Weights and constants are observed here, once.
func NewPlan(g *graph.Graph, cfg Config, activationKind string) (*Plan, error) {
	act := defaultActivation.merge(cfg.Activation)
	if activationKind != "" {
		act.Observer = activationKind
	}
	wt := defaultWeight.merge(cfg.Weight)
	constSpec := act
	constSpec.Observer = string(observe.KindMinMax)
	for _, o := range append(append([]Override{}, cfg.OpTypes...), cfg.Tensors...) {
		if (o.Name == "") == (o.OpType == "") {
			return nil, fmt.Errorf("calibration config: an override needs exactly one of name and op_type (got name %q, op_type %q)", o.Name, o.OpType)
		}
	}
	for _, c := range []struct {
		where string
		spec  ObserverSpec
	}{{"activation", cfg.Activation}, {"weight", cfg.Weight}} {
		if err := c.spec.contradiction(); err != nil {
			return nil, fmt.Errorf("calibration config: %s: %v", c.where, err)
		}
	}
	for _, o := range append(append([]Override{}, cfg.OpTypes...), cfg.Tensors...) {
		if err := o.contradiction(); err != nil {
			return nil, fmt.Errorf("calibration config: override %s%s: %v", o.Name, o.OpType, err)
		}
	}
	if err := checkMeanStd(g, cfg.Preprocess); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	p := &Plan{g: g, byValue: map[*graph.Value]*target{}}
	add := func(t *target, base ObserverSpec) error {
		spec := base
		for _, o := range cfg.OpTypes {
			if o.OpType == t.opType {
				spec = spec.merge(o.ObserverSpec)
			}
		}
		for _, o := range cfg.Tensors {
			if o.Name == t.v.Name {
				spec = spec.merge(o.ObserverSpec)
				names[o.Name] = true
			}
		}
		if strings.EqualFold(spec.Observer, "none") {
			return nil
		}
		k, c, err := spec.build(t.axis)
		if err != nil {
			return fmt.Errorf("tensor %q (%s): %v", t.v.Name, t.role, err)
		}
		t.kind, t.cfg, t.rank = k, c, -1
		if t.obs, err = observe.New(k, c); err != nil {
			return fmt.Errorf("tensor %q: %v", t.v.Name, err)
		}
		p.targets = append(p.targets, t)
		p.byValue[t.v] = t
		return nil
	}
	isFloat := func(v *graph.Value) bool { return v.DType == tensor.Float32 || v.DType == tensor.Undefined }
	for _, v := range g.Inputs {
		if v.Const == nil && isFloat(v) && v.Type == nil {
			if err := add(&target{v: v, role: RoleActivation, axis: 1}, act); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range g.Nodes {
		for i, v := range n.Inputs {
			if v == nil || v.Const == nil || v.Const.DType != tensor.Float32 || p.byValue[v] != nil {
				continue
			}
			if w, axis := weightAxis(n, i); w {
				if err := add(&target{v: v, role: RoleWeight, opType: n.OpType, node: n.Name, axis: axis}, wt); err != nil {
					return nil, err
				}
			} else if constantOps[n.OpType] && graph.IsDefaultDomain(n.Domain) {
				if err := add(&target{v: v, role: RoleConstant, opType: n.OpType, node: n.Name}, constSpec); err != nil {
					return nil, err
				}
			}
		}
		for _, v := range n.Outputs {
			if v == nil || !isFloat(v) || v.Type != nil || p.byValue[v] != nil {
				continue
			}
			if err := add(&target{v: v, role: RoleActivation, opType: n.OpType, node: n.Name, axis: 1}, act); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range cfg.Tensors {
		if !names[o.Name] {
			return nil, fmt.Errorf("calibration config: tensor %q is not a float tensor of the model", o.Name)
		}
	}
	// Constants are observed once, now.
	for _, t := range p.targets {
		if t.role == RoleActivation {
			continue
		}
		if err := t.observe(t.v.Const); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// observe feeds one tensor to the target's observer.
func (t *target) observe(x *tensor.Tensor) error {
	if x.DType != tensor.Float32 {
		return nil
	}
	if t.rank < 0 {
		t.rank = len(x.Shape)
		if perChannelKind(t.kind) {
			a := t.cfg.Axis
			if a < 0 {
				a += t.rank
			}
			if a < 0 || a >= t.rank {
				return fmt.Errorf("tensor %q: channel axis %d out of range for shape %v", t.v.Name, t.cfg.Axis, x.Shape)
			}
		}
	}
	if err := t.obs.Observe(x.F32(), x.Shape); err != nil {
		return fmt.Errorf("tensor %q: %w", t.v.Name, err)
	}
	return nil
}

// Len is the number of observed tensors.
func (p *Plan) Len() int { return len(p.targets) }

// RunOptions control Run.
type RunOptions struct {
	Threads int
	// Progress, when set, is called after each batch with the samples
	// consumed so far and the total.
	Progress func(done, total int)
}

// Stats is what a run saw.
type Stats struct {
	Samples, Batches, Skipped, Dropped int
}

// Run executes the graph on every batch of ds with the plan's observers
// attached. It stops at the first error or when ctx is cancelled.
func (p *Plan) Run(ctx context.Context, ds *Dataset, o RunOptions) (Stats, error) {
	var st Stats
	var hookErr error
	var cur *Batch
	hook := func(v *graph.Value, t *tensor.Tensor) {
		if hookErr != nil {
			return
		}
		tg := p.byValue[v]
		if tg == nil || tg.role != RoleActivation {
			return
		}
		if err := tg.observe(t); err != nil {
			if errors.Is(err, observe.ErrNonFinite) {
				err = fmt.Errorf("%w, in the batch of samples %s", err, sampleList(cur.Samples))
			}
			hookErr = err
		}
	}
	sess, err := runtime.NewSession(p.g, runtime.Options{Threads: o.Threads, Observe: hook})
	if err != nil {
		return st, err
	}
	it := ds.Iter()
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		b, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			return st, &DataError{err}
		}
		cur = b
		if _, err := sess.Run(b.Inputs); err != nil {
			return st, fmt.Errorf("samples %s: %v", sampleList(b.Samples), err)
		}
		if hookErr != nil {
			return st, hookErr
		}
		st.Samples += len(b.Samples)
		st.Batches++
		if o.Progress != nil {
			o.Progress(it.Done(), ds.Len())
		}
	}
	st.Skipped, st.Dropped = it.Skipped, it.Dropped
	if st.Samples == 0 {
		return st, fmt.Errorf("no samples were used (%d skipped for NaN/Inf, %d left over after the last full batch)", st.Skipped, st.Dropped)
	}
	return st, nil
}

// DataError is a problem with the data (unreadable file, a sample that
// does not fit the model, NaN or Inf) rather than with the model run.
type DataError struct{ Err error }

func (e *DataError) Error() string { return e.Err.Error() }
func (e *DataError) Unwrap() error { return e.Err }

func sampleList(s []int) string {
	if len(s) == 1 {
		return fmt.Sprint(s[0])
	}
	if len(s) > 8 {
		return fmt.Sprintf("%v ... (%d samples)", s[:8], len(s))
	}
	return fmt.Sprint(s)
}

// checkMeanStd refuses a recipe whose per-channel mean or std does not match
// the channels the model's image inputs take. The image reader checks it
// too, but only once it has data, and then names the image folder; here the
// error is the config's (the caller names the config file). Inputs that
// could not take images are left to the reader.
func checkMeanStd(g *graph.Graph, pp *Preprocess) error {
	if pp == nil || (len(pp.Mean) <= 1 && len(pp.Std) <= 1) {
		return nil
	}
	for _, in := range InputSpecs(g) {
		s := imageSource{pp: *pp, in: in}
		if s.layout() != nil {
			continue
		}
		for _, v := range []struct {
			key string
			x   []float64
		}{{"mean", pp.Mean}, {"std", pp.Std}} {
			if len(v.x) > 1 && len(v.x) != s.c {
				return fmt.Errorf("calibration config: preprocess %s has %d values, model input %q takes %d channels", v.key, len(v.x), in.Name, s.c)
			}
		}
	}
	return nil
}
