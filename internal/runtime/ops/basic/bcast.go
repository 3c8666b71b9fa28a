package basic

import (
	"fmt"

	"github.com/qtool/qtool/internal/runtime"
)

// bcast describes numpy broadcasting of several inputs to one output shape,
// with adjacent dims merged where every input treats them alike, so that
// the innermost loop is as long as possible: [N,C,H,W] + [1,C,1,1] becomes
// rows of H·W elements with a per-row scalar on the right.
type bcast struct {
	out     []int   // output shape (uncollapsed)
	n       int     // output elements
	dims    []int   // collapsed dims, innermost last
	strides [][]int // per input, per collapsed dim (0 where broadcast)
	inner   int     // length of the innermost collapsed dim
}

func broadcastShape(shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case d == o || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
			}
		}
	}
	return out, nil
}

func newBcast(shapes ...[]int) (*bcast, error) {
	out, err := broadcastShape(shapes...)
	if err != nil {
		return nil, err
	}
	b := &bcast{out: out, n: prod(out)}
	k := len(shapes)
	// full[i][d]: input i spans output dim d (else it repeats along it).
	type col struct {
		size int
		full []bool
	}
	var cols []col
	for d, size := range out {
		if size == 1 {
			continue
		}
		c := col{size: size, full: make([]bool, k)}
		for i, s := range shapes {
			off := len(out) - len(s)
			c.full[i] = d >= off && s[d-off] == size
		}
		if m := len(cols); m > 0 {
			same := true
			for i := range c.full {
				if cols[m-1].full[i] != c.full[i] {
					same = false
					break
				}
			}
			if same {
				cols[m-1].size *= size
				continue
			}
		}
		cols = append(cols, c)
	}
	if len(cols) == 0 {
		cols = []col{{size: 1, full: make([]bool, k)}}
		for i := range cols[0].full {
			cols[0].full[i] = true
		}
	}
	b.dims = make([]int, len(cols))
	for j, c := range cols {
		b.dims[j] = c.size
	}
	b.strides = make([][]int, k)
	for i := 0; i < k; i++ {
		st := make([]int, len(cols))
		acc := 1
		for j := len(cols) - 1; j >= 0; j-- {
			if cols[j].full[i] {
				st[j] = acc
				acc *= cols[j].size
			}
		}
		b.strides[i] = st
	}
	b.inner = b.dims[len(b.dims)-1]
	return b, nil
}

// rows calls fn for every innermost row of the output, over threads: off is
// the output offset of the row, offs[i] input i's offset, and step(i)
// (b.strides[i][last]) is 1 or 0. Row order within a call is ascending.
func (b *bcast) rows(ctx *runtime.Context, fn func(off int, offs []int)) {
	nrows := b.n / max(b.inner, 1)
	if b.n == 0 {
		return
	}
	g := max(1, grain/max(b.inner, 1))
	outer := b.dims[:len(b.dims)-1]
	ctx.Parallel(nrows, g, func(lo, hi int) {
		k := len(b.strides)
		offs := make([]int, k)
		idx := make([]int, len(outer))
		// Position the odometer at row lo.
		r := lo
		for d := len(outer) - 1; d >= 0; d-- {
			idx[d] = r % outer[d]
			r /= outer[d]
		}
		for i := 0; i < k; i++ {
			o := 0
			for d := range outer {
				o += idx[d] * b.strides[i][d]
			}
			offs[i] = o
		}
		for row := lo; row < hi; row++ {
			fn(row*b.inner, offs)
			for d := len(outer) - 1; d >= 0; d-- {
				idx[d]++
				for i := 0; i < k; i++ {
					offs[i] += b.strides[i][d]
				}
				if idx[d] < outer[d] {
					break
				}
				for i := 0; i < k; i++ {
					offs[i] -= idx[d] * b.strides[i][d]
				}
				idx[d] = 0
			}
		}
	})
}

// step is input i's stride along the innermost dim (0 or 1).
func (b *bcast) step(i int) int { return b.strides[i][len(b.dims)-1] }
