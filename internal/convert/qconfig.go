// Package convert turns a float graph into a quantized one: static
// quantization from a calibration table (QDQ or QOperator ONNX), dynamic
// quantization of MatMul/Gemm/LSTM weights, and float16 weights.
//
//   - qconfig.go: the quantization config (global default, per op type, per
//     node name glob, exclusions) and its resolution for one node.
//   - static.go: which nodes are quantized and with which qparams (the plan).
//   - qdq.go, qoperator.go: the two ways of writing that plan.
//   - dynamic.go, fp16.go: weight-only conversions.
//   - opset.go: raising the ai.onnx opset where the emitted ops need it.
package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/observe"
	"github.com/qtool/qtool/internal/tensor"
)

// Modes and formats.
const (
	ModeStatic  = "static"
	ModeDynamic = "dynamic"
	ModeFP16    = "fp16"

	FormatQDQ       = "qdq"
	FormatQOperator = "qoperator"
)

// ActivationSpec is how activations are quantized. Empty fields inherit.
type ActivationSpec struct {
	DType       string `json:"dtype,omitempty" yaml:"dtype" mapstructure:"dtype"`    // quint8 | qint8 | quint16 | qint16 (a16.go)
	Scheme      string `json:"scheme,omitempty" yaml:"scheme" mapstructure:"scheme"` // affine | symmetric
	ReduceRange *bool  `json:"reduce_range,omitempty" yaml:"reduce_range" mapstructure:"reduce_range"`
	Observer    string `json:"observer,omitempty" yaml:"observer" mapstructure:"observer"` // calibration observer kind
}

// WeightSpec is how constant weights are quantized. Empty fields inherit.
type WeightSpec struct {
	DType       string `json:"dtype,omitempty" yaml:"dtype" mapstructure:"dtype"`                   // qint8 (quint8 accepted)
	Granularity string `json:"granularity,omitempty" yaml:"granularity" mapstructure:"granularity"` // per_tensor | per_channel
	Scheme      string `json:"scheme,omitempty" yaml:"scheme" mapstructure:"scheme"`                // symmetric | affine
	ReduceRange *bool  `json:"reduce_range,omitempty" yaml:"reduce_range" mapstructure:"reduce_range"`
	// NarrowRange uses -127..127 for symmetric int8 weights, as ONNX
	// Runtime's quantizer does (PyTorch uses -128..127).
	NarrowRange *bool `json:"narrow_range,omitempty" yaml:"narrow_range" mapstructure:"narrow_range"`
	// Rounding picks each weight's integer: "nearest" (round to nearest,
	// the default) or "gptq" (second-order error feedback on calibration
	// inputs, see OptimizeWeights; needs data, so qtool quantize).
	Rounding string `json:"rounding,omitempty" yaml:"rounding" mapstructure:"rounding"`
}

// Override applies to the nodes of one op type or whose name matches a glob.
type Override struct {
	OpType     string         `json:"op_type,omitempty" yaml:"op_type" mapstructure:"op_type"`
	Name       string         `json:"name,omitempty" yaml:"name" mapstructure:"name"` // path.Match glob
	Activation ActivationSpec `json:"activation,omitempty" yaml:"activation" mapstructure:"activation"`
	Weight     WeightSpec     `json:"weight,omitempty" yaml:"weight" mapstructure:"weight"`
}

// Exclude lists nodes kept in float (with Q/DQ at their boundaries).
type Exclude struct {
	OpTypes []string `json:"op_types,omitempty" yaml:"op_types" mapstructure:"op_types"`
	Nodes   []string `json:"nodes,omitempty" yaml:"nodes" mapstructure:"nodes"` // globs
}

