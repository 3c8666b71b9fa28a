package runtime

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/tensor"
)

// Options configure a Session.
type Options struct {
	// Threads is the number of goroutines a kernel may use (< 1 means 1).
	// Results do not depend on it.
	Threads int
	// Observe, when set, is called with every graph input at the start of a
	// run and with every value a node produces (including those inside If
	// branches), right after the node ran. Calibration and per-layer
	// evaluation hook in here. It must not modify or keep the tensor
	// beyond the call unless it copies it: the executor may recycle its
	// buffer. With Observe set, nodes fed only by constants are not
	// folded at plan time, so that every node output is observed.
	Observe func(v *graph.Value, t *tensor.Tensor)
	// NodeTime, when set, receives each node's wall time after it ran
	// (profiling). Nodes inside subgraphs are reported too.
	NodeTime func(n *graph.Node, d time.Duration)
	// MaxTensorBytes bounds the size of every tensor a kernel allocates
	// through the Context, so that a tiny hostile model (ConstantOfShape of
	// a constant [65536, 32768]) gets an error naming the node instead of
	// taking the machine's memory. 0 means MaxTensorBytes(); < 0 no limit.
	MaxTensorBytes int64
}

// Session is a graph planned for repeated execution: node order, kernels
// (with constant weights prepacked by their factories) and value lifetimes
// are computed once in NewSession. Run may be called concurrently.
type Session struct {
	p    *plan
	opts Options
	peak atomic.Int64
	pool *bufPool
}

// NewSession plans g: it orders the nodes, finds and prepares a kernel for
// every node (recursively for subgraphs), evaluates once the nodes fed only
// by constants (Constant and the shape arithmetic on it; ai.onnx ops only,
// never random ones) and computes when each intermediate value can be
// dropped. g is not modified, and must not be while the session is in use.
func NewSession(g *graph.Graph, opts Options) (*Session, error) {
	if g == nil {
		return nil, errors.New("runtime: nil graph")
	}
	if opts.Threads < 1 {
		opts.Threads = 1
	}
	if opts.MaxTensorBytes == 0 {
		opts.MaxTensorBytes = MaxTensorBytes()
	}
	p, err := newPlan(g, opts.Observe == nil, opts.MaxTensorBytes)
	if err != nil {
		return nil, err
	}
	if len(p.outer) > 0 {
		return nil, fmt.Errorf("runtime: value %q is used but never produced (not an input, initializer or node output)", p.outer[0].v.Name)
	}
	return &Session{p: p, opts: opts, pool: newBufPool()}, nil
}

// InputNames lists the graph inputs a Run needs, in graph order
// (initializers are not included).
func (s *Session) InputNames() []string {
	out := make([]string, len(s.p.inputs))
	for i, in := range s.p.inputs {
		out[i] = in.v.Name
	}
	return out
}

// OutputNames lists the graph outputs, in graph order.
func (s *Session) OutputNames() []string {
	out := make([]string, len(s.p.g.Outputs))
	for i, v := range s.p.g.Outputs {
		out[i] = v.Name
	}
	return out
}

// PeakBytes is the largest number of bytes held at once in node-produced
// tensors during the most recent Run (views that share an input's data
// are not counted twice). Graph inputs and initializers are not counted.
func (s *Session) PeakBytes() int64 { return s.peak.Load() }

