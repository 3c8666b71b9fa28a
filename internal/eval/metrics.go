// Package eval compares a quantized model with its float original: accuracy
// against labels, agreement of the two models' predictions, the error of
// the outputs, and, layer by layer, the error of every quantized activation
// against its float counterpart on the same input (as PyTorch's Numeric
// Suite and ONNX Runtime's qdq_loss_debug do). It renders the comparison
// as text, JSON or one self-contained HTML page.
package eval

import (
	"encoding/json"
	"math"
	"strconv"
)

// Accum accumulates the error of a tensor against its reference over many
// samples. SQNR and cosine are computed from the summed energies, not
// averaged per sample, so a sample with a tiny signal does not dominate.
type Accum struct {
	Signal float64 `json:"signal"` // Σ ref²
	Noise  float64 `json:"noise"`  // Σ (ref - got)²
	Dot    float64 `json:"dot"`    // Σ ref·got
	Got2   float64 `json:"got2"`   // Σ got²
	MaxAbs float64 `json:"max_abs"`
	N      int64   `json:"n"`
	// NonFinite counts pairs where either value is NaN or Inf; they are
	// left out of the sums, which would otherwise all become NaN.
	NonFinite int64 `json:"non_finite,omitempty"`
}

// Add accumulates ref (float) against got (quantized) element by element;
// the slices must have the same length.
func (a *Accum) Add(ref, got []float32) {
	if len(ref) != len(got) {
		panic("eval: Accum.Add of slices of different lengths")
	}
	var s, n, d, g2, mx float64
	for i, r := range ref {
		x, y := float64(r), float64(got[i])
		if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			a.NonFinite++
			continue
		}
		e := x - y
		s += x * x
		n += e * e
		d += x * y
		g2 += y * y
		if e < 0 {
			e = -e
		}
		if e > mx {
			mx = e
		}
	}
	a.Signal += s
	a.Noise += n
	a.Dot += d
	a.Got2 += g2
	if mx > a.MaxAbs {
		a.MaxAbs = mx
	}
	a.N += int64(len(ref))
}

// SQNR is 10·log10(Σref² / Σ(ref-got)²) in dB: +Inf when the values are
// identical, -Inf when the reference is all zeros but the other is not,
// NaN when nothing was accumulated.
func (a *Accum) SQNR() float64 {
	if a.N == 0 {
		return math.NaN()
	}
	if a.Noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(a.Signal/a.Noise)
}

// Cosine is the cosine similarity of the two tensors seen as vectors (all
// samples concatenated): 1 when both are zero, 0 when only one is.
func (a *Accum) Cosine() float64 {
	if a.N == 0 {
		return math.NaN()
	}
	if a.Signal == 0 && a.Got2 == 0 {
		return 1
	}
	if a.Signal == 0 || a.Got2 == 0 {
		return 0
	}
	return a.Dot / math.Sqrt(a.Signal*a.Got2)
}

// TopK returns the indices of the k largest values, largest first; ties go
// to the lower index (as torch.topk and numpy's argmax do for the first).
// NaN never ranks above a number.
func TopK(x []float32, k int) []int {
	if k > len(x) {
		k = len(x)
	}
	out := make([]int, 0, k)
	for len(out) < k {
		best := -1
		for i, v := range x {
			if taken(out, i) || v != v {
				continue
			}
			if best < 0 || v > x[best] {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, best)
	}
	return out
}

func taken(idx []int, i int) bool {
	for _, j := range idx {
		if j == i {
			return true
		}
	}
	return false
}

// Float is a float64 that JSON-encodes ±Inf and NaN as the strings "inf",
// "-inf" and "nan" (encoding/json refuses them), so an exact layer's SQNR
// survives the trip to a machine reader.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	x := float64(f)
	switch {
	case math.IsInf(x, 1):
		return []byte(`"inf"`), nil
	case math.IsInf(x, -1):
		return []byte(`"-inf"`), nil
	case math.IsNaN(x):
		return []byte(`"nan"`), nil
	}
	return strconv.AppendFloat(nil, x, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "inf":
			*f = Float(math.Inf(1))
		case "-inf":
			*f = Float(math.Inf(-1))
		default:
			*f = Float(math.NaN())
		}
		return nil
	}
	var x float64
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*f = Float(x)
	return nil
}
