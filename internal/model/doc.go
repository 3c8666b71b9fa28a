// Package model reads and writes ONNX models and converts them to and from
// qtool's graph IR (internal/graph).
//
// Reading (Load, LoadBytes) treats every file as untrusted: the protobuf is
// decoded with our own generated code (onnxpb, from onnx.proto written from
// the IR specification), then
//
//   - fields our proto does not know, or that arrive with the wrong wire
//     type, are refused by number rather than silently dropped;
//   - tensor sizes are checked before anything is allocated (negative dims,
//     more than tensor.MaxElements elements, raw_data or typed-field counts
//     that do not match the shape, out-of-range packed values);
//   - external data is read only from regular files inside the model's
//     folder (absolute paths, "..", and symlinks leading outside are
//     refused), with offset and length checked against the file;
//   - the graph must be well formed: every node input is a graph input,
//     initializer, earlier node output or outer-scope value (for If/Loop/
//     Scan bodies), output names are unique, attribute types agree with the
//     field that is set, and there is no cycle.
//
// Every error is one line and names the file (Load) and the problem.
//
// After conversion, Load normalises old ai.onnx opsets (graph.Normalize:
// opset < 9 forms become opset-9 forms) and infers shapes
// (graph.InferShapes) on a best-effort basis.
//
// Writing (Marshal, Save) is deterministic and puts tensor data inline in
// raw_data. What the IR does not model — functions and training_info — is
// kept verbatim on the Model and written back; sequence/optional/map types
// and type_proto attributes are carried through graph.Type. A load, save,
// load round trip yields an equal graph (graph.Equal) with bit-identical
// tensors; roundtrip_test.go checks that on every model we can find.
//
// Inspect summarises a model for `qtool inspect`.
package model