// Run executes the graph. Every graph input must be given, with its
// declared dtype and rank and with the declared size for every dim that
// has a fixed size (symbolic dims accept any size). Initializers that the
// model also lists as inputs may be overridden. The returned tensors belong
// to the caller: none shares memory with the inputs, the initializers or
// another output.
func (s *Session) Run(inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	p := s.p
	env := make([]*tensor.Tensor, p.nslots)
	for _, c := range p.consts {
		env[c.slot] = c.t
	}
	used := 0
	for _, in := range p.inputs {
		t, ok := inputs[in.v.Name]
		if !ok || t == nil {
			return nil, fmt.Errorf("input %q is missing", in.v.Name)
		}
		if err := checkInput(in.v, t); err != nil {
			return nil, err
		}
		env[in.slot] = t
		used++
	}
	for _, in := range p.overridable {
		if t, ok := inputs[in.v.Name]; ok && t != nil {
			if err := checkInput(in.v, t); err != nil {
				return nil, err
			}
			env[in.slot] = t
			used++
		}
	}
	if used != len(inputs) {
		for name := range inputs {
			if _, ok := p.inputByName[name]; !ok {
				return nil, fmt.Errorf("the model has no input %q", name)
			}
		}
	}
	ctx := &Context{Threads: s.opts.Threads, opts: &s.opts, pool: s.pool}
	if s.opts.Observe != nil {
		for _, in := range p.inputs {
			s.opts.Observe(in.v, env[in.slot])
		}
	}
	f := &frame{p: p, env: env}
	peak, err := f.run(ctx)
	if err != nil {
		return nil, err
	}
	s.peak.Store(peak)
	out := make(map[string]*tensor.Tensor, len(p.outputs))
	// An output whose data overlaps an input, an initializer or another
	// output (an Identity, a Reshape view) is copied so that the caller
	// owns it.
	taken := append([][2]uintptr(nil), p.constRanges...)
	for _, in := range p.inputs {
		taken = appendRange(taken, env[in.slot])
	}
	for _, in := range p.overridable {
		taken = appendRange(taken, env[in.slot])
	}
	for i, slot := range p.outputs {
		t := env[slot]
		if t == nil {
			return nil, fmt.Errorf("output %q was not produced", p.g.Outputs[i].Name)
		}
		lo, hi := dataRange(t)
		for _, r := range taken {
			if lo < r[1] && r[0] < hi {
				t = t.Clone()
				lo, hi = dataRange(t)
				break
			}
		}
		taken = append(taken, [2]uintptr{lo, hi})
		out[p.g.Outputs[i].Name] = t
	}
	return out, nil
}

func appendRange(rs [][2]uintptr, t *tensor.Tensor) [][2]uintptr {
	if lo, hi := dataRange(t); lo != hi {
		rs = append(rs, [2]uintptr{lo, hi})
	}
	return rs
}

// dataPtr is the address of a tensor's first element (0 when empty), used
// to detect tensors that share memory.
func dataPtr(t *tensor.Tensor) uintptr {
	if t == nil || t.Data == nil {
		return 0
	}
	v := reflect.ValueOf(t.Data)
	if v.Kind() != reflect.Slice || v.Len() == 0 {
		return 0
	}
	return v.Pointer()
}

func checkInput(v *graph.Value, t *tensor.Tensor) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("input %q: %v", v.Name, err)
	}
	if v.DType != tensor.Undefined && t.DType != v.DType {
		return fmt.Errorf("input %q: dtype %v, the model declares %v", v.Name, t.DType, v.DType)
	}
	if v.Shape == nil {
		return nil
	}
	if len(t.Shape) != len(v.Shape) {
		return fmt.Errorf("input %q: shape %v has rank %d, the model declares %v (rank %d)", v.Name, t.Shape, len(t.Shape), v.Shape, len(v.Shape))
	}
	for i, d := range v.Shape {
		if d.Known() && int64(t.Shape[i]) != d.Value {
			return fmt.Errorf("input %q: shape %v, the model declares %v (dim %d must be %d)", v.Name, t.Shape, v.Shape, i, d.Value)
		}
	}
	return nil
}

// plan is a (sub)graph prepared for execution. Values live in slots of a
// per-run environment; a slot is cleared after its last consumer so that
// the garbage collector can reuse its memory.
type plan struct {
	g           *graph.Graph
	budget      int64 // Options.MaxTensorBytes for folding (0: the default)
	slots       map[*graph.Value]int
	nslots      int
	consts      []constSlot
	inputs      []valueSlot // runtime inputs
	overridable []valueSlot // initializers also declared as inputs
	inputByName map[string]int
	outer       []valueSlot // values of enclosing graphs (subgraphs only)
	steps       []step
	outputs     []int
	keep        []bool       // slot must survive to the end of the run
	constRanges [][2]uintptr // address ranges of the initializers' data
}

type constSlot struct {
	slot int
	t    *tensor.Tensor
}

type valueSlot struct {
	slot int
	v    *graph.Value
}

type step struct {
	node   *graph.Node
	in     []int  // -1 for an absent optional input
	out    []int  // -1 for an unnamed output
	free   []int  // slots whose last use is this step
	dying  []bool // per input: its slot's last use is here and only here
	outer  []int  // slots the node's subgraphs read (they may return them)
	kernel Kernel
	lazy   *lazyKernel
}

// lazyKernel resolves a node's kernel at run time from the dtype of its
// first input, for nodes whose input type the graph does not declare and
// whose op has no dtype-independent kernel.
type lazyKernel struct {
	node  *graph.Node
	opset int64
	mu    sync.Mutex
	byDT  map[tensor.DType]Kernel
}

