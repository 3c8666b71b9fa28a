package basic

import (
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// benchOp times one kernel on a [1,32,112,112] activation (MobileNetV2's
// largest), single thread; SetBytes counts the float input.
func benchOp(b *testing.B, op string, opset int64, attrs []*graph.Attribute, extra ...*tensor.Tensor) {
	x := make([]float32, 32*112*112)
	for i := range x {
		x[i] = float32(i%13) - 6
	}
	in := append([]*tensor.Tensor{tensor.FromFloat32([]int{1, 32, 112, 112}, x)}, extra...)
	k, err := kernel(op, opset, attrs, in, 1)
	if err != nil {
		b.Fatal(err)
	}
	ctx := &runtime.Context{Threads: 1}
	b.SetBytes(int64(4 * len(x)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := k.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRelu(b *testing.B) { benchOp(b, "Relu", 14, nil) }
func BenchmarkClip(b *testing.B) {
	benchOp(b, "Clip", 13, nil, tensor.Scalar(0), tensor.Scalar(6))
}
func BenchmarkAddSame(b *testing.B) {
	benchOp(b, "Add", 14, nil, tensor.FromFloat32([]int{1, 32, 112, 112}, make([]float32, 32*112*112)))
}
func BenchmarkAddChannel(b *testing.B) {
	benchOp(b, "Add", 14, nil, tensor.FromFloat32([]int{32, 1, 1}, make([]float32, 32)))
}
func BenchmarkSigmoid(b *testing.B)   { benchOp(b, "Sigmoid", 13, nil) }
func BenchmarkHardSwish(b *testing.B) { benchOp(b, "HardSwish", 14, nil) }
func BenchmarkSoftmax(b *testing.B) {
	benchOp(b, "Softmax", 13, []*graph.Attribute{graph.IntAttr("axis", 1)})
}
func BenchmarkTranspose(b *testing.B) {
	benchOp(b, "Transpose", 13, []*graph.Attribute{graph.IntsAttr("perm", []int64{0, 2, 3, 1})})
}

// BenchmarkTransposeNCHWToNHWC compares the tiled and the row-by-row
// strided copy on [1,32,112,112] -> [1,112,112,32].
func BenchmarkTransposeNCHWToNHWC(b *testing.B) {
	src := make([]float32, 32*112*112)
	dst := make([]float32, len(src))
	shape, strides := mergeDims([]int{1, 112, 112, 32}, []int{0, 112, 1, 112 * 112})
	for _, c := range []struct {
		name string
		f    func(dst, src []float32, base int, shape, strides []int)
	}{{"rows", rowCopy[float32]}, {"tiled", tiledCopy[float32]}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(src)))
			for i := 0; i < b.N; i++ {
				c.f(dst, src, 0, shape, strides)
			}
		})
	}
}
