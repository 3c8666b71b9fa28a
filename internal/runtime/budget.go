package runtime

import (
	"fmt"
	"sync/atomic"

	"github.com/qtool/qtool/internal/tensor"
)

// DefaultMaxTensorBytes is the per-tensor budget when neither Options nor
// SetMaxTensorBytes says otherwise: 1 GiB is well above any activation of
// the CNNs and RNNs qtool targets (ResNet-18's largest at batch 64 is
// ~200 MB) and well below what a 251-byte model can ask for.
const DefaultMaxTensorBytes = 1 << 30

var maxTensorBytes atomic.Int64

func init() { maxTensorBytes.Store(DefaultMaxTensorBytes) }

// MaxTensorBytes is the process-wide default of Options.MaxTensorBytes.
func MaxTensorBytes() int64 { return maxTensorBytes.Load() }

// SetMaxTensorBytes changes the process-wide default of
// Options.MaxTensorBytes (the CLI's --max-tensor-mb); n <= 0 removes the
// limit. Sessions created earlier keep theirs.
func SetMaxTensorBytes(n int64) {
	if n <= 0 {
		n = -1
	}
	maxTensorBytes.Store(n)
}

// BudgetError is returned when a kernel asks for a tensor larger than the
// session's MaxTensorBytes. The session wraps it in a NodeError naming the
// node.
type BudgetError struct {
	DType tensor.DType
	Shape []int
	Bytes int64
	Limit int64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("a %v tensor of shape %v needs %s of memory; the limit is %s per tensor (--max-tensor-mb)",
		e.DType, e.Shape, humanBytes(e.Bytes), humanBytes(e.Limit))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// budget is the context's per-tensor limit (< 0: none). Contexts made
// outside a session (kernels called directly, plan-time folding of
// constants) use the process-wide default.
func (c *Context) budget() int64 {
	if c != nil && c.opts != nil && c.opts.MaxTensorBytes != 0 {
		return c.opts.MaxTensorBytes
	}
	return MaxTensorBytes()
}

// CheckAlloc returns a *BudgetError when a tensor of dt and shape would
// exceed the context's MaxTensorBytes, and the shape's own error when it is
// invalid. New and NewUninit call it; kernels that allocate their outputs
// another way call it before they do. A nil Context uses the process-wide
// default.
func (c *Context) CheckAlloc(dt tensor.DType, shape []int) error {
	n, err := tensor.NumElements(shape)
	if err != nil {
		return err
	}
	limit := c.budget()
	if limit < 0 {
		return nil
	}
	es := int64(max(1, dt.Size()))
	// n <= tensor.MaxElements (2^32) and es <= 16: no overflow.
	if b := int64(n) * es; b > limit {
		return &BudgetError{DType: dt, Shape: append([]int(nil), shape...), Bytes: b, Limit: limit}
	}
	return nil
}
