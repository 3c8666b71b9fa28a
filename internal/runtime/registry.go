// Package runtime executes float and quantized graphs: it plans the schedule,
// reuses buffers, splits work over threads and dispatches every node to a
// kernel found in the registry.
package runtime

import (
	"fmt"
	"sort"
	"sync"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// Kernel runs one prepared node. in holds one tensor per node input (nil for
// an absent optional input). It returns one tensor per node output (nil for
// an output the node does not produce). Kernels must not modify their inputs
// and must give identical results whatever ctx.Threads is.
type Kernel interface {
	Run(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error)
}

// KernelFunc adapts a function to Kernel.
type KernelFunc func(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error)

// Run calls f.
func (f KernelFunc) Run(ctx *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return f(ctx, in)
}

// Factory prepares a kernel for a node at plan time: it reads and checks the
// attributes, and may prepack constant inputs (n.Inputs[i].Const != nil).
// opset is the model's version of the node's domain.
type Factory func(n *graph.Node, opset int64) (Kernel, error)

// AnyDType in a registration matches every dtype of input 0.
const AnyDType = tensor.Undefined

type regKey struct {
	domain string
	op     string
	dtype  tensor.DType
}

var (
	regMu    sync.RWMutex
	registry = map[regKey]Factory{}
)

func normDomain(d string) string {
	if graph.IsDefaultDomain(d) {
		return ""
	}
	return d
}

// Register adds a kernel factory for (domain, op type, dtype of input 0).
// dtype AnyDType registers the fallback used when no exact dtype matches.
// Registering the same key twice replaces the earlier factory, which is how a
// user overrides a built-in kernel with a custom one.
func Register(domain, opType string, dtype tensor.DType, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[regKey{normDomain(domain), opType, dtype}] = f
}

// Lookup finds the factory for a node given the dtype of its first input
// (AnyDType when unknown or when the node has no inputs). For float16 with
// neither a float16 nor a dtype-independent kernel it returns the float32
// kernel wrapped to widen inputs and round outputs (float16.go).
func Lookup(domain, opType string, dtype tensor.DType) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	d := normDomain(domain)
	if f, ok := registry[regKey{d, opType, dtype}]; ok {
		return f, true
	}
	f, ok := registry[regKey{d, opType, AnyDType}]
	if !ok && dtype == tensor.Float16 {
		// No float16 kernel: the float32 one on widened data (float16.go).
		if f32, ok32 := registry[regKey{d, opType, tensor.Float32}]; ok32 {
			return float16Fallback(f32), true
		}
	}
	return f, ok
}

// Supported lists "domain:OpType" for every registered op, sorted.
func Supported() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	seen := map[string]bool{}
	for k := range registry {
		name := k.op
		if k.domain != "" {
			name = k.domain + ":" + k.op
		}
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// IsSupported reports whether an op type has any kernel in the domain.
func IsSupported(domain, opType string) bool {
	regMu.RLock()
	defer regMu.RUnlock()
	d := normDomain(domain)
	for k := range registry {
		if k.domain == d && k.op == opType {
			return true
		}
	}
	return false
}

// ErrUnsupported reports a node with no kernel.
type ErrUnsupported struct {
	Node  *graph.Node
	DType tensor.DType
}

func (e *ErrUnsupported) Error() string {
	dom := ""
	if !graph.IsDefaultDomain(e.Node.Domain) {
		dom = e.Node.Domain + ":"
	}
	return fmt.Sprintf("no kernel for %s%v with input type %v", dom, e.Node, e.DType)
}
