package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/qtool/qtool/internal/atomicfile"
	"github.com/qtool/qtool/internal/graph"
	"github.com/qtool/qtool/internal/model/onnxpb"
)

// MaxOpset is the newest ai.onnx opset qtool implements (ONNX 1.22's
// backend tests, the newest checked here, are at opset 25).
const MaxOpset = 25

// OpsetID is one opset_import entry as the file wrote it.
type OpsetID struct {
	Domain  string
	Version int64
}

// Model is an ONNX model: the main graph in qtool's IR plus the model-level
// fields that a round trip must keep.
type Model struct {
	// Path is the file the model was loaded from ("" for LoadBytes).
	Path string
	// FileSize is the serialized size in bytes of what was loaded.
	FileSize int64

	// IRVersion is what Save writes: the file's, raised to 4 when
	// Normalize raised the opset to 9. FileIRVersion is the file's.
	IRVersion       int64
	FileIRVersion   int64
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Metadata        []graph.KV

	// FileOpsets is opset_import as the file declared it, in file order.
	// Graph.Opsets holds the versions whose semantics the graph has now
	// (Normalize may raise the default domain's); Save writes those, in
	// FileOpsets' order for the domains the file had.
	FileOpsets []OpsetID

	Graph *graph.Graph

	// Functions and TrainingInfo are not converted to the IR: they are kept
	// verbatim so that saving does not drop them.
	Functions    []*onnxpb.FunctionProto
	TrainingInfo []*onnxpb.TrainingInfoProto

	// ExternalFiles lists the external data locations the model read, in
	// first-use order (relative to the model's folder).
	ExternalFiles []string
}

// Load reads, validates and converts an ONNX file. External data is
// resolved relative to the file's folder. Errors are one line and start with
// the path.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := decodeModel(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	m.Path = path
	return m, nil
}

// LoadBytes is Load for a model already in memory; dir is the folder that
// external data is relative to ("" refuses external data).
func LoadBytes(data []byte, dir string) (*Model, error) {
	m, err := decodeModel(data, dir)
	if err != nil {
		return nil, fmt.Errorf("onnx model: %v", err)
	}
	return m, nil
}

// GraphCloner returns a function that decodes data, a model serialized
// with Marshal, into a new graph on each call: independent copies of one
// graph for passes that edit the graph they are given.
func GraphCloner(data []byte) func() (*graph.Graph, error) {
	return func() (*graph.Graph, error) {
		m, err := LoadBytes(data, "")
		if err != nil {
			return nil, err
		}
		return m.Graph, nil
	}
}

func decodeModel(data []byte, dir string) (*Model, error) {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, fmt.Errorf("not a valid ONNX protobuf (truncated or corrupt): %v", oneLine(err))
	}
	if err := checkUnknown(&mp); err != nil {
		return nil, err
	}
	if mp.Graph == nil {
		return nil, errors.New("model has no graph")
	}
	if len(mp.Configuration) > 0 {
		return nil, errors.New("model device configuration is not supported")
	}
	m := &Model{
		FileSize:        int64(len(data)),
		IRVersion:       mp.GetIrVersion(),
		ProducerName:    mp.GetProducerName(),
		ProducerVersion: mp.GetProducerVersion(),
		Domain:          mp.GetDomain(),
		ModelVersion:    mp.GetModelVersion(),
		DocString:       mp.GetDocString(),
		Metadata:        kvs(mp.MetadataProps),
		Functions:       mp.Functions,
		TrainingInfo:    mp.TrainingInfo,
	}
	opsets := map[string]int64{}
	for _, op := range mp.OpsetImport {
		dom := op.GetDomain()
		key := dom
		if graph.IsDefaultDomain(key) {
			key = ""
		}
		if _, dup := opsets[key]; dup {
			return nil, fmt.Errorf("opset_import lists domain %q twice", dom)
		}
		if op.GetVersion() < 1 {
			return nil, fmt.Errorf("opset_import domain %q has version %d", dom, op.GetVersion())
		}
		if key == "" && op.GetVersion() > MaxOpset {
			// A newer opset may change what an op means; running it with
			// the semantics we know would give wrong answers silently.
			return nil, fmt.Errorf("ai.onnx opset %d is newer than qtool knows (%d)", op.GetVersion(), MaxOpset)
		}
		opsets[key] = op.GetVersion()
		m.FileOpsets = append(m.FileOpsets, OpsetID{Domain: dom, Version: op.GetVersion()})
	}
	if len(mp.OpsetImport) == 0 {
		// IR version 1 files may omit opset_import: the spec says opset 1.
		opsets[""] = 1
	}
	d := &decoder{dir: dir, opsets: opsets, irVersion: mp.GetIrVersion()}
	g, err := d.graph(mp.Graph, nil)
	if err != nil {
		return nil, err
	}
	m.Graph = g
	m.ExternalFiles = d.external
	m.FileIRVersion = m.IRVersion
	orig, hasDefault := opsets[""]
	if err := graph.Normalize(g); err != nil {
		return nil, err
	}
	if hasDefault && g.Opsets[""] != orig {
		// opset 9 came with IR version 4; an IR-3 file raised to opset 9
		// is written as IR 4 so that checkers accept it.
		if m.IRVersion < 4 {
			m.IRVersion = 4
		}
	}
	// Shapes help every later pass; a model whose declared shapes
	// contradict inference still loads (the runtime checks real shapes).
	_ = graph.InferShapes(g)
	return m, nil
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// checkUnknown refuses messages with fields our proto does not define (from
// a newer IR, or a field sent with the wrong wire type, which the protobuf
// runtime also files as unknown): keeping them silently would drop them on
// save or misread the model.
func checkUnknown(m proto.Message) error {
	return walkUnknown(m.ProtoReflect())
}

