package graph

import "strings"

// Pattern describes a node and, recursively, the producers of its inputs.
// Fuse and convert passes use it to find things like
//
//	Relu(BatchNormalization(Conv(x, W const), const...))
//
// with the condition that each intermediate value has a single consumer.
type Pattern struct {
	// Op is the op type; several alternatives are separated by "|"; "" or
	// "*" matches any op.
	Op string
	// Domain is matched with IsDefaultDomain semantics when empty.
	Domain string
	// Inputs constrain the producers of the node's inputs by position; a
	// nil entry matches anything (also a graph input or a constant).
	Inputs []*Pattern
	// Const, when set on an input pattern, requires that input to be a
	// constant (initializer or Constant node) instead of matching a node.
	Const bool
	// SingleUse requires the node's output 0 to have exactly one consumer
	// and not be a graph output (irrelevant for the root).
	SingleUse bool
	// Check is an extra condition on the node.
	Check func(n *Node) bool
	// Bind names the matched node in the result (or, with Const, nothing:
	// bind constants with BindValue).
	Bind string
	// BindValue names the matched input value in the result's Values.
	BindValue string
}

// MatchResult holds what a Pattern bound.
type MatchResult struct {
	Nodes  map[string]*Node
	Values map[string]*Value
}

// OpIs reports whether op is one of the "|"-separated alternatives.
func OpIs(op, alternatives string) bool {
	if alternatives == "" || alternatives == "*" {
		return true
	}
	for _, a := range strings.Split(alternatives, "|") {
		if a == op {
			return true
		}
	}
	return false
}

// Match tries p against node n (the pattern's root is the last node of the
// chain, e.g. the Relu). ix must be g.Index() for the graph holding n.
func Match(ix *Index, n *Node, p *Pattern) (*MatchResult, bool) {
	r := &MatchResult{Nodes: map[string]*Node{}, Values: map[string]*Value{}}
	if !matchNode(ix, n, p, r, true) {
		return nil, false
	}
	return r, true
}

func matchNode(ix *Index, n *Node, p *Pattern, r *MatchResult, root bool) bool {
	if n == nil || !OpIs(n.OpType, p.Op) {
		return false
	}
	if p.Domain == "" {
		if !IsDefaultDomain(n.Domain) {
			return false
		}
	} else if n.Domain != p.Domain {
		return false
	}
	if !root && p.SingleUse && !ix.SingleUse(n.Output(0)) {
		return false
	}
	if p.Check != nil && !p.Check(n) {
		return false
	}
	for i, ip := range p.Inputs {
		if ip == nil {
			continue
		}
		v := n.Input(i)
		if v == nil {
			return false
		}
		if ip.BindValue != "" {
			r.Values[ip.BindValue] = v
		}
		if ip.Const {
			if ConstValue(ix, v) == nil {
				return false
			}
			continue
		}
		prod := ix.Producer[v]
		// A producer with several outputs feeds this input through one of
		// them; patterns talk about output 0.
		if prod == nil || prod.Output(0) != v {
			return false
		}
		if !matchNode(ix, prod, ip, r, false) {
			return false
		}
	}
	if p.Bind != "" {
		r.Nodes[p.Bind] = n
	}
	return true
}

// Step is one link of a chain for MatchChain.
type Step struct {
	Op     string // as Pattern.Op
	Domain string
	// Input is the input position of this node fed by the previous node's
	// output 0; -1 accepts any position.
	Input int
	// Optional steps are skipped when they do not match.
	Optional bool
	Check    func(n *Node) bool
}

// MatchChain walks downstream from start: each next node must be the single
// consumer of the previous node's output 0 (which must not be a graph
// output), in order of steps. It returns the matched nodes (start first;
// skipped optional steps are absent) and whether the chain matched.
func MatchChain(ix *Index, start *Node, first Step, rest ...Step) ([]*Node, bool) {
	if !stepMatches(start, first) {
		return nil, false
	}
	chain := []*Node{start}
	cur := start
	for _, s := range rest {
		out := cur.Output(0)
		var next *Node
		if ix.SingleUse(out) {
			next = ix.Consumers[out][0]
		}
		ok := next != nil && stepMatches(next, s)
		if ok && s.Input >= 0 {
			ok = next.Input(s.Input) == out
		}
		if ok {
			// The value must enter as a real input, not only via a subgraph.
			found := false
			for _, v := range next.Inputs {
				if v == out {
					found = true
				}
			}
			ok = found
		}
		if !ok {
			if s.Optional {
				continue
			}
			return nil, false
		}
		chain = append(chain, next)
		cur = next
	}
	return chain, true
}

func stepMatches(n *Node, s Step) bool {
	if n == nil || !OpIs(n.OpType, s.Op) {
		return false
	}
	if s.Domain == "" {
		if !IsDefaultDomain(n.Domain) {
			return false
		}
	} else if n.Domain != s.Domain {
		return false
	}
	return s.Check == nil || s.Check(n)
}
