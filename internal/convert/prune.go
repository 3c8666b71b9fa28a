package convert

import "github.com/qtool/qtool/internal/graph"

// pruneUnused removes the nodes and initializers nothing reads any more.
// graph.RemoveUnused keeps initializers that an IR < 4 file also listed as
// graph inputs, since a caller could feed them; once conversion has replaced
// their readers with quantized copies, the float originals are dead weight
// (mnist-8's int8 model came out larger than the float one), so they are
// dropped from the input list first.
func pruneUnused(g *graph.Graph) {
	g.RemoveUnused()
	if len(g.InitializerInputs) == 0 {
		return
	}
	ix := g.Index()
	used := map[string]bool{}
	for v := range ix.Consumers {
		used[v.Name] = true
	}
	for v := range ix.Outputs {
		used[v.Name] = true
	}
	var keep []string
	for _, name := range g.InitializerInputs {
		if used[name] {
			keep = append(keep, name)
		}
	}
	g.InitializerInputs = keep
	g.RemoveUnused()
}
