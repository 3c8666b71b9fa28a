package basic

import (
	"fmt"
)

// stridedCopy writes dst (row-major with the given shape) from src, where
// output index (i0, i1, ...) reads src[base + Σ ik·strides[k]]. Strides may
// be zero (broadcast) or negative (reversed slices). It is the one loop
// behind Transpose, Slice and Expand.
func stridedCopy[T any](dst, src []T, base int, shape, strides []int) {
	n := len(dst)
	if n == 0 {
		return
	}
	r := len(shape)
	if r == 0 {
		dst[0] = src[base]
		return
	}
	if r >= 2 && strides[r-2] == 1 && strides[r-1] > 1 && shape[r-1] >= 8 && shape[r-2] >= 8 {
		tiledCopy(dst, src, base, shape, strides)
		return
	}
	rowCopy(dst, src, base, shape, strides)
}

// rowCopy is stridedCopy one output row at a time.
func rowCopy[T any](dst, src []T, base int, shape, strides []int) {
	n := len(dst)
	r := len(shape)
	inner := shape[r-1]
	is := strides[r-1]
	idx := make([]int, r-1)
	off := base
	for o := 0; o < n; o += inner {
		row := dst[o : o+inner]
		switch is {
		case 1:
			copy(row, src[off:off+inner])
		case 0:
			v := src[off]
			for j := range row {
				row[j] = v
			}
		default:
			p := off
			for j := range row {
				row[j] = src[p]
				p += is
			}
		}
		for d := r - 2; d >= 0; d-- {
			idx[d]++
			off += strides[d]
			if idx[d] < shape[d] {
				break
			}
			off -= idx[d] * strides[d]
			idx[d] = 0
		}
	}
}

// mergeDims joins adjacent dims that the source walks contiguously (the
// outer stride is the inner one times the inner size) and drops size-1
// dims, so that the inner loop of stridedCopy is as long as possible.
func mergeDims(shape, strides []int) ([]int, []int) {
	var sh, st []int
	for i, d := range shape {
		if d == 1 {
			continue
		}
		if k := len(sh) - 1; k >= 0 && st[k] == strides[i]*d {
			sh[k] *= d
			st[k] = strides[i]
			continue
		}
		sh = append(sh, d)
		st = append(st, strides[i])
	}
	if len(sh) == 0 {
		return []int{1}, []int{0}
	}
	return sh, st
}

// stridedBytes runs stridedCopy on raw bytes of element size es.
func stridedBytes(dst, src []byte, es, base int, shape, strides []int) error {
	for _, d := range shape {
		if d == 0 {
			return nil
		}
	}
	shape, strides = mergeDims(shape, strides)
	switch es {
	case 1:
		stridedCopy(dst, src, base, shape, strides)
	case 2:
		stridedCopy(as[uint16](dst), as[uint16](src), base, shape, strides)
	case 4:
		stridedCopy(as[uint32](dst), as[uint32](src), base, shape, strides)
	case 8:
		stridedCopy(as[uint64](dst), as[uint64](src), base, shape, strides)
	default:
		return fmt.Errorf("element size %d not supported", es)
	}
	return nil
}

func stridesOf(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// tileIndex fills dst (shape out) with src (shape in) repeated: output
// index i reads input index i mod in along every axis.
func tileT[T any](dst, src []T, in, out []int) {
	r := len(out)
	if len(dst) == 0 {
		return
	}
	if r == 0 {
		dst[0] = src[0]
		return
	}
	ist := stridesOf(in)
	idx := make([]int, r)
	for o := range dst {
		off := 0
		for d := 0; d < r; d++ {
			off += (idx[d] % in[d]) * ist[d]
		}
		dst[o] = src[off]
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < out[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func tileBytes(dst, src []byte, es int, in, out []int) error {
	switch es {
	case 1:
		tileT(dst, src, in, out)
	case 2:
		tileT(as[uint16](dst), as[uint16](src), in, out)
	case 4:
		tileT(as[uint32](dst), as[uint32](src), in, out)
	case 8:
		tileT(as[uint64](dst), as[uint64](src), in, out)
	default:
		return fmt.Errorf("element size %d not supported", es)
	}
	return nil
}

// tiledCopy handles the transposing case of stridedCopy, where the last two
// output dims are swapped in the source (NCHW <-> NHWC and the like): it
// moves blocks of tile×tile elements so that both sides stay in cache.
func tiledCopy[T any](dst, src []T, base int, shape, strides []int) {
	const tile = 16
	r := len(shape)
	rows, cols := shape[r-2], shape[r-1]
	cs := strides[r-1] // source stride between output columns
	outer := shape[:r-2]
	idx := make([]int, len(outer))
	off := base
	for o := 0; o < len(dst); o += rows * cols {
		for i0 := 0; i0 < rows; i0 += tile {
			i1 := min(i0+tile, rows)
			for j0 := 0; j0 < cols; j0 += tile {
				j1 := min(j0+tile, cols)
				for i := i0; i < i1; i++ {
					d := dst[o+i*cols+j0 : o+i*cols+j1]
					p := off + i + j0*cs
					for j := range d {
						d[j] = src[p]
						p += cs
					}
				}
			}
		}
		for d := len(outer) - 1; d >= 0; d-- {
			idx[d]++
			off += strides[d]
			if idx[d] < outer[d] {
				break
			}
			off -= idx[d] * strides[d]
			idx[d] = 0
		}
	}
}
