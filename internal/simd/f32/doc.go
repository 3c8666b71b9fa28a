// Package f32 holds the float32 hot loops of the runtime: a packed,
// cache-blocked SGEMM and a depthwise convolution, each with amd64 assembly
// (AVX-512, AVX2+FMA) and a pure-Go twin. It imports nothing of ours but
// internal/simd/cpu.
//
// # GEMM
//
// All matrices are row-major with explicit leading dimensions.
//
//	Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
//
// is BLAS sgemm: C = alpha·op(A)·op(B) + beta·C; beta == 0 never reads C.
//
// For a constant operand (conv or Gemm weights) pack it once at load time:
//
//	pa := PackA(transA, m, k, w, ldw)                  // W is the left operand (Cout×K)
//	SgemmPackedA(pa, m0, m1, n, b, ldb, c, ldc, ep)    // rows m0..m1 of C = W·B
//
//	pb := PackB(transB, k, n, w, ldw)                  // W is the right operand (K×N)
//	SgemmPackedB(m, a, lda, pb, n0, n1, c, ldc, ep)    // columns n0..n1 of C = A·W
//
// The Epilogue runs on each output element once its dot product is done,
// while the tile is in cache:
//
//	c[i][j] = act(dot + (c[i][j] if Accumulate) + RowBias[i] + ColBias[j])
//
// act is ActNone, ActRelu, ActClip (Min..Max) or ActLeakyRelu (Alpha). For a
// conv, put the bias in RowBias (one per output channel); to fuse a residual
// Add, copy the residual into C and set Accumulate.
//
// Threads belong to the caller: split rows of a PackedA call, or columns of a
// PackedB call, between goroutines. Each element's value is bit-identical
// whatever the split, and elements outside the range are neither read nor
// written. Splitting at multiples of PackedA.RowAlign / PackedB.ColAlign
// avoids computing the boundary tile twice. The assembly and pure-Go paths
// agree only within rounding (FMA versus separate multiply and add).
//
// Packed operands record the kernel they were packed for, so they stay valid
// if the kernel selection changes. Bad dimensions or short slices panic: the
// assembly does no bounds checks, so callers validate shapes first.
//
// # Depthwise convolution
//
//	DepthwiseConv2D(&DWShape{C, Mult, InH, InW, KH, KW, StrideH, StrideW,
//	    DilH, DilW, PadT, PadL, OutH, OutW}, x, w, c0, c1, y, ep)
//
// computes output channels c0..c1 of one NCHW image (x is C/Mult × InH × InW,
// w is C × KH × KW, y is C × OutH × OutW, all dense); any kernel size, stride,
// dilation and pads (bottom/right pads follow from OutH/OutW). The same Epilogue applies,
// with RowBias as the per-channel bias. Channel splits are bit-identical;
// loop over the batch with offset slices.
//
// # Kernel selection
//
// The best kernel the CPU supports is chosen at start-up; QTOOL_ISA (see
// internal/simd/cpu) pins a lower one: generic, avx2 or avx512. ISA reports
// the choice.
package f32