func (l *lazyKernel) get(dt tensor.DType) (Kernel, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.byDT[dt]; ok {
		return k, nil
	}
	f, ok := Lookup(l.node.Domain, l.node.OpType, dt)
	if !ok {
		return nil, &ErrUnsupported{Node: l.node, DType: dt}
	}
	k, err := f(l.node, l.opset)
	if err != nil {
		return nil, err
	}
	if l.byDT == nil {
		l.byDT = map[tensor.DType]Kernel{}
	}
	l.byDT[dt] = k
	return k, nil
}

// budget is the session's MaxTensorBytes, which plan-time folding of
// constants respects too.
func newPlan(g *graph.Graph, fold bool, budget int64) (*plan, error) {
	p := &plan{g: g, slots: map[*graph.Value]int{}, inputByName: map[string]int{}, budget: budget}
	slot := func(v *graph.Value) int {
		if s, ok := p.slots[v]; ok {
			return s
		}
		s := p.nslots
		p.nslots++
		p.slots[v] = s
		return s
	}
	initInput := map[string]bool{}
	for _, name := range g.InitializerInputs {
		initInput[name] = true
	}
	for _, v := range g.Initializers {
		if v.Const == nil {
			return nil, fmt.Errorf("initializer %q has no data", v.Name)
		}
		s := slot(v)
		p.consts = append(p.consts, constSlot{s, v.Const})
		p.constRanges = appendRange(p.constRanges, v.Const)
		if initInput[v.Name] {
			p.overridable = append(p.overridable, valueSlot{s, v})
			p.inputByName[v.Name] = s
		}
	}
	for _, v := range g.Inputs {
		if _, dup := p.slots[v]; dup {
			continue
		}
		s := slot(v)
		p.inputs = append(p.inputs, valueSlot{s, v})
		p.inputByName[v.Name] = s
	}
	order := &graph.Graph{Nodes: append([]*graph.Node(nil), g.Nodes...)}
	if err := order.Sort(); err != nil {
		return nil, err
	}
	for _, n := range order.Nodes {
		for _, v := range n.Outputs {
			if v != nil {
				slot(v)
			}
		}
	}
	// Anything else a node reads comes from an enclosing graph.
	for _, v := range g.OuterValues() {
		p.outer = append(p.outer, valueSlot{slot(v), v})
	}
	steps := make([]step, len(order.Nodes))
	for i, n := range order.Nodes {
		st := &steps[i]
		st.node = n
		st.in = make([]int, len(n.Inputs))
		for j, v := range n.Inputs {
			st.in[j] = -1
			if v != nil {
				st.in[j] = p.slots[v]
			}
		}
		for _, v := range n.SubgraphInputs() {
			st.outer = append(st.outer, p.slots[v])
		}
		st.out = make([]int, len(n.Outputs))
		for j, v := range n.Outputs {
			st.out[j] = -1
			if v != nil {
				st.out[j] = p.slots[v]
			}
		}
		if err := p.prepare(st, g.Opset(n.Domain)); err != nil {
			return nil, err
		}
	}
	if fold {
		steps = p.fold(steps)
	}
	p.steps = steps
	p.keep = make([]bool, p.nslots)
	for _, v := range g.Outputs {
		s := p.slots[v]
		p.outputs = append(p.outputs, s)
		p.keep[s] = true
	}
	for _, c := range p.consts {
		p.keep[c.slot] = true
	}
	for _, in := range p.inputs {
		p.keep[in.slot] = true
	}
	for _, o := range p.outer {
		p.keep[o.slot] = true
	}
	lastUse := make([]int, p.nslots)
	for i := range lastUse {
		lastUse[i] = -1
	}
	for i := range p.steps {
		st := &p.steps[i]
		for _, s := range st.in {
			if s >= 0 {
				lastUse[s] = i
			}
		}
		for _, s := range st.outer {
			lastUse[s] = i
		}
		for _, s := range st.out {
			if s >= 0 && lastUse[s] < i {
				lastUse[s] = i // unused outputs are dropped at once
			}
		}
	}
	for s, i := range lastUse {
		if i >= 0 && !p.keep[s] {
			p.steps[i].free = append(p.steps[i].free, s)
		}
	}
	// An input may be overwritten in place when this node is its last
	// reader, it is read once here, and no subgraph of the node reads it.
	for i := range p.steps {
		st := &p.steps[i]
		st.dying = make([]bool, len(st.in))
		sgIn := map[int]bool{}
		for _, v := range st.node.SubgraphInputs() {
			sgIn[p.slots[v]] = true
		}
		for j, s := range st.in {
			if s < 0 || p.keep[s] || lastUse[s] != i || sgIn[s] {
				continue
			}
			once := true
			for k, s2 := range st.in {
				if k != j && s2 == s {
					once = false
				}
			}
			st.dying[j] = once
		}
	}
	return p, nil
}

