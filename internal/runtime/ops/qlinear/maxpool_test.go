package qlinear

import (
	"fmt"
	"github.com/qtool/qtool/internal/simd/q8"
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// TestMaxPool2dDefinition checks com.qtool MaxPool2d against a direct loop
// over the ONNX definition (max of the window's in-image pixels, output
// size by floor or ceil with the last window dropped when it starts in the
// end padding) on random shapes, strides, pads and both integer types.
func TestMaxPool2dDefinition(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for it := 0; it < 300; it++ {
		kh, kw := 1+rng.Intn(4), 1+rng.Intn(4)
		sh, sw := 1+rng.Intn(3), 1+rng.Intn(3)
		pads := []int64{int64(rng.Intn(kh)), int64(rng.Intn(kw)), int64(rng.Intn(kh)), int64(rng.Intn(kw))}
		ceil := int64(rng.Intn(2))
		N, C, H, W := 1+rng.Intn(2), 1+rng.Intn(3), kh+rng.Intn(9), kw+rng.Intn(9)
		dt := tensor.Uint8
		if it%2 == 1 {
			dt = tensor.Int8
		}
		x := tensor.MustNew(dt, []int{N, C, H, W})
		for i := 0; i < x.Len(); i++ {
			v := rng.Intn(256)
			if dt == tensor.Uint8 {
				x.U8()[i] = uint8(v)
			} else {
				x.I8()[i] = int8(v - 128)
			}
		}
		n := &graph.Node{Name: "mp", OpType: "MaxPool2d", Domain: QtoolDomain, Inputs: []*graph.Value{{Name: "x"}}, Outputs: []*graph.Value{{Name: "y"}},
			Attrs: []*graph.Attribute{graph.IntsAttr("kernel_shape", []int64{int64(kh), int64(kw)}), graph.IntsAttr("strides", []int64{int64(sh), int64(sw)}),
				graph.IntsAttr("pads", pads), graph.IntAttr("ceil_mode", ceil)}}
		name := fmt.Sprintf("k%dx%d s%dx%d pads%v ceil%d in%v %v", kh, kw, sh, sw, pads, ceil, x.Shape, dt)
		k, err := newMaxPool2d(n, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := k.Run(&runtime.Context{}, []*tensor.Tensor{x})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		y := out[0]
		// Reference output size straight from the ONNX formula.
		size := func(in, k, s int, pb, pe int64) int {
			num := in + int(pb+pe) - k
			o := num/s + 1
			if ceil == 1 {
				o = (num+s-1)/s + 1
				if (o-1)*s >= in+int(pb) {
					o--
				}
			}
			return o
		}
		OH, OW := size(H, kh, sh, pads[0], pads[2]), size(W, kw, sw, pads[1], pads[3])
		if !tensor.SameShape(y.Shape, []int{N, C, OH, OW}) {
			t.Fatalf("%s: shape %v, want %v", name, y.Shape, []int{N, C, OH, OW})
		}
		get := func(tt *tensor.Tensor, i int) int {
			if tt.DType == tensor.Uint8 {
				return int(tt.U8()[i])
			}
			return int(tt.I8()[i])
		}
		for p := 0; p < N*C; p++ {
			for oh := 0; oh < OH; oh++ {
				for ow := 0; ow < OW; ow++ {
					best, any := -1000, false
					for i := 0; i < kh; i++ {
						for j := 0; j < kw; j++ {
							r, c := oh*sh-int(pads[0])+i, ow*sw-int(pads[1])+j
							if r < 0 || c < 0 || r >= H || c >= W {
								continue
							}
							any = true
							best = max(best, get(x, (p*H+r)*W+c))
						}
					}
					if !any {
						t.Fatalf("%s: empty window", name)
					}
					if g := get(y, (p*OH+oh)*OW+ow); g != best {
						t.Fatalf("%s: y[%d,%d,%d] = %d, want %d", name, p, oh, ow, g, best)
					}
				}
			}
		}
		// channels_last on the same data (more channels, so the SWAR runs
		// have whole words and tails) equals the checked NCHW result.
		xl := x
		if it%3 == 0 {
			C = 8 + rng.Intn(20)
			xl = tensor.MustNew(dt, []int{N, C, H, W})
			for i := 0; i < xl.Len(); i++ {
				if dt == tensor.Uint8 {
					xl.U8()[i] = uint8(rng.Intn(256))
				} else {
					xl.I8()[i] = int8(rng.Intn(256) - 128)
				}
			}
			outs, err := k.Run(&runtime.Context{}, []*tensor.Tensor{xl})
			if err != nil {
				t.Fatal(err)
			}
			y = outs[0]
		}
		n.Attrs = append(n.Attrs, graph.IntAttr("channels_last", 1))
		kl, err := newMaxPool2d(n, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		outs, err := kl.Run(&runtime.Context{Threads: 2}, []*tensor.Tensor{naiveMoveChannels(xl, true)})
		if err != nil {
			t.Fatalf("%s channels_last: %v", name, err)
		}
		if err := exactEqual(naiveMoveChannels(outs[0], false), y); err != nil {
			t.Fatalf("%s channels_last: %v", name, err)
		}
	}
}

func TestMaxPool2dBadInput(t *testing.T) {
	mk := func(attrs ...*graph.Attribute) *graph.Node {
		return &graph.Node{Name: "mp", OpType: "MaxPool2d", Domain: QtoolDomain, Inputs: []*graph.Value{{Name: "x"}}, Outputs: []*graph.Value{{Name: "y"}}, Attrs: attrs}
	}
	for _, n := range []*graph.Node{
		mk(),
		mk(graph.IntsAttr("kernel_shape", []int64{3})),
		mk(graph.IntsAttr("kernel_shape", []int64{3, 0})),
		mk(graph.IntsAttr("kernel_shape", []int64{3, 3}), graph.IntsAttr("pads", []int64{3, 0, 0, 0})),
		mk(graph.IntsAttr("kernel_shape", []int64{3, 3}), graph.IntsAttr("strides", []int64{0, 1})),
	} {
		if _, err := newMaxPool2d(n, 1); err == nil {
			t.Errorf("%v: no error", n.Attrs)
		}
	}
	k, err := newMaxPool2d(mk(graph.IntsAttr("kernel_shape", []int64{3, 3})), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*tensor.Tensor{
		tensor.MustNew(tensor.Uint8, []int{1, 2, 3}),
		tensor.MustNew(tensor.Float32, []int{1, 1, 3, 3}),
		tensor.MustNew(tensor.Uint8, []int{1, 1, 2, 2}), // smaller than the kernel: empty output
	} {
		out, err := k.Run(&runtime.Context{}, []*tensor.Tensor{x})
		if err == nil && out[0].Len() != 0 {
			t.Errorf("%v %v: no error", x.DType, x.Shape)
		}
	}
}

// BenchmarkMaxPool2d is ResNet's stem pool: 64x112x112 uint8, 3x3 stride 2, pad 1.
func BenchmarkMaxPool2d(b *testing.B) {
	n := &graph.Node{Name: "mp", OpType: "MaxPool2d", Domain: QtoolDomain, Inputs: []*graph.Value{{Name: "x"}}, Outputs: []*graph.Value{{Name: "y"}},
		Attrs: []*graph.Attribute{graph.IntsAttr("kernel_shape", []int64{3, 3}), graph.IntsAttr("strides", []int64{2, 2}), graph.IntsAttr("pads", []int64{1, 1, 1, 1})}}
	k, err := newMaxPool2d(n, 1)
	if err != nil {
		b.Fatal(err)
	}
	x := tensor.MustNew(tensor.Uint8, []int{1, 64, 112, 112})
	rng := rand.New(rand.NewSource(1))
	for i := range x.U8() {
		x.U8()[i] = uint8(rng.Intn(256))
	}
	ctx := &runtime.Context{}
	b.SetBytes(int64(x.Len()))
	for i := 0; i < b.N; i++ {
		if _, err := k.Run(ctx, []*tensor.Tensor{x}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMaxBytesAllPairs runs q8.MaxBytes as MaxPool calls it on every (a, b)
// pair, in every byte lane (40 bytes: the 32-byte vector and the tail), for
// both orders.
func TestMaxBytesAllPairs(t *testing.T) {
	for _, flip := range []uint64{0, 0x8080808080808080} {
		dst, src := make([]byte, 40), make([]byte, 40)
		for a := 0; a < 256; a++ {
			for b := 0; b < 256; b++ {
				for i := range dst {
					dst[i], src[i] = byte(a), byte(b)
					if i%3 == 1 {
						dst[i], src[i] = byte(b), byte(a)
					}
				}
				q8.MaxBytes(dst, src, flip != 0)
				want := byte(max(a, b))
				if flip != 0 {
					want = byte(max(int8(a), int8(b)))
				}
				for i, v := range dst {
					if v != want {
						t.Fatalf("flip %x: max(%d, %d) lane %d = %d, want %d", flip, a, b, i, v, want)
					}
				}
			}
		}
	}
}
