package model

import (
	"sort"

	"github.com/qtool/qtool/internal/graph"
)

// Info summarises a model for `qtool inspect` (text or --json).
type Info struct {
	Path            string `json:"path,omitempty"`
	FileSize        int64  `json:"file_size"`
	IRVersion       int64  `json:"ir_version"`
	FileIRVersion   int64  `json:"file_ir_version"`
	ProducerName    string `json:"producer_name,omitempty"`
	ProducerVersion string `json:"producer_version,omitempty"`
	Domain          string `json:"domain,omitempty"`
	ModelVersion    int64  `json:"model_version,omitempty"`
	DocString       string `json:"doc_string,omitempty"`
	// Opsets lists the file's opset imports with the version the graph was
	// normalised to (equal unless the file used an old ai.onnx opset).
	Opsets  []OpsetInfo `json:"opsets"`
	Inputs  []ValueInfo `json:"inputs"`
	Outputs []ValueInfo `json:"outputs"`
	// Ops counts nodes by op type, including subgraphs; ops outside the
	// default domain are keyed "domain:op".
	Ops map[string]int `json:"ops"`
	// Nodes counts every node, including those in subgraphs.
	Nodes int `json:"nodes"`
	// Parameters and ParameterBytes total the constant tensors: initializers
	// and Constant nodes' values, in every (sub)graph.
	Parameters     int64 `json:"parameters"`
	ParameterBytes int64 `json:"parameter_bytes"`
	Initializers   int   `json:"initializers"`
	// ExternalData lists external data files, relative to the model.
	ExternalData []string   `json:"external_data,omitempty"`
	Metadata     []graph.KV `json:"metadata,omitempty"`
	Functions    int        `json:"functions,omitempty"`
	TrainingInfo int        `json:"training_info,omitempty"`
}

// OpsetInfo is one opset import.
type OpsetInfo struct {
	Domain     string `json:"domain"`
	Version    int64  `json:"version"`
	Normalized int64  `json:"normalized_version"`
}

// ValueInfo describes a graph input or output.
type ValueInfo struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	// Shape has one entry per dim: a number when known, the symbolic name
	// when symbolic, null when unknown; the whole field is null when the
	// rank is unknown.
	Shape []any `json:"shape"`
	// ShapeText is the same shape written as "[N,3,224,224]".
	ShapeText string `json:"shape_text"`
	// Type is the full type for values that are not plain tensors.
	Type string `json:"type,omitempty"`
}

func valueSummary(v *graph.Value) ValueInfo {
	vi := ValueInfo{Name: v.Name, DType: v.DType.String(), ShapeText: v.Shape.String()}
	if v.Shape != nil {
		vi.Shape = make([]any, len(v.Shape))
		for i, d := range v.Shape {
			switch {
			case d.Param != "":
				vi.Shape[i] = d.Param
			case d.Value >= 0:
				vi.Shape[i] = d.Value
			}
		}
	}
	if v.Type != nil && v.Type.Kind != graph.KindTensor {
		vi.Type = v.Type.String()
		vi.DType = ""
	}
	return vi
}

// Inspect summarises m.
func Inspect(m *Model) Info {
	info := Info{
		Path: m.Path, FileSize: m.FileSize, IRVersion: m.IRVersion, FileIRVersion: m.FileIRVersion,
		ProducerName: m.ProducerName, ProducerVersion: m.ProducerVersion, Domain: m.Domain,
		ModelVersion: m.ModelVersion, DocString: m.DocString, Ops: map[string]int{},
		ExternalData: m.ExternalFiles, Metadata: m.Metadata, Functions: len(m.Functions),
		TrainingInfo: len(m.TrainingInfo), Opsets: []OpsetInfo{}, Inputs: []ValueInfo{}, Outputs: []ValueInfo{},
	}
	g := m.Graph
	seen := map[string]bool{}
	for _, o := range m.FileOpsets {
		key := o.Domain
		if graph.IsDefaultDomain(key) {
			key = ""
		}
		seen[key] = true
		info.Opsets = append(info.Opsets, OpsetInfo{Domain: o.Domain, Version: o.Version, Normalized: g.Opsets[key]})
	}
	var rest []string
	for k := range g.Opsets {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		// Implicit opset (IR 1 files) or one a pass added.
		info.Opsets = append(info.Opsets, OpsetInfo{Domain: k, Normalized: g.Opsets[k]})
	}
	for _, v := range g.Inputs {
		info.Inputs = append(info.Inputs, valueSummary(v))
	}
	for _, v := range g.Outputs {
		info.Outputs = append(info.Outputs, valueSummary(v))
	}
	var walk func(g *graph.Graph)
	walk = func(g *graph.Graph) {
		for _, v := range g.Initializers {
			info.Initializers++
			if v.Const != nil {
				info.Parameters += int64(v.Const.Len())
				info.ParameterBytes += int64(v.Const.Len()) * int64(v.Const.DType.Size())
			}
		}
		for _, n := range g.Nodes {
			info.Nodes++
			key := n.OpType
			if !graph.IsDefaultDomain(n.Domain) {
				key = n.Domain + ":" + n.OpType
			} else if n.OpType == "Constant" {
				if t, err := n.AttrTensor("value"); err == nil && t != nil {
					info.Parameters += int64(t.Len())
					info.ParameterBytes += int64(t.Len()) * int64(t.DType.Size())
				}
			}
			info.Ops[key]++
			for _, sg := range n.Subgraphs() {
				walk(sg)
			}
		}
	}
	walk(g)
	return info
}