// nondeterministic ops are never evaluated at plan time.
var nondeterministic = map[string]bool{
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true, "RandomUniformLike": true,
	"Bernoulli": true, "Multinomial": true,
}

// fold evaluates, once, the nodes whose inputs are all constants (Constant
// nodes and the shape arithmetic hanging off them) and keeps their
// outputs as constants of the plan, so that runs skip them. A node that
// fails here is left in place to report its error at run time. It is only
// done without an Observe hook, which must see every node's output.
func (p *plan) fold(steps []step) []step {
	isConst := make([]bool, p.nslots)
	for _, c := range p.consts {
		isConst[c.slot] = true
	}
	kept := steps[:0]
	for _, st := range steps {
		if p.tryFold(&st, isConst) {
			continue
		}
		kept = append(kept, st)
	}
	return kept
}

func (p *plan) tryFold(st *step, isConst []bool) (ok bool) {
	n := st.node
	if (st.kernel == nil && st.lazy == nil) || len(st.outer) > 0 || len(n.Subgraphs()) > 0 || nondeterministic[n.OpType] || !graph.IsDefaultDomain(n.Domain) {
		return false
	}
	in := make([]*tensor.Tensor, len(st.in))
	for j, s := range st.in {
		if s < 0 {
			continue
		}
		if !isConst[s] {
			return false
		}
		in[j] = p.constOf(s)
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	k := st.kernel
	if k == nil {
		// The input types are known now: resolve the lazy kernel.
		dt := AnyDType
		if len(in) > 0 && in[0] != nil {
			dt = in[0].DType
		}
		var err error
		if k, err = st.lazy.get(dt); err != nil {
			return false
		}
	}
	outs, err := k.Run(&Context{Threads: 1, opts: &Options{MaxTensorBytes: p.budget}}, in)
	if err != nil {
		return false
	}
	for j, s := range st.out {
		if s < 0 {
			continue
		}
		if j >= len(outs) || outs[j] == nil {
			return false
		}
	}
	for j, s := range st.out {
		if s >= 0 {
			p.consts = append(p.consts, constSlot{s, outs[j]})
			p.constRanges = appendRange(p.constRanges, outs[j])
			isConst[s] = true
		}
	}
	return true
}

func (p *plan) constOf(s int) *tensor.Tensor {
	for _, c := range p.consts {
		if c.slot == s {
			return c.t
		}
	}
	return nil
}

// inputDType is the dtype of a node's first input as known before running.
func inputDType(n *graph.Node) tensor.DType {
	v := n.Input(0)
	switch {
	case v == nil:
		return AnyDType
	case v.Const != nil:
		return v.Const.DType
	}
	return v.DType
}

func (p *plan) prepare(st *step, opset int64) (err error) {
	n := st.node
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v: kernel factory panicked: %v", n, r)
		}
	}()
	dt := inputDType(n)
	if dt == AnyDType && n.Input(0) != nil {
		if f, ok := Lookup(n.Domain, n.OpType, AnyDType); ok {
			st.kernel, err = f(n, opset)
			return wrapNode(n, err)
		}
		if !IsSupported(n.Domain, n.OpType) {
			return &ErrUnsupported{Node: n, DType: dt}
		}
		st.lazy = &lazyKernel{node: n, opset: opset}
		return nil
	}
	f, ok := Lookup(n.Domain, n.OpType, dt)
	if !ok {
		return &ErrUnsupported{Node: n, DType: dt}
	}
	st.kernel, err = f(n, opset)
	return wrapNode(n, err)
}

// wrapNode prefixes an error with the node unless the error already names it.
func wrapNode(n *graph.Node, err error) error {
	if err == nil {
		return nil
	}
	var ne *NodeError
	if errors.As(err, &ne) && ne.Node == n {
		return err
	}
	return &NodeError{Node: n, Err: err}
}

// NodeError is an error raised while preparing or running a node.
type NodeError struct {
	Node *graph.Node
	Err  error
}

