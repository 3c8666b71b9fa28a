package qlinear

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/simd/q8"
	"github.com/qtool/qtool/internal/tensor"
)

// naiveQLinearConv is QLinearConv straight from the ONNX definition: int64
// sums of (x−xz)(w−wz[oc]) over the window (padding contributes nothing),
// plus bias, then clamp(rint(float32(acc)·(sx·sw[oc]/sy)) + yz).
func naiveQLinearConv(x []int32, xs []int, w []int32, ws []int, group int, stride, dil, padB []int,
	xz int32, wz []int32, bias []int32, scale []float32, yz, lo, hi int32) ([]int32, []int) {
	nd := len(xs) - 2
	n, c, cout := xs[0], xs[1], ws[0]
	cin := ws[1]
	out := make([]int, nd)
	insz, ksz, osz := 1, 1, 1
	for d := 0; d < nd; d++ {
		out[d] = (xs[2+d]+2*padB[d]-dil[d]*(ws[2+d]-1)-1)/stride[d] + 1
		insz *= xs[2+d]
		ksz *= ws[2+d]
		osz *= out[d]
	}
	y := make([]int32, n*cout*osz)
	cg := cout / group
	for b := 0; b < n; b++ {
		for oc := 0; oc < cout; oc++ {
			g := oc / cg
			z := wz[0]
			if len(wz) > 1 {
				z = wz[oc]
			}
			for p := 0; p < osz; p++ {
				var acc int64
				for ci := 0; ci < cin; ci++ {
					for k := 0; k < ksz; k++ {
						lin, inside := 0, true
						pr, kr := p, k
						idx := make([]int, nd)
						for d := nd - 1; d >= 0; d-- {
							op := pr % out[d]
							pr /= out[d]
							kd := kr % ws[2+d]
							kr /= ws[2+d]
							idx[d] = op*stride[d] - padB[d] + kd*dil[d]
							if idx[d] < 0 || idx[d] >= xs[2+d] {
								inside = false
							}
						}
						if !inside {
							continue
						}
						for d := 0; d < nd; d++ {
							lin = lin*xs[2+d] + idx[d]
						}
						xv := int64(x[(b*c+g*cin+ci)*insz+lin]) - int64(xz)
						wv := int64(w[(oc*cin+ci)*ksz+k]) - int64(z)
						acc += xv * wv
					}
				}
				if bias != nil {
					acc += int64(bias[oc])
				}
				s := scale[0]
				if len(scale) > 1 {
					s = scale[oc]
				}
				v := int64(math.RoundToEven(float64(float32(int32(acc))*s))) + int64(yz)
				y[(b*cout+oc)*osz+p] = int32(min(max(v, int64(lo)), int64(hi)))
			}
		}
	}
	return y, append([]int{n, cout}, out...)
}