// Config is the `quantization:` section of a qtool config file.
type Config struct {
	Mode       string         `json:"mode,omitempty" yaml:"mode" mapstructure:"mode"`       // static | dynamic | fp16
	Format     string         `json:"format,omitempty" yaml:"format" mapstructure:"format"` // qdq | qoperator
	Activation ActivationSpec `json:"activation,omitempty" yaml:"activation" mapstructure:"activation"`
	Weight     WeightSpec     `json:"weight,omitempty" yaml:"weight" mapstructure:"weight"`
	// Bias is the bias storage type; only int32 (scale sa·sw) exists.
	Bias    string     `json:"bias,omitempty" yaml:"bias" mapstructure:"bias"`
	OpTypes []Override `json:"op_types,omitempty" yaml:"op_types" mapstructure:"op_types"`
	Nodes   []Override `json:"nodes,omitempty" yaml:"nodes" mapstructure:"nodes"`
	Exclude Exclude    `json:"exclude,omitempty" yaml:"exclude" mapstructure:"exclude"`
	NoFuse  bool       `json:"no_fuse,omitempty" yaml:"no_fuse" mapstructure:"no_fuse"`
	// LSTM selects the dynamic form of LSTMs: "dequantize" (default: int8
	// weights behind DequantizeLinear, any runtime) or "contrib"
	// (com.microsoft DynamicQuantizeLSTM, what ONNX Runtime's
	// quantize_dynamic writes).
	LSTM string `json:"lstm,omitempty" yaml:"lstm" mapstructure:"lstm"`
	// FP16 refines mode: fp16 (fp16full.go).
	FP16 FP16Spec `json:"fp16,omitempty" yaml:"fp16" mapstructure:"fp16"`
}

// FP16Spec is the `fp16:` section: weights only (the default) or the whole
// model in float16.
type FP16Spec struct {
	// Full converts every float32 tensor, not only the weights.
	Full bool `json:"full,omitempty" yaml:"full" mapstructure:"full"`
	// KeepIOTypes keeps float32 graph inputs and outputs (default true;
	// false makes them float16). Full only.
	KeepIOTypes *bool `json:"keep_io_types,omitempty" yaml:"keep_io_types" mapstructure:"keep_io_types"`
	// OpBlockList adds op types to DefaultFP16BlockList; NodeBlockList
	// keeps nodes (globs) float32. Full only.
	OpBlockList   []string `json:"op_block_list,omitempty" yaml:"op_block_list" mapstructure:"op_block_list"`
	NodeBlockList []string `json:"node_block_list,omitempty" yaml:"node_block_list" mapstructure:"node_block_list"`
}

// Float16Options is the fp16 section as Float16Full's options.
func (c Config) Float16Options() Float16Options {
	o := Float16Options{NodeBlockList: c.FP16.NodeBlockList}
	o.IO16 = c.FP16.KeepIOTypes != nil && !*c.FP16.KeepIOTypes
	if len(c.FP16.OpBlockList) > 0 {
		o.OpBlockList = append(append([]string(nil), DefaultFP16BlockList...), c.FP16.OpBlockList...)
	}
	return o
}

// Default is the x86 preset's content: per-channel symmetric int8 weights,
// uint8 affine activations from histogram calibration.
func Default() Config {
	f := false
	return Config{
		Mode: ModeStatic, Format: FormatQDQ,
		Activation: ActivationSpec{DType: "quint8", Scheme: "affine", ReduceRange: &f, Observer: "histogram"},
		Weight:     WeightSpec{DType: "qint8", Granularity: "per_channel", Scheme: "symmetric", ReduceRange: &f, NarrowRange: &f, Rounding: "gptq"},
		Bias:       "int32",
	}
}

// DecodeConfig reads the `quantization:` section (as the YAML loader gives
// it) over Default(), refusing unknown keys, then validates it.
func DecodeConfig(raw any) (Config, error) {
	c := Default()
	if raw == nil {
		return c, c.Validate()
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return c, fmt.Errorf("quantization config: %v", err)
	}
	var over Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&over); err != nil {
		return c, fmt.Errorf("quantization config: %v", err)
	}
	c = c.merge(over)
	return c, c.Validate()
}

