package bench

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qtool/qtool/internal/graph"
)

// Profiler sums per-node wall times reported by runtime.Options.NodeTime.
// Only nodes of the main graph count: a node inside an If branch is also
// inside its If node's time, and counting both would make the shares add
// up to more than 100%.
type Profiler struct {
	top   map[*graph.Node]int // main-graph node -> index
	nodes []*graph.Node
	on    atomic.Bool
	mu    sync.Mutex
	sum   []time.Duration
	runs  int
}

// NewProfiler prepares a profiler for g's nodes. It records nothing until
// Start is called, so that warm-up runs are left out.
func NewProfiler(g *graph.Graph) *Profiler {
	p := &Profiler{top: make(map[*graph.Node]int, len(g.Nodes)), nodes: g.Nodes, sum: make([]time.Duration, len(g.Nodes))}
	for i, n := range g.Nodes {
		p.top[n] = i
	}
	return p
}

// Start begins recording; runs are counted with EndRun.
func (p *Profiler) Start() { p.on.Store(true) }

// Record is the runtime.Options.NodeTime callback.
func (p *Profiler) Record(n *graph.Node, d time.Duration) {
	if !p.on.Load() {
		return
	}
	i, ok := p.top[n]
	if !ok {
		return
	}
	p.mu.Lock()
	p.sum[i] += d
	p.mu.Unlock()
}

// EndRun counts one recorded run (for per-run averages).
func (p *Profiler) EndRun() {
	if p.on.Load() {
		p.mu.Lock()
		p.runs++
		p.mu.Unlock()
	}
}

// OpTime is the time spent in all nodes of one op type.
type OpTime struct {
	Op       string  `json:"op"`
	Nodes    int     `json:"nodes"`
	MsPerRun float64 `json:"ms_per_run"`
	Percent  float64 `json:"percent"`
}

// NodeTime is the time spent in one node.
type NodeTime struct {
	Node     string  `json:"node"`
	Op       string  `json:"op"`
	MsPerRun float64 `json:"ms_per_run"`
	Percent  float64 `json:"percent"`
}

// Profile is the per-op time table: op types by time, and the slowest
// nodes. Percentages are of the summed node time, which is a little less
// than the run latency (the executor's own bookkeeping is not in a node).
type Profile struct {
	Runs        int        `json:"runs"`
	NodeMsTotal float64    `json:"node_ms_per_run"`
	ByOp        []OpTime   `json:"by_op"`
	TopNodes    []NodeTime `json:"top_nodes"`
}

// OpName is the op type, prefixed by its domain outside ai.onnx.
func OpName(n *graph.Node) string {
	if graph.IsDefaultDomain(n.Domain) {
		return n.OpType
	}
	return n.Domain + "." + n.OpType
}

// Report aggregates what was recorded; topN bounds the node list.
func (p *Profiler) Report(topN int) *Profile {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := &Profile{Runs: p.runs}
	if p.runs == 0 {
		return pr
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(p.runs) }
	var total time.Duration
	byOp := map[string]*OpTime{}
	var ops []string
	for i, n := range p.nodes {
		total += p.sum[i]
		name := OpName(n)
		o := byOp[name]
		if o == nil {
			o = &OpTime{Op: name}
			byOp[name] = o
			ops = append(ops, name)
		}
		o.Nodes++
		o.MsPerRun += per(p.sum[i])
	}
	pr.NodeMsTotal = per(total)
	pct := func(ms float64) float64 {
		if pr.NodeMsTotal == 0 {
			return 0
		}
		return 100 * ms / pr.NodeMsTotal
	}
	for _, name := range ops {
		o := byOp[name]
		o.Percent = pct(o.MsPerRun)
		pr.ByOp = append(pr.ByOp, *o)
	}
	sort.SliceStable(pr.ByOp, func(a, b int) bool { return pr.ByOp[a].MsPerRun > pr.ByOp[b].MsPerRun })
	idx := make([]int, len(p.nodes))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p.sum[idx[a]] > p.sum[idx[b]] })
	if topN > 0 && len(idx) > topN {
		idx = idx[:topN]
	}
	for _, i := range idx {
		n := p.nodes[i]
		name := n.Name
		if name == "" {
			name = "#" + strconv.Itoa(i)
		}
		ms := per(p.sum[i])
		pr.TopNodes = append(pr.TopNodes, NodeTime{Node: name, Op: OpName(n), MsPerRun: ms, Percent: pct(ms)})
	}
	return pr
}
