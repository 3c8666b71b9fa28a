package graph

import "fmt"

// SubgraphInputs returns the values a node's subgraph attributes (If
// branches, Loop and Scan bodies, recursively) read from enclosing scopes:
// the node depends on them as if they were inputs. Order is first use.
func (n *Node) SubgraphInputs() []*Value {
	var out []*Value
	seen := map[*Value]bool{}
	for _, a := range n.Attrs {
		for _, sg := range a.subgraphs() {
			for _, v := range sg.OuterValues() {
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	return out
}

func (a *Attribute) subgraphs() []*Graph {
	switch a.Type {
	case AttrGraph:
		if a.G != nil {
			return []*Graph{a.G}
		}
	case AttrGraphs:
		return a.Graphs
	}
	return nil
}

// Subgraphs returns the graphs held by a node's attributes, in attribute order.
func (n *Node) Subgraphs() []*Graph {
	var out []*Graph
	for _, a := range n.Attrs {
		out = append(out, a.subgraphs()...)
	}
	return out
}

// OuterValues returns the values g uses (as node inputs, outputs of g, or
// inside nested subgraphs) that g does not define itself: they come from an
// enclosing graph. Order is first use.
func (g *Graph) OuterValues() []*Value {
	defined := map[*Value]bool{}
	for _, v := range g.Inputs {
		defined[v] = true
	}
	for _, v := range g.Initializers {
		defined[v] = true
	}
	for _, n := range g.Nodes {
		for _, v := range n.Outputs {
			if v != nil {
				defined[v] = true
			}
		}
	}
	var out []*Value
	seen := map[*Value]bool{}
	use := func(v *Value) {
		if v != nil && !defined[v] && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, n := range g.Nodes {
		for _, v := range n.Inputs {
			use(v)
		}
		for _, v := range n.SubgraphInputs() {
			use(v)
		}
	}
	for _, v := range g.Outputs {
		use(v)
	}
	return out
}

// CycleError reports a dependency cycle; Node is one node on it.
type CycleError struct {
	Node  *Node
	Count int // nodes that could not be ordered
}

func (e *CycleError) Error() string {
	return fmt.Sprintf("graph has a cycle through node %v (%d nodes cannot be ordered)", e.Node, e.Count)
}

// Sort reorders g.Nodes topologically (not its subgraphs). It is stable: of
// the nodes that are ready, the one earliest in the current order goes
// first, so an already sorted graph is unchanged. A node depends on the
// producers of its inputs and of the outer values its subgraphs read. A
// cycle is a *CycleError naming a node on it.
func (g *Graph) Sort() error {
	order, err := topoOrder(g.Nodes)
	if err != nil {
		return err
	}
	g.Nodes = order
	return nil
}

func topoOrder(nodes []*Node) ([]*Node, error) {
	producer := make(map[*Value]int, len(nodes))
	for i, n := range nodes {
		for _, v := range n.Outputs {
			if v != nil {
				producer[v] = i
			}
		}
	}
	indeg := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i, n := range nodes {
		deps := map[int]bool{}
		add := func(v *Value) {
			if v == nil {
				return
			}
			if p, ok := producer[v]; ok && !deps[p] {
				deps[p] = true
				indeg[i]++
				users[p] = append(users[p], i)
			}
		}
		for _, v := range n.Inputs {
			add(v)
		}
		for _, v := range n.SubgraphInputs() {
			add(v)
		}
	}
	// A min-heap on the original index gives the stable order.
	h := &intHeap{}
	for i := range nodes {
		if indeg[i] == 0 {
			h.push(i)
		}
	}
	out := make([]*Node, 0, len(nodes))
	for h.len() > 0 {
		i := h.pop()
		out = append(out, nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				h.push(u)
			}
		}
	}
	if len(out) != len(nodes) {
		// Walk back along unordered inputs until a node repeats: it is on a
		// cycle (every unordered node has an unordered producer).
		start := -1
		for i := range nodes {
			if indeg[i] > 0 {
				start = i
				break
			}
		}
		seen := map[int]bool{}
		cur := start
		for !seen[cur] {
			seen[cur] = true
			next := -1
			deps := append(append([]*Value(nil), nodes[cur].Inputs...), nodes[cur].SubgraphInputs()...)
			for _, v := range deps {
				if v == nil {
					continue
				}
				if p, ok := producer[v]; ok && indeg[p] > 0 {
					next = p
					break
				}
			}
			if next < 0 {
				break
			}
			cur = next
		}
		return nil, &CycleError{Node: nodes[cur], Count: len(nodes) - len(out)}
	}
	return out, nil
}

type intHeap struct{ a []int }

func (h *intHeap) len() int { return len(h.a) }

func (h *intHeap) push(x int) {
	h.a = append(h.a, x)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *intHeap) pop() int {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h.a) && h.a[l] < h.a[m] {
			m = l
		}
		if r < len(h.a) && h.a[r] < h.a[m] {
			m = r
		}
		if m == i {
			break
		}
		h.a[i], h.a[m] = h.a[m], h.a[i]
		i = m
	}
	return top
}
