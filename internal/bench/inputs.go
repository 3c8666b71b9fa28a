package bench

import (
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
	"github.com/x448/float16"
)

// MaxSynthBytes bounds one synthesized input: a model that declares a huge
// input shape must not make bench allocate without limit.
const MaxSynthBytes = 1 << 30

// Synth says how to make the inputs that are not given.
type Synth struct {
	// Batch is the size of a symbolic or unknown first dim not in Dims.
	Batch int
	// Dims sizes symbolic dims by name (e.g. "sequence": 512); other
	// symbolic dims after the first are 1.
	Dims map[string]int
	// Values fills an input with one number instead of the pattern (an
	// int64 sample rate, a sequence length).
	Values map[string]float64
}

// InputShape is the concrete shape bench feeds for a declared one: a
// symbolic dim named in s.Dims takes that size, else a symbolic or unknown
// first dim becomes s.Batch and any other becomes 1.
func InputShape(v *graph.Value, s Synth) ([]int, error) {
	if v.Shape == nil {
		return nil, fmt.Errorf("input %q has no declared shape; give it with --input %s=FILE.npy", v.Name, v.Name)
	}
	shape := make([]int, len(v.Shape))
	for i, d := range v.Shape {
		n, named := s.Dims[d.Param]
		switch {
		case d.Known():
			shape[i] = int(d.Value)
		case d.Param != "" && named:
			shape[i] = n
		case i == 0:
			shape[i] = s.Batch
		default:
			shape[i] = 1
		}
	}
	return shape, nil
}

// SynthInput makes a deterministic input for v. Float inputs get the
// pseudo-random pattern of tools/peers/ort.js (an LCG mapped to [-1, 1)),
// so qtool and ONNX Runtime time the same data; uint8/int8 inputs get the
// same pattern scaled to 0..254 (wrapped for int8, as ort.js's Int8Array
// does). Integer inputs of other types and bools are zero: they are
// usually indices, lengths or token ids, for which 0 is always in range.
// An input named in s.Values is filled with that number instead.
func SynthInput(v *graph.Value, s Synth) (*tensor.Tensor, error) {
	shape, err := InputShape(v, s)
	if err != nil {
		return nil, err
	}
	dt := v.DType
	if dt == tensor.Undefined || dt == tensor.String || !dt.Supported() {
		return nil, fmt.Errorf("input %q: cannot synthesize dtype %v; give it with --input %s=FILE.npy", v.Name, dt, v.Name)
	}
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, fmt.Errorf("input %q: %v", v.Name, err)
	}
	if int64(n)*int64(dt.Size()) > MaxSynthBytes {
		return nil, fmt.Errorf("input %q: shape %v is over %d bytes; give it with --input %s=FILE.npy", v.Name, shape, MaxSynthBytes, v.Name)
	}
	t, err := tensor.New(dt, shape)
	if err != nil {
		return nil, fmt.Errorf("input %q: %v", v.Name, err)
	}
	if x, ok := s.Values[v.Name]; ok {
		if err := fill(t, x); err != nil {
			return nil, fmt.Errorf("input %q: %v", v.Name, err)
		}
		return t, nil
	}
	next := ortPattern()
	switch dt {
	case tensor.Float32:
		d := t.F32()
		for i := range d {
			d[i] = float32(next()*2 - 1)
		}
	case tensor.Float64:
		d := t.F64()
		for i := range d {
			d[i] = float64(float32(next()*2 - 1))
		}
	case tensor.Float16:
		d := t.F16()
		for i := range d {
			d[i] = float16.Fromfloat32(float32(next()*2 - 1))
		}
	case tensor.Uint8:
		d := t.U8()
		for i := range d {
			d[i] = uint8(math.Floor(next() * 255))
		}
	case tensor.Int8:
		d := t.I8()
		for i := range d {
			d[i] = int8(uint8(math.Floor(next() * 255)))
		}
	}
	return t, nil
}

// Inputs completes given with synthesized tensors for every graph input it
// lacks, and rejects names the graph does not have.
func Inputs(g *graph.Graph, given map[string]*tensor.Tensor, s Synth) (map[string]*tensor.Tensor, error) {
	if s.Batch < 1 {
		return nil, fmt.Errorf("batch must be at least 1, got %d", s.Batch)
	}
	for name, n := range s.Dims {
		if n < 0 {
			return nil, fmt.Errorf("dim %s: size %d is negative", name, n)
		}
	}
	params := map[string]bool{}
	inputs := map[string]bool{}
	for _, v := range g.Inputs {
		inputs[v.Name] = true
		for _, d := range v.Shape {
			if d.Param != "" {
				params[d.Param] = true
			}
		}
	}
	// A misspelt name would otherwise be ignored without a word.
	for name := range s.Dims {
		if !params[name] {
			return nil, fmt.Errorf("no input has a symbolic dim %q", name)
		}
	}
	for name := range s.Values {
		if !inputs[name] {
			return nil, fmt.Errorf("the model has no input %q to fill", name)
		}
		if _, ok := given[name]; ok {
			return nil, fmt.Errorf("input %q is both given and filled with a value", name)
		}
	}
	s.Dims = resolveDims(g, s)
	known := map[string]bool{}
	out := map[string]*tensor.Tensor{}
	for _, v := range g.Inputs {
		known[v.Name] = true
		if t, ok := given[v.Name]; ok {
			out[v.Name] = t
			continue
		}
		t, err := SynthInput(v, s)
		if err != nil {
			return nil, err
		}
		out[v.Name] = t
	}
	for name, t := range given {
		if !known[name] {
			// An initializer the file also lists as an input may be fed.
			if !contains(g.InitializerInputs, name) {
				return nil, fmt.Errorf("the model has no input %q", name)
			}
			out[name] = t
		}
	}
	return out, nil
}

