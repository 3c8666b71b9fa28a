#!/usr/bin/env python3
"""Reference numbers for model.Inspect, computed with the onnx Python package
(1.12) on the shared models: node count and op histogram (subgraphs
included), constant parameters (initializers and Constant values), inputs
and outputs. Run from the repo root with /usr/bin/python3:

    /usr/bin/python3 internal/model/testdata/inspect_golden.py ../shared > internal/model/testdata/inspect_golden.json
"""
import collections, glob, json, os, sys
import numpy as np
import onnx
from onnx import numpy_helper

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
out = {}
for path in sorted(glob.glob(os.path.join(shared, "models", "**", "*.onnx"), recursive=True)):
    m = onnx.load(path)
    ops, nodes, params, nbytes = collections.Counter(), 0, 0, 0
    def walk(g):
        global nodes, params, nbytes
        for t in g.initializer:
            a = numpy_helper.to_array(t)
            params += a.size; nbytes += a.nbytes
        for n in g.node:
            nodes += 1
            ops[n.op_type if n.domain in ("", "ai.onnx") else n.domain + ":" + n.op_type] += 1
            for a in n.attribute:
                if n.op_type == "Constant" and a.name == "value":
                    arr = numpy_helper.to_array(a.t)
                    params += arr.size; nbytes += arr.nbytes
                for sg in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    walk(sg)
    walk(m.graph)
    inits = {t.name for t in m.graph.initializer}
    def dims(vi):
        return [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
                for d in vi.type.tensor_type.shape.dim]
    out[os.path.relpath(path, shared)] = {
        "nodes": nodes, "ops": dict(ops), "parameters": int(params), "parameter_bytes": int(nbytes),
        "inputs": [[i.name, dims(i)] for i in m.graph.input if i.name not in inits],
        "outputs": [[o.name, dims(o)] for o in m.graph.output],
    }
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
