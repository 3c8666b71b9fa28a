package basic

import (
	"fmt"
	"sort"
	"strings"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

func init() {
	reg("Einsum", append([]tensor.DType{tensor.Float16}, numericTypes...), newEinsum)
}

// maxEinsumWork bounds the naive evaluation below (one multiply-add per
// combination of all labels).
const maxEinsumWork = 1 << 28

// newEinsum evaluates the equation directly: every combination of label
// values, the product of the inputs' elements added into the output. It is
// meant for the small contractions exported models use around their real
// work, not as a GEMM.
func newEinsum(n *graph.Node, _ int64) (runtime.Kernel, error) {
	eq, err := n.AttrString("equation", "")
	if err != nil {
		return nil, err
	}
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(n.Inputs) {
		return nil, fmt.Errorf("equation %q has %d operands, the node %d inputs", eq, len(terms), len(n.Inputs))
	}
	return f16wrap(func(ctx *runtime.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := need(in, len(terms)); err != nil {
			return nil, err
		}
		// Ellipsis dims become labels '0', '1', ... aligned from the right.
		ell := 0
		for i, t := range terms {
			if strings.Contains(t, "...") {
				ell = max(ell, len(in[i].Shape)-(len(t)-3))
			}
		}
		expand := func(t string, rank int) (string, error) {
			if !strings.Contains(t, "...") {
				return t, nil
			}
			e := rank - (len(t) - 3)
			if e < 0 {
				return "", fmt.Errorf("term %q for rank %d", t, rank)
			}
			var b strings.Builder
			for k := ell - e; k < ell; k++ {
				b.WriteByte(byte('0' + k))
			}
			return strings.Replace(t, "...", b.String(), 1), nil
		}
		size := map[byte]int{}
		labels := make([]string, len(terms))
		for i, t := range terms {
			l, err := expand(t, len(in[i].Shape))
			if err != nil {
				return nil, err
			}
			if len(l) != len(in[i].Shape) {
				return nil, fmt.Errorf("term %q does not match input %d of shape %v", t, i, in[i].Shape)
			}
			labels[i] = l
			for k := 0; k < len(l); k++ {
				c, d := l[k], in[i].Shape[k]
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
					return nil, fmt.Errorf("bad label %q in %q", c, eq)
				}
				if old, ok := size[c]; ok && old != d && old != 1 && d != 1 {
					return nil, fmt.Errorf("label %q has sizes %d and %d", c, old, d)
				} else if !ok || old == 1 {
					size[c] = d
				}
			}
		}
		var out string
		if explicit {
			if out, err = expand(rhs, ell+len(rhs)-3); err != nil {
				return nil, err
			}
		} else {
			count := map[byte]int{}
			for _, l := range labels {
				for k := 0; k < len(l); k++ {
					count[l[k]]++
				}
			}
			var once []byte
			for c, k := range count {
				if k == 1 && !(c >= '0' && c <= '9') {
					once = append(once, c)
				}
			}
			sort.Slice(once, func(i, j int) bool { return once[i] < once[j] })
			for k := 0; k < ell; k++ {
				out += string(rune('0' + k))
			}
			out += string(once)
		}
		all := []byte(out)
		for _, l := range labels {
			for k := 0; k < len(l); k++ {
				if !strings.ContainsRune(string(all), rune(l[k])) {
					all = append(all, l[k])
				}
			}
		}
		work := 1
		dims := make([]int, len(all))
		for i, c := range all {
			d, ok := size[c]
			if !ok {
				return nil, fmt.Errorf("output label %q is not in any input", c)
			}
			dims[i] = d
			if d > 0 && work > maxEinsumWork/d {
				return nil, fmt.Errorf("equation %q is too large to evaluate", eq)
			}
			work *= d
		}
		// Per operand, the stride of each label in all (0 when absent or
		// broadcast).
		strides := make([][]int, len(in)+1)
		for i, l := range append(labels, out) {
			var shape []int
			if i < len(in) {
				shape = in[i].Shape
			} else {
				shape = dims[:len(out)]
			}
			st := stridesOf(shape)
			strides[i] = make([]int, len(all))
			for k := 0; k < len(l); k++ {
				j := strings.IndexByte(string(all), l[k])
				if shape[k] != 1 || dims[j] == 1 {
					strides[i][j] += st[k]
				}
			}
		}
		vals := make([][]float64, len(in))
		for i, t := range in {
			if vals[i], err = t.AsFloat64(); err != nil {
				return nil, err
			}
		}
		// The result is accumulated in float64 before the output exists.
		if err := ctx.CheckAlloc(tensor.Float64, dims[:len(out)]); err != nil {
			return nil, err
		}
		res := make([]float64, prod(dims[:len(out)]))
		if work > 0 {
			idx := make([]int, len(all))
			offs := make([]int, len(in)+1)
			for {
				p := 1.0
				for i := range in {
					p *= vals[i][offs[i]]
				}
				res[offs[len(in)]] += p
				d := len(all) - 1
				for ; d >= 0; d-- {
					idx[d]++
					for i := range offs {
						offs[i] += strides[i][d]
					}
					if idx[d] < dims[d] {
						break
					}
					for i := range offs {
						offs[i] -= idx[d] * strides[i][d]
					}
					idx[d] = 0
				}
				if d < 0 {
					break
				}
			}
		}
		o, err := cast(&tensor.Tensor{DType: tensor.Float64, Shape: dims[:len(out)], Data: res}, in[0].DType)
		if err != nil {
			return nil, err
		}
		return one(o)
	}), nil
}