func (c Config) merge(o Config) Config {
	if o.Mode != "" {
		c.Mode = o.Mode
	}
	if o.Format != "" {
		c.Format = o.Format
	}
	if o.Bias != "" {
		c.Bias = o.Bias
	}
	if o.LSTM != "" {
		c.LSTM = o.LSTM
	}
	c.Activation = c.Activation.merge(o.Activation)
	c.Weight = c.Weight.merge(o.Weight)
	c.OpTypes = append(c.OpTypes, o.OpTypes...)
	c.Nodes = append(c.Nodes, o.Nodes...)
	c.Exclude.OpTypes = append(c.Exclude.OpTypes, o.Exclude.OpTypes...)
	c.Exclude.Nodes = append(c.Exclude.Nodes, o.Exclude.Nodes...)
	c.NoFuse = c.NoFuse || o.NoFuse
	c.FP16.Full = c.FP16.Full || o.FP16.Full
	if o.FP16.KeepIOTypes != nil {
		c.FP16.KeepIOTypes = o.FP16.KeepIOTypes
	}
	c.FP16.OpBlockList = append(c.FP16.OpBlockList, o.FP16.OpBlockList...)
	c.FP16.NodeBlockList = append(c.FP16.NodeBlockList, o.FP16.NodeBlockList...)
	return c
}

func (a ActivationSpec) merge(o ActivationSpec) ActivationSpec {
	if o.DType != "" {
		a.DType = o.DType
	}
	if o.Scheme != "" {
		a.Scheme = o.Scheme
	}
	if o.ReduceRange != nil {
		a.ReduceRange = o.ReduceRange
	}
	if o.Observer != "" {
		a.Observer = o.Observer
	}
	return a
}

func (w WeightSpec) merge(o WeightSpec) WeightSpec {
	if o.DType != "" {
		w.DType = o.DType
	}
	if o.Granularity != "" {
		w.Granularity = o.Granularity
	}
	if o.Scheme != "" {
		w.Scheme = o.Scheme
	}
	if o.ReduceRange != nil {
		w.ReduceRange = o.ReduceRange
	}
	if o.NarrowRange != nil {
		w.NarrowRange = o.NarrowRange
	}
	if o.Rounding != "" {
		w.Rounding = o.Rounding
	}
	return w
}

func oneOf(what, v string, allowed ...string) error {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q is not one of %s", what, v, strings.Join(allowed, ", "))
}

func (a ActivationSpec) validate(where string) error {
	if err := oneOf(where+"activation.dtype", a.DType, "quint8", "qint8", "uint8", "int8", "quint16", "qint16", "uint16", "int16"); err != nil {
		return err
	}
	if err := oneOf(where+"activation.scheme", a.Scheme, "affine", "symmetric"); err != nil {
		return err
	}
	if a.Observer != "" {
		if _, err := parseObserver(a.Observer); err != nil {
			return fmt.Errorf("%sactivation.observer: %v", where, err)
		}
	}
	return nil
}

