package qlinear

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func constValue(name string, t *tensor.Tensor) *graph.Value {
	return &graph.Value{Name: name, DType: t.DType, Const: t}
}

// BenchmarkQLinearConv is the 64→64 3×3 convolution at 56×56 (pad 1, one
// thread, uint8 activations, per-channel int8 weights, bias), reporting GOPS
// as 2·Cout·Cin·9·56·56 per run: median and best run.
func BenchmarkQLinearConv(b *testing.B) { benchConv(b, 64, 64, 3, 1) }

// BenchmarkQLinearConvDepthwise is the 3×3 depthwise convolution of 144
// channels at 56×56 (pad 1), MobileNetV2's widest early layer.
func BenchmarkQLinearConvDepthwise(b *testing.B) { benchConv(b, 144, 144, 3, 144) }

// BenchmarkQLinearConvPointwise is a 1×1 convolution 144→24 at 56×56
// (MobileNetV2's projection layers).
func BenchmarkQLinearConvPointwise(b *testing.B) { benchConv(b, 144, 24, 1, 1) }

func benchConv(b *testing.B, c, cout, ks, group int) {
	const h, w = 56, 56
	k, in := benchConvKernel(b, []int{1, c, h, w}, cout, ks, group, false, 0.003, 128)
	ctx := &runtime.Context{Threads: 1}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := k.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	ops := 2.0 * float64(cout*c/group) * float64(ks*ks) * h * w
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median_ms")
	b.ReportMetric(ops/times[len(times)/2].Seconds()/1e9, "median_GOPS")
	b.ReportMetric(ops/times[0].Seconds()/1e9, "best_GOPS")
}

// benchConvKernel makes a QLinearConv over a random uint8 image of xShape
// (NCHW, or NHWC for com.microsoft's channels_last) with random int8
// weights (cout, ks×ks, pads ks/2, group), per-channel weight scales from
// wScale upwards, and its inputs.
func benchConvKernel(b *testing.B, xShape []int, cout, ks, group int, nhwc bool, wScale float32, yZero uint8) (runtime.Kernel, []*tensor.Tensor) {
	c := xShape[1]
	if nhwc {
		c = xShape[len(xShape)-1]
	}
	rnd := rand.New(rand.NewSource(1))
	x := tensor.MustNew(tensor.Uint8, xShape)
	for i := range x.U8() {
		x.U8()[i] = uint8(rnd.Intn(256))
	}
	wt := tensor.MustNew(tensor.Int8, []int{cout, c / group, ks, ks})
	for i := range wt.I8() {
		wt.I8()[i] = int8(rnd.Intn(256) - 128)
	}
	ws := tensor.MustNew(tensor.Float32, []int{cout})
	for i := range ws.F32() {
		ws.F32()[i] = wScale + wScale/3*float32(i%5)
	}
	u8 := func(v uint8) *tensor.Tensor {
		return &tensor.Tensor{DType: tensor.Uint8, Shape: []int{}, Data: []uint8{v}}
	}
	// x, x_scale, x_zero, w, w_scale, w_zero (symmetric), y_scale, y_zero, bias
	consts := []*tensor.Tensor{nil, tensor.Scalar(0.02), u8(120), wt, ws, tensor.MustNew(tensor.Int8, []int{cout}),
		tensor.Scalar(0.5), u8(yZero), tensor.MustNew(tensor.Int32, []int{cout})}
	p := int64(ks / 2)
	n := &graph.Node{OpType: "QLinearConv", Inputs: make([]*graph.Value, 9), Outputs: []*graph.Value{{Name: "y"}},
		Attrs: []*graph.Attribute{{Name: "pads", Type: graph.AttrInts, Ints: []int64{p, p, p, p}},
			{Name: "group", Type: graph.AttrInt, I: int64(group)}}}
	n.Inputs[0] = &graph.Value{Name: "x"}
	for i := 1; i < 9; i++ {
		n.Inputs[i] = constValue("c", consts[i])
	}
	var k runtime.Kernel
	var err error
	if nhwc {
		n.Domain = "com.microsoft"
		n.Attrs = append(n.Attrs, &graph.Attribute{Name: "channels_last", Type: graph.AttrInt, I: 1})
		k, err = newMSQLinearConv(n, 1)
	} else {
		k, err = newQLinearConv(n, 13)
	}
	if err != nil {
		b.Fatal(err)
	}
	return k, append([]*tensor.Tensor{x}, consts[1:]...)
}

// BenchmarkQLinearMatMul is the 64×1024×1024 product (uint8 A, constant
// int8 B) through the op, on 1 and 2 threads.
func BenchmarkQLinearMatMul(b *testing.B) {
	const m, n, k = 64, 1024, 1024
	rnd := rand.New(rand.NewSource(1))
	a := tensor.MustNew(tensor.Uint8, []int{m, k})
	for i := range a.U8() {
		a.U8()[i] = uint8(rnd.Intn(256))
	}
	wt := tensor.MustNew(tensor.Int8, []int{k, n})
	for i := range wt.I8() {
		wt.I8()[i] = int8(rnd.Intn(256) - 128)
	}
	u8 := func(v uint8) *tensor.Tensor {
		return &tensor.Tensor{DType: tensor.Uint8, Shape: []int{}, Data: []uint8{v}}
	}
	in := []*tensor.Tensor{a, tensor.Scalar(0.02), u8(120), wt, tensor.Scalar(0.003), &tensor.Tensor{DType: tensor.Int8, Shape: []int{}, Data: []int8{0}}, tensor.Scalar(0.5), u8(128)}
	n0 := &graph.Node{OpType: "QLinearMatMul", Inputs: make([]*graph.Value, 8), Outputs: []*graph.Value{{Name: "y"}}}
	n0.Inputs[0] = &graph.Value{Name: "a"}
	for i := 1; i < 8; i++ {
		n0.Inputs[i] = constValue("c", in[i])
	}
	kern, err := newQLinearMatMul(n0, 13)
	if err != nil {
		b.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			ctx := &runtime.Context{Threads: threads}
			times := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := kern.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
			}
			slices.Sort(times)
			ops := 2.0 * m * n * k
			b.ReportMetric(ops/times[len(times)/2].Seconds()/1e9, "median_GOPS")
			b.ReportMetric(ops/times[0].Seconds()/1e9, "best_GOPS")
		})
	}
}

// BenchmarkQLinearConvStem is a ResNet stem-like layer (3 input channels,
// 7x7), where each kernel tap is a 4-byte run and per-tap overhead shows.
func BenchmarkQLinearConvStem(b *testing.B) { benchConv(b, 3, 64, 7, 1) }