// resolveDims adds to s.Dims every symbolic name that is the first dim of
// some input, sized s.Batch: a name is one size wherever it appears (an RNN
// state's "batch" in position 1 must match the input's "batch" in 0).
func resolveDims(g *graph.Graph, s Synth) map[string]int {
	dims := make(map[string]int, len(s.Dims))
	for k, v := range s.Dims {
		dims[k] = v
	}
	for _, v := range g.Inputs {
		if len(v.Shape) > 0 && v.Shape[0].Param != "" {
			if _, ok := dims[v.Shape[0].Param]; !ok {
				dims[v.Shape[0].Param] = s.Batch
			}
		}
	}
	return dims
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ortPattern returns the generator of tools/peers/ort.js's filler: an LCG
// evaluated, as JavaScript does, in float64 (the product loses low bits
// beyond 2^53) and then reduced to uint32, giving u in [0, 1).
func ortPattern() func() float64 {
	s := uint32(12345)
	return func() float64 {
		// float64() around the product keeps Go from fusing it into an FMA,
		// which would round once where JavaScript rounds twice.
		x := float64(float64(s)*1103515245) + 12345
		s = uint32(math.Mod(x, 1<<32))
		return float64(s>>8) / (1 << 24)
	}
}

// fill sets every element of t to x, which must be representable in its
// dtype (an integer within range for integer types, 0 or 1 for bool).
func fill(t *tensor.Tensor, x float64) error {
	if math.IsNaN(x) && !t.DType.IsFloat() {
		return fmt.Errorf("value NaN for %v", t.DType)
	}
	if !t.DType.IsFloat() {
		lo, hi := intRange(t.DType)
		if x != math.Trunc(x) || x < lo || x > hi {
			return fmt.Errorf("value %g does not fit %v", x, t.DType)
		}
	}
	switch t.DType {
	case tensor.Float32:
		for i := range t.F32() {
			t.F32()[i] = float32(x)
		}
	case tensor.Float64:
		for i := range t.F64() {
			t.F64()[i] = x
		}
	case tensor.Float16:
		h := float16.Fromfloat32(float32(x))
		for i := range t.F16() {
			t.F16()[i] = h
		}
	case tensor.Uint8:
		for i := range t.U8() {
			t.U8()[i] = uint8(x)
		}
	case tensor.Int8:
		for i := range t.I8() {
			t.I8()[i] = int8(x)
		}
	case tensor.Uint16:
		for i := range t.U16() {
			t.U16()[i] = uint16(x)
		}
	case tensor.Int16:
		for i := range t.I16() {
			t.I16()[i] = int16(x)
		}
	case tensor.Int32:
		for i := range t.I32() {
			t.I32()[i] = int32(x)
		}
	case tensor.Uint32:
		for i := range t.U32() {
			t.U32()[i] = uint32(x)
		}
	case tensor.Int64:
		for i := range t.I64() {
			t.I64()[i] = int64(x)
		}
	case tensor.Uint64:
		for i := range t.U64() {
			t.U64()[i] = uint64(x)
		}
	case tensor.Bool:
		for i := range t.Bools() {
			t.Bools()[i] = x != 0
		}
	default:
		return fmt.Errorf("cannot fill dtype %v", t.DType)
	}
	return nil
}

// intRange is the range of integers an integer dtype holds exactly as a
// float64 (int64/uint64 limited to 2^53, beyond which float64 skips).
func intRange(dt tensor.DType) (float64, float64) {
	switch dt {
	case tensor.Uint8:
		return 0, math.MaxUint8
	case tensor.Int8:
		return math.MinInt8, math.MaxInt8
	case tensor.Uint16:
		return 0, math.MaxUint16
	case tensor.Int16:
		return math.MinInt16, math.MaxInt16
	case tensor.Int32:
		return math.MinInt32, math.MaxInt32
	case tensor.Uint32:
		return 0, math.MaxUint32
	case tensor.Int64:
		return -(1 << 53), 1 << 53
	case tensor.Uint64:
		return 0, 1 << 53
	case tensor.Bool:
		return 0, 1
	}
	return 0, 0
}