func (e *NodeError) Error() string {
	msg := e.Err.Error()
	prefix := e.Node.String()
	if len(msg) >= len(prefix) && msg[:len(prefix)] == prefix {
		return msg
	}
	return prefix + ": " + msg
}

func (e *NodeError) Unwrap() error { return e.Err }

// frame is one execution of a plan: its environment, and the frame of the
// graph around it (for subgraphs).
type frame struct {
	p      *plan
	env    []*tensor.Tensor
	parent *frame
}

func tensorBytes(t *tensor.Tensor) int64 {
	if t == nil {
		return 0
	}
	return int64(t.Len()) * int64(t.DType.Size())
}

// run executes the steps and returns the peak of live node-produced bytes.
//
// Buffers are tracked by root: a node output that shares data with one of
// the node's inputs or earlier outputs (a Reshape view, an in-place
// result) joins that value's root; any other output is its own root. A
// root's bytes count as live until the last slot referring to it is
// dropped; a root allocated through Context.New then goes back to the
// session's pool for later nodes and runs.
func (f *frame) run(ctx *Context) (int64, error) {
	p := f.p
	env := f.env
	rs := &runState{
		root:  make([]int32, p.nslots),
		refs:  make([]int32, p.nslots),
		fresh: make([]bool, p.nslots),
		sizes: make([]int64, p.nslots),
		bufs:  make([]*tensor.Tensor, p.nslots),
	}
	for s := range rs.root {
		rs.root[s] = int32(s)
		if env[s] != nil {
			rs.refs[s] = 1 // inputs, initializers and outer values: never freed
		}
	}
	var live, peak int64
	sub := &Context{Threads: ctx.Threads, opts: ctx.opts, frame: f, pool: ctx.pool, rs: rs}
	var in []*tensor.Tensor
	for i := range p.steps {
		st := &p.steps[i]
		n := st.node
		if cap(in) < len(st.in) {
			in = make([]*tensor.Tensor, len(st.in))
		}
		in = in[:len(st.in)]
		for j, s := range st.in {
			in[j] = nil
			if s < 0 {
				continue
			}
			if env[s] == nil {
				return 0, fmt.Errorf("%v: input %q was not produced", n, n.Inputs[j].Name)
			}
			in[j] = env[s]
		}
		var start time.Time
		if ctx.opts != nil && ctx.opts.NodeTime != nil {
			start = time.Now()
		}
		sub.step = st
		sub.allocs = sub.allocs[:0]
		outs, err := runStep(sub, st, in)
		sub.step = nil
		if err != nil {
			return 0, err
		}
		if ctx.opts != nil && ctx.opts.NodeTime != nil {
			ctx.opts.NodeTime(n, time.Since(start))
		}
		for j, s := range st.out {
			if s < 0 || j >= len(outs) || outs[j] == nil {
				continue
			}
			t := outs[j]
			env[s] = t
			r := int32(s)
			if ptr := dataPtr(t); ptr != 0 {
				if k := sharedWith(t, st, in, env, outs[:j]); k >= 0 {
					r = rs.root[k]
				} else {
					rs.sizes[s] = tensorBytes(t)
					rs.bufs[s] = t
					live += rs.sizes[s]
					for _, a := range sub.allocs {
						if a == ptr {
							rs.fresh[s] = true
						}
					}
				}
			}
			rs.root[s] = r
			rs.refs[r]++
			if ctx.opts != nil && ctx.opts.Observe != nil {
				ctx.opts.Observe(n.Outputs[j], t)
			}
		}
		if live > peak {
			peak = live
		}
		for _, s := range st.free {
			env[s] = nil
			r := rs.root[s]
			if rs.refs[r]--; rs.refs[r] == 0 {
				live -= rs.sizes[r]
				if rs.fresh[r] && ctx.pool != nil {
					ctx.pool.put(rs.bufs[r])
				}
				rs.bufs[r] = nil
			}
		}
	}
	return peak, nil
}

// sharedWith returns the slot of an input, of an outer value the node's
// subgraphs read (a branch may return one, or a view of one), or of an
// earlier output of the same step whose data overlaps t's, or -1.
func sharedWith(t *tensor.Tensor, st *step, in []*tensor.Tensor, env []*tensor.Tensor, prev []*tensor.Tensor) int {
	lo, hi := dataRange(t)
	if lo == hi {
		return -1
	}
	overlaps := func(x *tensor.Tensor) bool {
		if x == nil {
			return false
		}
		a, b := dataRange(x)
		return a < hi && lo < b
	}
	for k, x := range in {
		if st.in[k] >= 0 && overlaps(x) {
			return st.in[k]
		}
	}
	for _, s := range st.outer {
		if overlaps(env[s]) {
			return s
		}
	}
	for k, x := range prev {
		if st.out[k] >= 0 && env[st.out[k]] == x && overlaps(x) {
			return st.out[k]
		}
	}
	return -1
}