// TestRandomQLinearConv builds random convolutions (1-3 spatial dims,
// groups and depthwise, strides, dilations, padding, uint8/int8 data,
// symmetric and asymmetric per-channel weights, bias) and checks every q8
// path against the naive definition above, with 1 and 3 threads.
func TestRandomQLinearConv(t *testing.T) {
	rnd := rand.New(rand.NewSource(21))
	old := q8.ISA()
	defer q8.SetISA(old)
	for ci := 0; ci < 200; ci++ {
		nd := 1 + ci%3
		group := []int{1, 1, 2, 3}[rnd.Intn(4)]
		cin := 1 + rnd.Intn(6)
		mult := 1 + rnd.Intn(3)
		if ci%5 == 0 { // depthwise
			cin, mult, group = 1, 1, 2+rnd.Intn(20)
		}
		c, cout := cin*group, mult*group
		xs := []int{1 + rnd.Intn(2), c}
		ws := []int{cout, cin}
		stride, dil, pad := make([]int, nd), make([]int, nd), make([]int, nd)
		// Every third 2-D depthwise case is the MobileNet layer (3x3, pad
		// 1, equal strides) that q8.DWConv3x3 runs, up to 120 channels.
		mobile := ci%15 == 10 // 2-D (ci%3 == 1) and depthwise (ci%5 == 0)
		if mobile {
			group = 2 + rnd.Intn(119)
			c, cout = group, group
			xs[1], ws[0] = c, cout
		}
		for d := 0; d < nd; d++ {
			k := 1 + rnd.Intn(3)
			dil[d] = 1 + rnd.Intn(2)
			stride[d] = 1 + rnd.Intn(2)
			pad[d] = rnd.Intn(2)
			if mobile {
				k, dil[d], stride[d], pad[d] = 3, 1, 1+(ci/15)%2, 1
			}
			size := dil[d]*(k-1) + 1 + rnd.Intn([]int{12, 7, 4}[nd-1])
			xs = append(xs, size)
			ws = append(ws, k)
		}
		signed := ci%2 == 1
		dt := tensor.Uint8
		lo, hi := int32(0), int32(255)
		if signed {
			dt, lo, hi = tensor.Int8, -128, 127
		}
		xt := tensor.MustNew(dt, xs)
		wt := tensor.MustNew(tensor.Int8, ws)
		x32 := make([]int32, xt.Len())
		w32 := make([]int32, wt.Len())
		for i := range x32 {
			v := int32(rnd.Intn(256)) + lo
			x32[i] = v
			if signed {
				xt.I8()[i] = int8(v)
			} else {
				xt.U8()[i] = uint8(v)
			}
		}
		for i := range w32 {
			w32[i] = int32(rnd.Intn(256) - 128)
			wt.I8()[i] = int8(w32[i])
		}
		xz := int32(rnd.Intn(256)) + lo
		wz := make([]int32, cout)
		wzT := tensor.MustNew(tensor.Int8, []int{cout})
		if ci%4 == 3 { // asymmetric weights: the im2col path
			for i := range wz {
				wz[i] = int32(rnd.Intn(64) - 32)
				wzT.I8()[i] = int8(wz[i])
			}
		}
		scale := make([]float32, cout)
		sw := tensor.MustNew(tensor.Float32, []int{cout})
		sx, sy := float32(0.02), float32(0.05)
		for i := range scale {
			sw.F32()[i] = 0.001 + 0.004*rnd.Float32()
			scale[i] = sx * sw.F32()[i] / sy
		}
		bias := tensor.MustNew(tensor.Int32, []int{cout})
		for i := range bias.I32() {
			bias.I32()[i] = int32(rnd.Intn(2000) - 1000)
		}
		yz := int32(rnd.Intn(256)) + lo
		scalar := func(v int32) *tensor.Tensor {
			if signed {
				return &tensor.Tensor{DType: tensor.Int8, Shape: []int{}, Data: []int8{int8(v)}}
			}
			return &tensor.Tensor{DType: tensor.Uint8, Shape: []int{}, Data: []uint8{uint8(v)}}
		}
		in := []*tensor.Tensor{xt, tensor.Scalar(sx), scalar(xz), wt, sw, wzT, tensor.Scalar(sy), scalar(yz), bias}
		want, wantShape := naiveQLinearConv(x32, xs, w32, ws, group, stride, dil, pad, xz, wz, bias.I32(), scale, yz, lo, hi)
		pads := make([]int64, 2*nd)
		st, dl := make([]int64, nd), make([]int64, nd)
		for d := 0; d < nd; d++ {
			pads[d], pads[d+nd] = int64(pad[d]), int64(pad[d])
			st[d], dl[d] = int64(stride[d]), int64(dil[d])
		}
		name := fmt.Sprintf("case%d x%v w%v g%d s%v d%v p%v signed=%v", ci, xs, ws, group, stride, dil, pad, signed)
		for _, isa := range q8.ISAs() {
			if err := q8.SetISA(isa); err != nil {
				t.Fatal(err)
			}
			node := &graph.Node{OpType: "QLinearConv", Outputs: []*graph.Value{{Name: "y"}}, Attrs: []*graph.Attribute{
				{Name: "group", Type: graph.AttrInt, I: int64(group)},
				{Name: "pads", Type: graph.AttrInts, Ints: pads},
				{Name: "strides", Type: graph.AttrInts, Ints: st},
				{Name: "dilations", Type: graph.AttrInts, Ints: dl},
			}}
			node.Inputs = []*graph.Value{{Name: "x"}}
			for _, tt := range in[1:] {
				node.Inputs = append(node.Inputs, &graph.Value{Name: "c", Const: tt})
			}
			k, err := newQLinearConv(node, 13)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, threads := range []int{1, 3} {
				outs, err := k.Run(&runtime.Context{Threads: threads}, in)
				if err != nil {
					t.Fatalf("%s [%s]: %v", name, isa, err)
				}
				got, err := outs[0].AsFloat64()
				if err != nil {
					t.Fatal(err)
				}
				if !tensor.SameShape(outs[0].Shape, wantShape) {
					t.Fatalf("%s [%s]: shape %v, want %v", name, isa, outs[0].Shape, wantShape)
				}
				for i := range want {
					if int32(got[i]) != want[i] {
						t.Fatalf("%s [%s, %d threads]: y[%d] = %v, want %d", name, isa, threads, i, got[i], want[i])
					}
				}
			}
			// The channels-last kernel on the same case, with the layout
			// moved by the naive loops below.
			msNode := *node
			msNode.Domain = MicrosoftDomain
			msNode.Attrs = append(slices.Clone(node.Attrs), graph.IntAttr("channels_last", 1))
			mk, err := newMSQLinearConv(&msNode, 1)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			nin := append([]*tensor.Tensor{naiveMoveChannels(xt, true)}, in[1:]...)
			outs, err := mk.Run(&runtime.Context{Threads: 2}, nin)
			if err != nil {
				t.Fatalf("%s [%s] channels_last: %v", name, isa, err)
			}
			got, err := naiveMoveChannels(outs[0], false).AsFloat64()
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if int32(got[i]) != want[i] {
					t.Fatalf("%s [%s] channels_last: y[%d] = %v, want %d", name, isa, i, got[i], want[i])
				}
			}
		}
	}
}

