package runtime

import (
	"sync"

	"github.com/qtool/qtool/internal/tensor"
)

// runState tracks, per slot of a running frame, which buffer (root slot) a
// value's data belongs to and how many live slots refer to each root.
type runState struct {
	root  []int32
	refs  []int32
	fresh []bool           // root's buffer came from Context.New in this frame
	sizes []int64          // root's bytes
	bufs  []*tensor.Tensor // root's tensor, to recycle its data
}

// New allocates a zeroed tensor for a kernel's output or scratch space.
// Inside a session the data may be a recycled buffer of a value that is no
// longer needed; outside one (nil Context, kernels called directly) it is
// tensor.New. Outputs allocated with New can later be overwritten in place
// by other kernels (see Reusable), so a kernel must not keep them.
func (c *Context) New(dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	return c.newTensor(dt, shape, true)
}

// NewUninit is New without zeroing a recycled buffer: its contents are
// whatever an earlier value left there. Only for outputs the kernel writes
// in full (GEMM and convolution outputs), where clearing megabytes that are
// overwritten right after costs a sizeable share of a CNN's run time.
func (c *Context) NewUninit(dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	return c.newTensor(dt, shape, false)
}

func (c *Context) newTensor(dt tensor.DType, shape []int, zero bool) (*tensor.Tensor, error) {
	if err := c.CheckAlloc(dt, shape); err != nil {
		return nil, err
	}
	if c == nil || c.pool == nil {
		return tensor.New(dt, shape)
	}
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, err
	}
	t := c.pool.get(dt, n, zero)
	if t == nil {
		if t, err = tensor.New(dt, shape); err != nil {
			return nil, err
		}
	} else {
		t.Shape = append([]int(nil), shape...)
	}
	if p := dataPtr(t); p != 0 {
		c.allocs = append(c.allocs, p)
	}
	return t, nil
}

// Reusable reports whether the kernel may overwrite input i and return it
// (or a tensor sharing its data) as an output: the node is the input's
// last reader, reads it only once, and its buffer was allocated by New in
// this run and is not shared with any other live value. Elementwise
// kernels use it to work in place.
func (c *Context) Reusable(i int) bool {
	if c == nil || c.step == nil || c.rs == nil || i < 0 || i >= len(c.step.dying) || !c.step.dying[i] {
		return false
	}
	r := c.rs.root[c.step.in[i]]
	return c.rs.fresh[r] && c.rs.refs[r] == 1
}

// bufPool keeps released buffers by dtype and length: activation shapes
// repeat from node to node and from run to run, so exact sizes match well.
type bufPool struct {
	mu   sync.Mutex
	free map[poolKey][]*tensor.Tensor
}

type poolKey struct {
	dt tensor.DType
	n  int
}

// maxPooled bounds the buffers kept per size (concurrent runs each hold
// their own set).
const maxPooled = 16

func newBufPool() *bufPool { return &bufPool{free: map[poolKey][]*tensor.Tensor{}} }

func (p *bufPool) get(dt tensor.DType, n int, zero bool) *tensor.Tensor {
	if n == 0 {
		return nil
	}
	p.mu.Lock()
	k := poolKey{dt, n}
	l := p.free[k]
	if len(l) == 0 {
		p.mu.Unlock()
		return nil
	}
	t := l[len(l)-1]
	p.free[k] = l[:len(l)-1]
	p.mu.Unlock()
	if zero {
		clearData(t)
	}
	return t
}

func (p *bufPool) put(t *tensor.Tensor) {
	n := t.Len()
	if n == 0 || t.DType == tensor.String {
		return
	}
	p.mu.Lock()
	k := poolKey{t.DType, n}
	if len(p.free[k]) < maxPooled {
		// A fresh header: the kernel's tensor may still be referenced.
		p.free[k] = append(p.free[k], &tensor.Tensor{DType: t.DType, Data: t.Data})
	}
	p.mu.Unlock()
}

func clearData(t *tensor.Tensor) {
	switch d := t.Data.(type) {
	case []float32:
		clear(d)
	case []float64:
		clear(d)
	case []int8:
		clear(d)
	case []uint8:
		clear(d)
	case []int16:
		clear(d)
	case []uint16:
		clear(d)
	case []int32:
		clear(d)
	case []uint32:
		clear(d)
	case []int64:
		clear(d)
	case []uint64:
		clear(d)
	case []bool:
		clear(d)
	default:
		// Float16 and anything else: reallocate rather than guess.
		nt, _ := tensor.New(t.DType, []int{t.Len()})
		if nt != nil {
			t.Data = nt.Data
		}
	}
}
