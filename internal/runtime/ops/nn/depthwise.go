package nn

import "github.com/qtool/qtool/internal/runtime"

// depthwise2d runs 2-D convolutions whose groups have one input channel
// (MobileNet's depthwise layers) with f32.DepthwiseConv2D: im2col would copy
// every input kSize times for GEMMs of a single row. Threads split the
// output channels of each image; f32's results do not depend on the split.
// mult is the channel multiplier (output channels per input channel).
func depthwise2d(ctx *runtime.Context, g *geom, x, w, bias, y []float32, N, C, mult int, ep epilogue) {
	M := C * mult
	s := &dwShape{C: M, Mult: mult, InH: g.in[0], InW: g.in[1], KH: g.k[0], KW: g.k[1],
		StrideH: g.stride[0], StrideW: g.stride[1], DilH: g.dil[0], DilW: g.dil[1],
		PadT: g.padBegin[0], PadL: g.padBegin[1], OutH: g.out[0], OutW: g.out[1]}
	ep.RowBias = bias
	for img := 0; img < N; img++ {
		xi := x[img*C*g.inSize : (img+1)*C*g.inSize]
		yi := y[img*M*g.outSize : (img+1)*M*g.outSize]
		ctx.Parallel(M, max(1, 8192/max(1, g.outSize*g.kSize)), func(c0, c1 int) {
			depthwiseConv(s, xi, w, c0, c1, yi, ep)
		})
	}
}