// dataRange is the address range of a tensor's elements (empty for none).
func dataRange(t *tensor.Tensor) (uintptr, uintptr) {
	p := dataPtr(t)
	if p == 0 {
		return 0, 0
	}
	return p, p + uintptr(t.Len()*max(1, t.DType.Size()))
}

// runStep runs one node's kernel, turning a panic into an error that names
// the node (kernels check their inputs; this is defence in depth).
func runStep(ctx *Context, st *step, in []*tensor.Tensor) (outs []*tensor.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("%v: kernel panicked: %v", st.node, r)
		}
	}()
	k := st.kernel
	if k == nil {
		dt := AnyDType
		if len(in) > 0 && in[0] != nil {
			dt = in[0].DType
		}
		if k, err = st.lazy.get(dt); err != nil {
			return nil, wrapNode(st.node, err)
		}
	}
	outs, err = k.Run(ctx, in)
	if err != nil {
		return nil, wrapNode(st.node, err)
	}
	return outs, nil
}

// Subgraph is a graph attribute (an If branch, a Loop body) prepared for
// execution by the factory of the node that owns it. It runs inside the
// session running that node and sees the values of the enclosing graphs.
type Subgraph struct {
	p *plan
}

// CompileSubgraph plans g for execution inside a kernel. Its kernels are
// found and prepared now, as for the main graph.
func CompileSubgraph(g *graph.Graph) (*Subgraph, error) {
	if g == nil {
		return nil, errors.New("nil subgraph")
	}
	// Subgraphs are not folded: their constant-only nodes are cheap, and
	// the session's Observe setting is not known here.
	p, err := newPlan(g, false, 0)
	if err != nil {
		return nil, fmt.Errorf("subgraph %q: %w", g.Name, err)
	}
	return &Subgraph{p: p}, nil
}

// NumInputs is the number of formal inputs of the subgraph.
func (s *Subgraph) NumInputs() int { return len(s.p.inputs) }

// NumOutputs is the number of outputs of the subgraph.
func (s *Subgraph) NumOutputs() int { return len(s.p.outputs) }

// Run executes the subgraph with its formal inputs bound to inputs, reading
// outer-scope values from the graph whose kernel called it (ctx must be the
// Context the kernel was given). The outputs may share memory with outer
// values or initializers; kernels that return them pass them on unchanged.
func (s *Subgraph) Run(ctx *Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	p := s.p
	if len(inputs) != len(p.inputs) {
		return nil, fmt.Errorf("subgraph %q takes %d inputs, got %d", p.g.Name, len(p.inputs), len(inputs))
	}
	env := make([]*tensor.Tensor, p.nslots)
	for _, c := range p.consts {
		env[c.slot] = c.t
	}
	for i, in := range p.inputs {
		env[in.slot] = inputs[i]
	}
	var parent *frame
	if ctx != nil {
		parent = ctx.frame
	}
	for _, o := range p.outer {
		t := lookupOuter(parent, o.v)
		if t == nil {
			return nil, fmt.Errorf("subgraph %q: outer value %q is not available", p.g.Name, o.v.Name)
		}
		env[o.slot] = t
	}
	c := &Context{Threads: 1}
	if ctx != nil {
		c.Threads, c.opts, c.pool = ctx.Threads, ctx.opts, ctx.pool
	}
	f := &frame{p: p, env: env, parent: parent}
	if _, err := f.run(c); err != nil {
		return nil, fmt.Errorf("subgraph %q: %w", p.g.Name, err)
	}
	out := make([]*tensor.Tensor, len(p.outputs))
	for i, slot := range p.outputs {
		if env[slot] == nil {
			return nil, fmt.Errorf("subgraph %q: output %q was not produced", p.g.Name, p.g.Outputs[i].Name)
		}
		out[i] = env[slot]
	}
	return out, nil
}

func lookupOuter(f *frame, v *graph.Value) *tensor.Tensor {
	for ; f != nil; f = f.parent {
		if s, ok := f.p.slots[v]; ok {
			return f.env[s]
		}
	}
	return nil
}
