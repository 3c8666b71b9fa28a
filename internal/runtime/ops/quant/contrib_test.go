package quant

import (
	"math"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// The com.microsoft Q/DQ pair round-trips 16-bit data per tensor and per
// axis exactly as the formula gives (the ai.onnx kernels they share pass
// ONNX's 16-bit node tests), and refuses attributes its schema lacks.
func TestContribQDQ16(t *testing.T) {
	x := make([]float32, 2*3*4)
	for i := range x {
		x[i] = float32(i)*0.37 - 4.1
	}
	xt := tensor.FromFloat32([]int{2, 3, 4}, x)
	for _, dt := range []tensor.DType{tensor.Uint16, tensor.Int16, tensor.Uint8} {
		for _, perAxis := range []bool{false, true} {
			scales := []float32{0.001}
			zps := []int32{0}
			switch dt {
			case tensor.Uint16:
				zps[0] = 32767
			case tensor.Uint8:
				scales[0], zps[0] = 0.05, 100
			}
			var attrs []*graph.Attribute
			if perAxis {
				scales = []float32{0.001, 0.0002, 0.003}
				zps = []int32{zps[0], zps[0] - 1, zps[0] + 7}
				attrs = append(attrs, graph.IntAttr("axis", 1))
			}
			sc := tensor.FromFloat32([]int{len(scales)}, scales)
			if !perAxis {
				sc = tensor.Scalar(scales[0])
			}
			zp := zpOf(dt, len(zps), perAxis, zps)
			qf, ok := runtime.Lookup(msDomain, "QuantizeLinear", tensor.Float32)
			if !ok {
				t.Fatal("com.microsoft QuantizeLinear is not registered")
			}
			df, ok := runtime.Lookup(msDomain, "DequantizeLinear", dt)
			if !ok {
				t.Fatalf("com.microsoft DequantizeLinear(%v) is not registered", dt)
			}
			qk, err := qf(&graph.Node{Domain: msDomain, OpType: "QuantizeLinear", Inputs: node("").Inputs, Outputs: node("").Outputs, Attrs: attrs}, 1)
			if err != nil {
				t.Fatal(err)
			}
			dk, err := df(&graph.Node{Domain: msDomain, OpType: "DequantizeLinear", Inputs: node("").Inputs, Outputs: node("").Outputs, Attrs: attrs}, 1)
			if err != nil {
				t.Fatal(err)
			}
			q, err := qk.Run(&runtime.Context{}, []*tensor.Tensor{xt, sc, zp})
			if err != nil {
				t.Fatal(err)
			}
			if q[0].DType != dt {
				t.Fatalf("%v: quantized to %v", dt, q[0].DType)
			}
			d, err := dk.Run(&runtime.Context{}, []*tensor.Tensor{q[0], sc, zp})
			if err != nil {
				t.Fatal(err)
			}
			bounds := map[tensor.DType][2]float64{tensor.Uint16: {0, 65535}, tensor.Int16: {-32768, 32767}, tensor.Uint8: {0, 255}}[dt]
			lo, hi := bounds[0], bounds[1]
			for i, v := range d[0].F32() {
				c := 0
				if perAxis {
					c = (i / 4) % 3
				}
				r := math.RoundToEven(float64(x[i]/scales[c])) + float64(zps[c])
				r = math.Max(lo, math.Min(hi, r))
				want := float32(float32(r-float64(zps[c])) * scales[c])
				if v != want {
					t.Fatalf("%v per-axis %v: x[%d]=%v -> %v, want %v", dt, perAxis, i, x[i], v, want)
				}
			}
		}
	}
	f, _ := runtime.Lookup(msDomain, "QuantizeLinear", tensor.Float32)
	if _, err := f(&graph.Node{Domain: msDomain, OpType: "QuantizeLinear", Inputs: node("").Inputs, Outputs: node("").Outputs,
		Attrs: []*graph.Attribute{graph.IntAttr("block_size", 2)}}, 1); err == nil {
		t.Error("com.microsoft QuantizeLinear accepted block_size")
	}
}

func zpOf(dt tensor.DType, n int, perAxis bool, zps []int32) *tensor.Tensor {
	shape := []int{n}
	if !perAxis {
		shape = []int{}
	}
	t := tensor.MustNew(dt, shape)
	for i, z := range zps {
		switch dt {
		case tensor.Uint16:
			t.Data.([]uint16)[i] = uint16(z)
		case tensor.Int16:
			t.Data.([]int16)[i] = int16(z)
		case tensor.Uint8:
			t.U8()[i] = uint8(z)
		}
	}
	return t
}
