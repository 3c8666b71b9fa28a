package convert

import (
	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/graph"
)

// CalibrationConfig is the calibration config that gives the activation
// ranges cfg asks for on g: the activation observer, dtype, scheme and
// reduce_range, with op-type and node overrides applied to the outputs of
// the matching nodes. Weights are not observed: convert computes their
// ranges itself from the constant data.
func CalibrationConfig(cfg Config, g *graph.Graph) calibrate.Config {
	spec := func(a ActivationSpec) calibrate.ObserverSpec {
		s := calibrate.ObserverSpec{Observer: a.Observer, DType: a.DType, QScheme: a.ActivationQScheme(), ReduceRange: a.ReduceRange}
		switch s.DType {
		case "uint8", "int8", "uint16", "int16":
			s.DType = "q" + s.DType
		}
		if a.Is16() {
			f := false
			s.ReduceRange = &f
		}
		return s
	}
	c := calibrate.Config{
		Activation: spec(cfg.Activation),
		Weight:     calibrate.ObserverSpec{Observer: "none"},
	}
	for _, o := range cfg.OpTypes {
		c.OpTypes = append(c.OpTypes, calibrate.Override{OpType: o.OpType, ObserverSpec: spec(cfg.Activation.merge(o.Activation))})
	}
	seen := map[string]bool{}
	for _, o := range cfg.Nodes {
		for _, n := range g.Nodes {
			if ok, _ := globMatch(o.Name, n.Name); !ok {
				continue
			}
			a := cfg.Resolve(n).Activation
			for _, v := range n.Outputs {
				if v != nil && isFloatAct(v) && !seen[v.Name] {
					seen[v.Name] = true
					c.Tensors = append(c.Tensors, calibrate.Override{Name: v.Name, ObserverSpec: spec(a)})
				}
			}
		}
	}
	// The 16-bit tensors (a16.go's rule) come last: a later match wins.
	wide := wideActivations(cfg, g)
	for _, v := range g.Inputs {
		if a, ok := wide[v]; ok {
			c.Tensors = append(c.Tensors, calibrate.Override{Name: v.Name, ObserverSpec: spec(a)})
			delete(wide, v)
		}
	}
	for _, n := range g.Nodes {
		for _, v := range n.Outputs {
			if a, ok := wide[v]; ok {
				c.Tensors = append(c.Tensors, calibrate.Override{Name: v.Name, ObserverSpec: spec(a)})
				delete(wide, v)
			}
		}
	}
	return c
}
