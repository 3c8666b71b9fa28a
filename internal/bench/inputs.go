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

// InputShape is the concrete shape bench feeds for a declared one: a
// symbolic or unknown first dim becomes batch, any other becomes 1.
func InputShape(v *graph.Value, batch int) ([]int, error) {
	if v.Shape == nil {
		return nil, fmt.Errorf("input %q has no declared shape; give it with --input %s=FILE.npy", v.Name, v.Name)
	}
	shape := make([]int, len(v.Shape))
	for i, d := range v.Shape {
		switch {
		case d.Known():
			shape[i] = int(d.Value)
		case i == 0:
			shape[i] = batch
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
func SynthInput(v *graph.Value, batch int) (*tensor.Tensor, error) {
	shape, err := InputShape(v, batch)
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
func Inputs(g *graph.Graph, given map[string]*tensor.Tensor, batch int) (map[string]*tensor.Tensor, error) {
	if batch < 1 {
		return nil, fmt.Errorf("batch must be at least 1, got %d", batch)
	}
	known := map[string]bool{}
	out := map[string]*tensor.Tensor{}
	for _, v := range g.Inputs {
		known[v.Name] = true
		if t, ok := given[v.Name]; ok {
			out[v.Name] = t
			continue
		}
		t, err := SynthInput(v, batch)
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