func parseObserver(s string) (observe.Kind, error) {
	for _, k := range observe.Kinds {
		if string(k) == s {
			if k == observe.KindPerChannelMinMax || k == observe.KindMovingAveragePerChannelMinMax || k == observe.KindNoop || k == observe.KindRecording || k == observe.KindPlaceholder {
				return "", fmt.Errorf("%q cannot calibrate activations for int8", s)
			}
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown observer %q (want histogram, minmax, moving_average_minmax, percentile or entropy)", s)
}

func (w WeightSpec) validate(where string) error {
	if err := oneOf(where+"weight.dtype", w.DType, "qint8", "int8", "quint8", "uint8"); err != nil {
		return err
	}
	if err := oneOf(where+"weight.granularity", w.Granularity, "per_tensor", "per_channel"); err != nil {
		return err
	}
	if err := oneOf(where+"weight.scheme", w.Scheme, "symmetric", "affine"); err != nil {
		return err
	}
	if err := oneOf(where+"weight.rounding", w.Rounding, "nearest", "gptq"); err != nil {
		return err
	}
	if w.NarrowRange != nil && *w.NarrowRange && w.Scheme == "affine" {
		return fmt.Errorf("%sweight.narrow_range applies to symmetric weights, but the scheme is affine", where)
	}
	if w.NarrowRange != nil && *w.NarrowRange && w.ReduceRange != nil && *w.ReduceRange {
		return fmt.Errorf("%sweight: narrow_range and reduce_range contradict each other", where)
	}
	return nil
}

// Validate checks values and contradictions that need no graph.
func (c Config) Validate() error {
	if err := oneOf("mode", c.Mode, ModeStatic, ModeDynamic, ModeFP16); err != nil {
		return err
	}
	if err := oneOf("format", c.Format, FormatQDQ, FormatQOperator); err != nil {
		return err
	}
	if err := oneOf("bias", c.Bias, "int32"); err != nil {
		return err
	}
	if err := oneOf("lstm", c.LSTM, "dequantize", "contrib"); err != nil {
		return err
	}
	if err := c.Activation.validate(""); err != nil {
		return err
	}
	if err := c.Weight.validate(""); err != nil {
		return err
	}
	if err := c.FP16.validate(c.Mode); err != nil {
		return err
	}
	if err := c.validate16(); err != nil {
		return err
	}
	excluded := map[string]bool{}
	for _, op := range c.Exclude.OpTypes {
		excluded[op] = true
	}
	for i, o := range c.OpTypes {
		where := fmt.Sprintf("op_types[%d] ", i)
		if o.OpType == "" || o.Name != "" {
			return fmt.Errorf("%sneeds op_type (and no name)", where)
		}
		if excluded[o.OpType] {
			return fmt.Errorf("%sop type %s is both excluded and configured", where, o.OpType)
		}
		if err := o.Activation.validate(where); err != nil {
			return err
		}
		if err := o.Weight.validate(where); err != nil {
			return err
		}
	}
	for i, o := range c.Nodes {
		where := fmt.Sprintf("nodes[%d] ", i)
		if o.Name == "" || o.OpType != "" {
			return fmt.Errorf("%sneeds name (a glob, and no op_type)", where)
		}
		if _, err := globMatch(o.Name, ""); err != nil {
			return fmt.Errorf("%sname %q: %v", where, o.Name, err)
		}
		for _, ex := range c.Exclude.Nodes {
			if ex == o.Name {
				return fmt.Errorf("%snode %q is both excluded and configured", where, o.Name)
			}
		}
		if err := o.Activation.validate(where); err != nil {
			return err
		}
		if err := o.Weight.validate(where); err != nil {
			return err
		}
	}
	for _, ex := range c.Exclude.Nodes {
		if _, err := globMatch(ex, ""); err != nil {
			return fmt.Errorf("exclude.nodes %q: %v", ex, err)
		}
	}
	return nil
}

func (f FP16Spec) validate(mode string) error {
	set := f.Full || f.KeepIOTypes != nil || len(f.OpBlockList) > 0 || len(f.NodeBlockList) > 0
	switch {
	case set && mode != ModeFP16:
		return fmt.Errorf("fp16 settings need mode: fp16 (mode is %s)", mode)
	case !f.Full && (f.KeepIOTypes != nil || len(f.OpBlockList) > 0 || len(f.NodeBlockList) > 0):
		return fmt.Errorf("fp16.keep_io_types, op_block_list and node_block_list apply to fp16.full: true (weights-only float16 keeps every type)")
	}
	for _, p := range f.NodeBlockList {
		if _, err := globMatch(p, ""); err != nil {
			return fmt.Errorf("fp16.node_block_list %q: %v", p, err)
		}
	}
	return nil
}

// CheckGraph reports node globs and op types that match nothing in g: a
// config that names a node the model does not have is a mistake.
func (c Config) CheckGraph(g *graph.Graph) error {
	has := func(glob string) bool {
		for _, n := range g.Nodes {
			if ok, _ := globMatch(glob, n.Name); ok {
				return true
			}
		}
		return false
	}
	for _, o := range c.Nodes {
		if !has(o.Name) {
			return fmt.Errorf("quantization config: nodes: %q matches no node of the model", o.Name)
		}
	}
	for _, ex := range c.Exclude.Nodes {
		if !has(ex) {
			return fmt.Errorf("quantization config: exclude.nodes: %q matches no node of the model", ex)
		}
	}
	for _, p := range c.FP16.NodeBlockList {
		if !has(p) {
			return fmt.Errorf("quantization config: fp16.node_block_list: %q matches no node of the model", p)
		}
	}
	return nil
}

// NodeSpec is the resolved config of one node.
type NodeSpec struct {
	Excluded   bool
	Activation ActivationSpec
	Weight     WeightSpec
}

// Resolve returns n's config: global, then op-type overrides in order, then
// node-name overrides in order (a later match wins).
func (c Config) Resolve(n *graph.Node) NodeSpec {
	s := NodeSpec{Activation: c.Activation, Weight: c.Weight}
	for _, op := range c.Exclude.OpTypes {
		if op == n.OpType {
			s.Excluded = true
		}
	}
	for _, ex := range c.Exclude.Nodes {
		if ok, _ := globMatch(ex, n.Name); ok {
			s.Excluded = true
		}
	}
	for _, o := range c.OpTypes {
		if o.OpType == n.OpType {
			s.Activation, s.Weight = s.Activation.merge(o.Activation), s.Weight.merge(o.Weight)
		}
	}
	for _, o := range c.Nodes {
		if ok, _ := globMatch(o.Name, n.Name); ok {
			s.Activation, s.Weight = s.Activation.merge(o.Activation), s.Weight.merge(o.Weight)
		}
	}
	return s
}

// ActDType is the activation storage type.
func (a ActivationSpec) ActDType() tensor.DType {
	switch a.DType {
	case "qint8", "int8":
		return tensor.Int8
	case "quint16", "uint16":
		return tensor.Uint16
	case "qint16", "int16":
		return tensor.Int16
	}
	return tensor.Uint8
}

// WeightDType is the weight storage type.
func (w WeightSpec) WeightDType() tensor.DType {
	if w.DType == "quint8" || w.DType == "uint8" {
		return tensor.Uint8
	}
	return tensor.Int8
}

// PerChannel reports per-channel weights.
// GPTQ reports whether any node may ask for GPTQ weight rounding.
func (c Config) GPTQ() bool {
	if c.Weight.Rounding == "gptq" {
		return true
	}
	for _, o := range append(append([]Override(nil), c.OpTypes...), c.Nodes...) {
		if o.Weight.Rounding == "gptq" {
			return true
		}
	}
	return false
}

func (w WeightSpec) PerChannel() bool { return w.Granularity == "per_channel" }

func (w WeightSpec) opts() tensor.QParamsOpts {
	o := tensor.QParamsOpts{DType: w.WeightDType(), Scheme: tensor.PerTensorSymmetric}
	if w.Scheme == "affine" {
		o.Scheme = tensor.PerTensorAffine
	}
	if w.ReduceRange != nil && *w.ReduceRange {
		o.ReduceRange = true
	}
	if w.NarrowRange != nil && *w.NarrowRange && o.DType == tensor.Int8 {
		o.HasRange, o.QuantMin, o.QuantMax = true, -127, 127
	}
	return o
}

// ActivationQScheme is the calibration qscheme name for the spec.
func (a ActivationSpec) ActivationQScheme() string {
	if a.Scheme == "symmetric" {
		return "per_tensor_symmetric"
	}
	return "per_tensor_affine"
}

// globMatch matches a node name against a glob where * is any run of
// characters (slashes included: exported node names are paths such as
// "squeezenet/conv10/BiasAdd") and ? is one character.
func globMatch(pattern, name string) (bool, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return false, err
	}
	return re.MatchString(name), nil
}
