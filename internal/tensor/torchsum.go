package tensor

// torchSum reproduces the order of float32 additions of PyTorch 1.13's CPU
// sum (aten/src/ATen/native/cpu/SumKernel.cpp, cascade_sum, single thread)
// over the reduced dims of a contiguous tensor, so that the quantized mean's
// reference path (dequantize, sum, divide, quantize) matches torch bit for
// bit. Float addition is not associative, and a mean that lands within an
// ulp of a .5 step is common for small groups of quantized values, so the
// order matters.
//
// The structure mirrors torch: TensorIterator puts the reduced dims first
// (by increasing stride), then the kept dims, coalesces adjacent dims that
// are contiguous for both input and output, and calls a 2-D loop on the
// first two dims for every index of the others; the loop picks one of four
// summation strategies, all built from multiRowSum (a cascade of partial
// sums) and rowSum (four interleaved partial sums). vecWidth is the number
// of float32 lanes of the Vectorized type torch was built for and dispatches
// to: the goldens show 8 lanes (the AVX2 kernels) for Debian's torch 1.13
// on this machine ([6 40] summed over dim 0 differs between 8 and 16).
const vecWidth = 8

type iterDim struct {
	size      int
	in, out   int // strides in elements
	reduction bool
}

// torchSum returns the sums, one per kept index in row-major order of the
// kept dims.
func torchSum(x []float32, shape []int, red []bool) []float32 {
	st := Strides(shape)
	outN := 1
	outSt := make([]int, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		if !red[i] {
			outSt[i] = outN
			outN *= shape[i]
		}
	}
	out := make([]float32, outN)
	// Dims from fastest to slowest as TensorIterator orders them.
	var dims []iterDim
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] == 1 {
			continue
		}
		dims = append(dims, iterDim{shape[i], st[i], outSt[i], red[i]})
	}
	// Stable insertion sort: reduced dims first, then by input stride.
	for i := 1; i < len(dims); i++ {
		for j := i; j > 0; j-- {
			a, b := dims[j-1], dims[j]
			swap := false
			if a.reduction != b.reduction {
				swap = b.reduction
			} else if a.in > b.in {
				swap = true
			}
			if !swap {
				break
			}
			dims[j-1], dims[j] = b, a
		}
	}
	// Coalesce neighbours that are contiguous for input and output.
	var co []iterDim
	for _, d := range dims {
		if n := len(co); n > 0 {
			p := co[n-1]
			if p.in*p.size == d.in && p.out*p.size == d.out {
				co[n-1] = iterDim{p.size * d.size, p.in, p.out, p.reduction}
				continue
			}
		}
		co = append(co, d)
	}
	if len(co) == 0 || !co[0].reduction {
		// Every reduced dim has size 1: torch's "not a true reduction"
		// case adds each element to its zero-filled output.
		for i, v := range x {
			out[i] += v
		}
		return out
	}
	for len(co) < 2 {
		co = append(co, iterDim{size: 1})
	}
	d0, d1 := co[0], co[1]
	rest := co[2:]
	idx := make([]int, len(rest))
	for {
		inBase, outBase := 0, 0
		for k, d := range rest {
			inBase += idx[k] * d.in
			outBase += idx[k] * d.out
		}
		loop2d(out, outBase, x, inBase, d0, d1)
		k := 0
		for ; k < len(rest); k++ {
			idx[k]++
			if idx[k] < rest[k].size {
				break
			}
			idx[k] = 0
		}
		if k == len(rest) {
			break
		}
	}
	return out
}