func walkUnknown(m protoreflect.Message) error {
	if u := m.GetUnknown(); len(u) > 0 {
		var nums []string
		b := []byte(u)
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				break
			}
			nums = append(nums, fmt.Sprintf("%d (wire type %d)", num, typ))
			b = b[n:]
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				break
			}
			b = b[m:]
		}
		return fmt.Errorf("%s has unknown or mistyped field(s) %s", m.Descriptor().Name(), strings.Join(nums, ", "))
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = walkUnknown(l.Get(i).Message())
			}
		case fd.IsMap():
		default:
			err = walkUnknown(v.Message())
		}
		return err == nil
	})
	return err
}

// Marshal serializes the model. Initializers are written inline in
// raw_data; output is deterministic.
func Marshal(m *Model) ([]byte, error) {
	mp, err := encodeModel(m)
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(mp)
}

// Save writes the model atomically: a temporary file in the same folder is
// renamed over path, so a failed write never leaves half a model.
func Save(m *Model, path string) error {
	mp, err := encodeModel(m)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	// Go's protobuf writes messages of any size, but every ONNX reader
	// (protobuf C++, onnx, ONNX Runtime, our own Load) refuses one over
	// 2 GiB: refuse before writing rather than leave a file nothing opens.
	if n := proto.Size(mp); int64(n) > maxProtoBytes {
		return fmt.Errorf("%s: the model would be %.2f GiB (%d bytes), over protobuf's 2 GiB limit for one message, which ONNX readers refuse", path, float64(n)/(1<<30), n)
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return atomicfile.WriteBytes(path, data)
}

// maxProtoBytes is protobuf's limit on one serialized message (2 GiB - 1);
// a variable so that tests can lower it.
var maxProtoBytes int64 = 1<<31 - 1

// opsetImports lists the graph's opsets in the file's order, then any new
// domains sorted.
func opsetImports(m *Model) []*onnxpb.OperatorSetIdProto {
	var out []*onnxpb.OperatorSetIdProto
	done := map[string]bool{}
	for _, o := range m.FileOpsets {
		key := o.Domain
		if graph.IsDefaultDomain(key) {
			key = ""
		}
		v, ok := m.Graph.Opsets[key]
		if !ok || done[key] {
			continue
		}
		done[key] = true
		out = append(out, &onnxpb.OperatorSetIdProto{Domain: proto.String(o.Domain), Version: proto.Int64(v)})
	}
	var rest []string
	for k := range m.Graph.Opsets {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, &onnxpb.OperatorSetIdProto{Domain: proto.String(k), Version: proto.Int64(m.Graph.Opsets[k])})
	}
	return out
}