// naiveMoveChannels moves axis 1 of an 8-bit [N, C, S…] tensor last (or
// axis rank-1 to position 1) element by element.
func naiveMoveChannels(x *tensor.Tensor, toLast bool) *tensor.Tensor {
	r := x.Rank()
	shape := make([]int, r)
	shape[0] = x.Shape[0]
	var c int
	if toLast {
		c = x.Shape[1]
		copy(shape[1:], x.Shape[2:])
		shape[r-1] = c
	} else {
		c = x.Shape[r-1]
		shape[1] = c
		copy(shape[2:], x.Shape[1:r-1])
	}
	s := 1
	for _, d := range x.Shape[1:] {
		s *= d
	}
	if c > 0 {
		s /= c
	}
	y := tensor.MustNew(x.DType, shape)
	var src, dst []uint8
	if x.DType == tensor.Int8 {
		src, dst = u8View(x.I8()), u8View(y.I8())
	} else {
		src, dst = x.U8(), y.U8()
	}
	for b := 0; b < x.Shape[0]; b++ {
		for ch := 0; ch < c; ch++ {
			for p := 0; p < s; p++ {
				if toLast {
					dst[(b*s+p)*c+ch] = src[(b*c+ch)*s+p]
				} else {
					dst[(b*c+ch)*s+p] = src[(b*s+p)*c+ch]
				}
			}
		}
	}
	return y
}

// TestLayoutTranspose checks com.qtool Transpose against the naive move on
// ragged sizes (the SIMD transpose works in 16x16 tiles) and that it
// refuses other permutations.
func TestLayoutTranspose(t *testing.T) {
	rnd := rand.New(rand.NewSource(3))
	for _, shape := range [][]int{{1, 3, 5, 7}, {2, 17, 9, 4}, {1, 64, 6, 6}, {2, 5, 33}, {1, 2, 3, 4, 19}, {1, 0, 3, 3}} {
		for _, dt := range []tensor.DType{tensor.Uint8, tensor.Int8} {
			x := tensor.MustNew(dt, shape)
			if dt == tensor.Int8 {
				for i := range x.I8() {
					x.I8()[i] = int8(rnd.Intn(256) - 128)
				}
			} else {
				for i := range x.U8() {
					x.U8()[i] = uint8(rnd.Intn(256))
				}
			}
			r := len(shape)
			toLast := []int64{0}
			for i := 2; i < r; i++ {
				toLast = append(toLast, int64(i))
			}
			toLast = append(toLast, 1)
			toFirst := []int64{0, int64(r - 1)}
			for i := 1; i < r-1; i++ {
				toFirst = append(toFirst, int64(i))
			}
			run := func(perm []int64, in *tensor.Tensor) *tensor.Tensor {
				k, err := newLayoutTranspose(&graph.Node{OpType: "Transpose", Domain: QtoolDomain, Attrs: []*graph.Attribute{graph.IntsAttr("perm", perm)}}, 1)
				if err != nil {
					t.Fatal(err)
				}
				out, err := k.Run(&runtime.Context{Threads: 1}, []*tensor.Tensor{in})
				if err != nil {
					t.Fatal(err)
				}
				return out[0]
			}
			nhwc := run(toLast, x)
			if err := exactEqual(nhwc, naiveMoveChannels(x, true)); err != nil {
				t.Fatalf("%v %v to channels-last: %v", shape, dt, err)
			}
			if err := exactEqual(run(toFirst, nhwc), x); err != nil {
				t.Fatalf("%v %v round trip: %v", shape, dt, err)
			}
		}
	}
	for _, perm := range [][]int64{{0, 1, 2, 3}, {1, 0}, {0, 2, 1, 3}, {0, 3, 2, 1}} {
		if _, err := newLayoutTranspose(&graph.Node{OpType: "Transpose", Attrs: []*graph.Attribute{graph.IntsAttr("perm", perm)}}, 1); err == nil {
			t.Errorf("perm %v accepted", perm)
		}
	}
	k, _ := newLayoutTranspose(&graph.Node{OpType: "Transpose", Attrs: []*graph.Attribute{graph.IntsAttr("perm", []int64{0, 2, 3, 1})}}, 1)
	if _, err := k.Run(&runtime.Context{Threads: 1}, []*tensor.Tensor{tensor.MustNew(tensor.Uint8, []int{2, 3})}); err == nil {
		t.Error("rank-2 input accepted for a rank-4 perm")
	}
}