// loop2d is cascade_sum's 2-D loop. dim 0 is always a reduced dim here
// (the quantized mean's reference path only runs when some dim is
// reduced), so torch's "move reduction to the first dim" swap and its
// not-a-reduction case do not arise.
func loop2d(out []float32, ob int, x []float32, ib int, d0, d1 iterDim) {
	size0, size1 := d0.size, d1.size
	in0, in1 := d0.in, d1.in
	ostr := d1.out
	switch {
	case in0 == 1 && size0 >= vecWidth:
		// vectorized_inner_sum
		vecSize := size0 / vecWidth
		for j := 0; j < size1; j++ {
			row := ib + j*in1
			lanes := make([]float32, vecWidth)
			for l := range lanes {
				lanes[l] = rowSum(x, row+l, vecWidth, vecSize)
			}
			var acc float32
			for k := vecSize * vecWidth; k < size0; k++ {
				acc += x[row+k]
			}
			for _, v := range lanes {
				acc += v
			}
			out[ob+j*ostr] += acc
		}
	case in1 == 1 && size1 >= vecWidth:
		// vectorized_outer_sum: blocks of 4 vectors with multiRowSum, then
		// single vectors and the scalar tail with rowSum.
		j := 0
		for ; j+4*vecWidth <= size1; j += 4 * vecWidth {
			for c := j; c < j+4*vecWidth; c++ {
				out[ob+c*ostr] += multiRowSum(x, ib+c, in0, size0)
			}
		}
		for ; j < size1; j++ {
			out[ob+j*ostr] += rowSum(x, ib+j, in0, size0)
		}
	case in0 < in1:
		// scalar_inner_sum
		for j := 0; j < size1; j++ {
			out[ob+j*ostr] += rowSum(x, ib+j*in1, in0, size0)
		}
	default:
		// scalar_outer_sum: groups of 4 columns with multiRowSum, the
		// remaining columns with rowSum.
		j := 0
		for ; j+3 < size1; j += 4 {
			for c := j; c < j+4; c++ {
				out[ob+c*ostr] += multiRowSum(x, ib+c*in1, in0, size0)
			}
		}
		for ; j < size1; j++ {
			out[ob+j*ostr] += rowSum(x, ib+j*in1, in0, size0)
		}
	}
}

// multiRowSum is torch's multi_row_sum for one column: a sum of size
// elements (stride apart) with four levels of partial sums, each level
// taking over the one below every 2^levelPower elements.
func multiRowSum(x []float32, base, stride, size int) float32 {
	const numLevels = 4
	levelPower := max(4, ceilLog2(size)/numLevels)
	levelStep := 1 << levelPower
	levelMask := levelStep - 1
	var acc [numLevels]float32
	i := 0
	for i+levelStep <= size {
		for j := 0; j < levelStep; j, i = j+1, i+1 {
			acc[0] += x[base+i*stride]
		}
		for j := 1; j < numLevels; j++ {
			acc[j] += acc[j-1]
			acc[j-1] = 0
			mask := levelMask << (j * levelPower)
			if i&mask != 0 {
				break
			}
		}
	}
	for ; i < size; i++ {
		acc[0] += x[base+i*stride]
	}
	for j := 1; j < numLevels; j++ {
		acc[0] += acc[j]
	}
	return acc[0]
}

// rowSum is torch's row_sum: four interleaved partial sums (elements
// 4g+k go to partial k, through multiRowSum), the leftover elements added
// to partial 0, then the partials folded left to right.
func rowSum(x []float32, base, stride, size int) float32 {
	const ilp = 4
	sizeILP := size / ilp
	var p [ilp]float32
	for k := range p {
		p[k] = multiRowSum(x, base+k*stride, stride*ilp, sizeILP)
	}
	for i := sizeILP * ilp; i < size; i++ {
		p[0] += x[base+i*stride]
	}
	for k := 1; k < ilp; k++ {
		p[0] += p[k]
	}
	return p[0]
}

// ceilLog2 is c10's CeilLog2 for size >= 1 (0 for size <= 1).
func ceilLog2(n int) int {
	if n <= 1 {
		return 0
	}
	l := 0
	for v := n - 1; v > 0; v >>= 1 {
		l++
	}
	return l
}
