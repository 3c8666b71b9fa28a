package main

// The command-line corpus: inputs that pass (or never reach) the model
// loader but that qtool's commands must still refuse with exit code 2 and one
// line naming the file: models the runtime cannot run, data files, images,
// calibration tables and configs. Written to testdata/malformed/cli/ with
// CLI.tsv, which cmd/qtool's corpus test reads.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/qtool/qtool/internal/calibrate"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/model/malformed"
	"github.com/qtool/qtool/internal/model/onnxpb"
	_ "github.com/qtool/qtool/internal/runtime/ops/all" // calibrating the base model runs it
)

// cliCase is one line of CLI.tsv. Args are the command line with $D (the
// cli folder), $M (testdata/malformed) and $O (a fresh output folder)
// substituted; File must appear in the error line, and Want too (a word
// naming the problem).
type cliCase struct {
	name, args, file, want string
}

func npyBytes(dict string, data []byte) []byte {
	hdr := "{" + dict + "}"
	pad := 64 - (10+len(hdr)+1)%64
	hdr += strings.Repeat(" ", pad%64) + "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(hdr)))
	b = append(b, hdr...)
	return append(b, data...)
}

func f32s(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func npyF32(shape string, v ...float32) []byte {
	return npyBytes(fmt.Sprintf("'descr': '<f4', 'fortran_order': False, 'shape': %s, ", shape), f32s(v...))
}

func zipOf(files map[string][]byte, order ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range order {
		w, err := zw.Create(n)
		if err != nil {
			panic(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func pngOf(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 40), uint8(y * 40), 99, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// hugePNG is a PNG whose header claims width x height; the rest is cut off.
// Its size must be refused from the header, before pixels are allocated.
func hugePNG(w, h uint32) []byte {
	b := pngOf(2, 2)
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	// The IHDR CRC is then wrong: fix it so the decoder reads the size.
	crc := crc32.ChecksumIEEE(b[12:29])
	binary.BigEndian.PutUint32(b[29:], crc)
	return b[:33]
}

func tarOf(files map[string][]byte, order ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range order {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	tw.Close()
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// imageModel is X[1,3,4,4] -> Relu -> Y, the input the image cases feed.
func imageModel() *onnxpb.ModelProto {
	m := malformed.BaseModel()
	g := m.Graph
	g.Initializer = nil
	g.Node = []*onnxpb.NodeProto{{OpType: proto.String("Relu"), Name: proto.String("relu"), Input: []string{"X"}, Output: []string{"Y"}}}
	for _, vi := range []*onnxpb.ValueInfoProto{g.Input[0], g.Output[0]} {
		sp := vi.Type.GetTensorType().Shape
		sp.Dim = nil
		for _, d := range []int64{1, 3, 4, 4} {
			sp.Dim = append(sp.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return m
}

func mutModel(f func(m *onnxpb.ModelProto)) []byte {
	m := malformed.BaseModel()
	f(m)
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func attr(name string, t onnxpb.AttributeProto_AttributeType, set func(a *onnxpb.AttributeProto)) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: proto.String(name), Type: t.Enum()}
	set(a)
	return a
}

// ifModel adds an If on a constant condition whose branches disagree: the
// then branch has one output, the else branch two.
func ifModel(m *onnxpb.ModelProto) {
	vi := func(n string) *onnxpb.ValueInfoProto { return &onnxpb.ValueInfoProto{Name: proto.String(n)} }
	then := &onnxpb.GraphProto{Name: proto.String("then"),
		Node:   []*onnxpb.NodeProto{{OpType: proto.String("Identity"), Input: []string{"Y0"}, Output: []string{"t"}}},
		Output: []*onnxpb.ValueInfoProto{vi("t")}}
	els := &onnxpb.GraphProto{Name: proto.String("else"),
		Node: []*onnxpb.NodeProto{{OpType: proto.String("Identity"), Input: []string{"Y0"}, Output: []string{"e1"}},
			{OpType: proto.String("Identity"), Input: []string{"Y0"}, Output: []string{"e2"}}},
		Output: []*onnxpb.ValueInfoProto{vi("e1"), vi("e2")}}
	g := m.Graph
	g.Node[1].Output[0] = "Y0"
	g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: proto.String("cond"), DataType: proto.Int32(int32(onnxpb.TensorProto_BOOL)), Int32Data: []int32{0}})
	g.Node = append(g.Node, &onnxpb.NodeProto{OpType: proto.String("If"), Name: proto.String("branch"), Input: []string{"cond"}, Output: []string{"Y"},
		Attribute: []*onnxpb.AttributeProto{
			{Name: proto.String("then_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: then},
			{Name: proto.String("else_branch"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: els}}})
}

// baseTable calibrates the base model on one sample, so the table cases
// differ from a table qtool wrote by exactly their defect.
func baseTable(dir string) (map[string]any, error) {
	mp := filepath.Join(dir, "base.onnx")
	m, err := model.Load(mp)
	if err != nil {
		return nil, err
	}
	sum, err := calibrate.FileSHA256(mp)
	if err != nil {
		return nil, err
	}
	in := filepath.Join(dir, "x12.npy")
	ds, err := calibrate.Open([]calibrate.DataSpec{{Path: in}}, calibrate.InputSpecs(m.Graph), calibrate.Options{})
	if err != nil {
		return nil, err
	}
	defer ds.Close()
	tab, err := calibrate.Calibrate(context.Background(), m.Graph, calibrate.ModelInfo{Path: "base.onnx", SHA256: sum}, ds,
		calibrate.Config{}, "minmax", calibrate.RunOptions{Threads: 1}, calibrate.DatasetInfo{})
	if err != nil {
		return nil, err
	}
	b, err := tab.Marshal()
	if err != nil {
		return nil, err
	}
	var v map[string]any
	return v, json.Unmarshal(b, &v)
}

func jsonOf(v any) []byte {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		panic(err)
	}
	return b
}

// mutTable deep-copies the base table and applies f.
func mutTable(base map[string]any, f func(t map[string]any)) []byte {
	var t map[string]any
	if err := json.Unmarshal(jsonOf(base), &t); err != nil {
		panic(err)
	}
	f(t)
	return jsonOf(t)
}

func tensorEntry(t map[string]any, name string) map[string]any {
	for _, e := range t["tensors"].([]any) {
		if m := e.(map[string]any); m["name"] == name {
			return m
		}
	}
	panic("no tensor " + name)
}

func writeCLI(root string) error {
	dir := filepath.Join(root, "cli")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty_folder"), 0o755); err != nil {
		return err
	}
	// An empty folder is not kept by git: a marker file that is not data.
	files := map[string][]byte{
		"empty_folder/README": []byte("no samples here: calibrate must say so\n"),
		"base.onnx":           mutModel(func(*onnxpb.ModelProto) {}),
		"x12.npy":             npyF32("(1, 2)", 1, -2),
		"samples.npy":         npyF32("(3, 2)", 1, -2, 0.5, 3, -1, 0),
	}
	imgModel, err := proto.Marshal(imageModel())
	if err != nil {
		return err
	}
	files["image_model.onnx"] = imgModel
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	base, err := baseTable(dir)
	if err != nil {
		return fmt.Errorf("base table: %v", err)
	}
	files = map[string][]byte{}
	var cases []cliCase
	add := func(name string, data []byte, args, want string) {
		files[name] = data
		cases = append(cases, cliCase{strings.TrimSuffix(name, filepath.Ext(name)), args, name, want})
	}
	addArgs := func(name, args, file, want string) { cases = append(cases, cliCase{name, args, file, want}) }

	// Models the loader accepts but the runtime cannot run.
	const runIn = " --input $D/x12.npy --output-dir $O"
	add("unknown_op.onnx", mutModel(func(m *onnxpb.ModelProto) { m.Graph.Node[1].OpType = proto.String("Frobnicate") }),
		"run $D/unknown_op.onnx"+runIn, "Frobnicate")
	add("unknown_domain_op.onnx", mutModel(func(m *onnxpb.ModelProto) {
		m.Graph.Node[1].Domain = proto.String("com.example")
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("com.example"), Version: proto.Int64(1)})
	}), "run $D/unknown_domain_op.onnx"+runIn, "com.example")
	add("future_opset.onnx", mutModel(func(m *onnxpb.ModelProto) { m.OpsetImport[0].Version = proto.Int64(99) }),
		"run $D/future_opset.onnx"+runIn, "opset")
	add("attribute_wrong_type.onnx", mutModel(func(m *onnxpb.ModelProto) {
		m.Graph.Node[1].OpType = proto.String("LeakyRelu")
		m.Graph.Node[1].Attribute = []*onnxpb.AttributeProto{attr("alpha", onnxpb.AttributeProto_STRING, func(a *onnxpb.AttributeProto) { a.S = []byte("big") })}
	}), "run $D/attribute_wrong_type.onnx"+runIn, "alpha")
	add("missing_required_attribute.onnx", mutModel(func(m *onnxpb.ModelProto) {
		m.Graph.Node[1].OpType = proto.String("Transpose")
		m.Graph.Node[1].Attribute = []*onnxpb.AttributeProto{attr("perm", onnxpb.AttributeProto_INTS, func(a *onnxpb.AttributeProto) { a.Ints = []int64{0, 5} })}
	}), "run $D/missing_required_attribute.onnx"+runIn, "perm")
	add("if_branches_mismatch.onnx", mutModel(ifModel), "run $D/if_branches_mismatch.onnx"+runIn, "output")
	// A 200-byte model that asks the runtime for 8 GiB: ConstantOfShape
	// of a constant shape. Legal ONNX, so it must be refused by a memory
	// budget, not by the loader.
	add("constant_of_shape_bomb.onnx", mutModel(func(m *onnxpb.ModelProto) {
		g := m.Graph
		g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: proto.String("shape"), DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)),
			Dims: []int64{2}, Int64Data: []int64{1 << 16, 1 << 15}})
		g.Node[1].Output[0] = "R"
		g.Node = append(g.Node,
			&onnxpb.NodeProto{OpType: proto.String("ConstantOfShape"), Name: proto.String("bomb"), Input: []string{"shape"}, Output: []string{"big"}},
			&onnxpb.NodeProto{OpType: proto.String("ReduceMax"), Name: proto.String("rmax"), Input: []string{"big"}, Output: []string{"m"},
				Attribute: []*onnxpb.AttributeProto{attr("keepdims", onnxpb.AttributeProto_INT, func(a *onnxpb.AttributeProto) { a.I = proto.Int64(0) })}},
			&onnxpb.NodeProto{OpType: proto.String("Add"), Name: proto.String("add"), Input: []string{"R", "m"}, Output: []string{"Y"}})
	}), "run $D/constant_of_shape_bomb.onnx"+runIn, "memory")
	// bench synthesizes inputs from the declared shape: 2^31 floats here.
	add("bench_huge_declared_input.onnx", mutModel(func(m *onnxpb.ModelProto) {
		m.Graph.Node[0].OpType = proto.String("Add")
		m.Graph.Initializer[0].Dims, m.Graph.Initializer[0].FloatData = nil, []float32{1}
		for _, vi := range []*onnxpb.ValueInfoProto{m.Graph.Input[0], m.Graph.Output[0]} {
			d := vi.Type.GetTensorType().Shape.Dim
			d[0].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1 << 16}
			d[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 1 << 15}
		}
	}), "bench $D/bench_huge_declared_input.onnx --runs 1", "bytes")
	add("too_few_inputs.onnx", mutModel(func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input = m.Graph.Node[0].Input[:1] }),
		"run $D/too_few_inputs.onnx"+runIn, "input")

	// Data for run: the base model takes X float32 [1, 2].
	runWith := func(name string, data []byte, want string) {
		add(name, data, "run $D/base.onnx --input $D/"+name+" --output-dir $O", want)
	}
	runWith("npy_bad_magic.npy", []byte("\x93NUMPX\x01\x00\x10\x00{}              \n"), "magic")
	runWith("npy_truncated_header.npy", npyF32("(1, 2)", 1, 2)[:20], "header")
	runWith("npy_header_garbage.npy", npyBytes("'descr': <f4, 'shape': (1, 2)", f32s(1, 2)), "header")
	runWith("npy_no_shape.npy", npyBytes("'descr': '<f4', 'fortran_order': False, ", f32s(1, 2)), "shape")
	runWith("npy_big_endian.npy", npyBytes("'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), ", f32s(1, 2)), "big-endian")
	runWith("npy_fortran.npy", npyBytes("'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), ", f32s(1, 2)), "fortran")
	runWith("npy_object.npy", npyBytes("'descr': '|O', 'fortran_order': False, 'shape': (1, 2), ", f32s(1, 2)), "dtype")
	runWith("npy_data_short.npy", npyF32("(1, 2)", 1), "bytes")
	runWith("npy_huge_shape.npy", npyF32("(4611686018427387904, 4)", 1, 2), "shape")
	runWith("npy_negative_dim.npy", npyF32("(-1, 2)", 1, 2), "negative")
	runWith("npy_wrong_dtype.npy", npyBytes("'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), ", make([]byte, 16)), "float64")
	runWith("npy_wrong_shape.npy", npyF32("(1, 3)", 1, 2, 3), "shape")
	runWith("npy_wrong_rank.npy", npyF32("(2,)", 1, 2), "shape")
	runWith("tensor_truncated.pb", func() []byte {
		b, _ := proto.Marshal(&onnxpb.TensorProto{Name: proto.String("X"), DataType: proto.Int32(1), Dims: []int64{1, 2}, RawData: f32s(1, 2)})
		return b[:len(b)-3]
	}(), "truncated")
	runWith("tensor_huge_dims.pb", func() []byte {
		b, _ := proto.Marshal(&onnxpb.TensorProto{Name: proto.String("X"), DataType: proto.Int32(1), Dims: []int64{1 << 62, 1 << 62}})
		return b
	}(), "more than")
	runWith("tensor_external_escape.pb", func() []byte {
		tp := malformed.External("../../../go.mod")
		tp.Name, tp.Dims = proto.String("X"), []int64{1, 2}
		b, _ := proto.Marshal(tp)
		return b
	}(), "escapes")
	runWith("tensor_string.pb", func() []byte {
		b, _ := proto.Marshal(&onnxpb.TensorProto{Name: proto.String("X"), DataType: proto.Int32(int32(onnxpb.TensorProto_STRING)), Dims: []int64{1, 2},
			StringData: [][]byte{[]byte("a"), []byte("b")}})
		return b
	}(), "string")
	runWith("input_unknown_format.txt", []byte("1 2\n"), "format")
	addArgs("input_name_unknown", "run $D/base.onnx --input nosuch=$D/x12.npy --output-dir $O", "base.onnx", "nosuch")
	addArgs("input_missing_file", "run $D/base.onnx --input $D/does_not_exist.npy --output-dir $O", "does_not_exist.npy", "no such file")

	// Data for calibrate.
	calib := func(name string, data []byte, want string) {
		add(name, data, "calibrate $D/base.onnx --data $D/"+name+" -o $O/t.json", want)
	}
	calib("calib_nan.npy", npyF32("(2, 2)", 1, float32(math.NaN()), 0, 1), "NaN")
	calib("calib_inf.npy", npyF32("(2, 2)", 1, 2, float32(math.Inf(-1)), 1), "Inf")
	calib("calib_zero_samples.npy", npyF32("(0, 2)"), "no samples")
	calib("calib_wrong_dtype.npy", npyBytes("'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), ", make([]byte, 16)), "int32")
	calib("calib_wrong_shape.npy", npyF32("(2, 3)", 1, 2, 3, 4, 5, 6), "shape")
	calib("calib_data_short.npy", npyF32("(100, 2)", 1, 2), "bytes")
	calib("calib_not_zip.npz", []byte("PK\x03\x04 this is not a zip archive"), "zip")
	calib("calib_npz_wrong_name.npz", zipOf(map[string][]byte{"a.npy": npyF32("(1, 2)", 1, 2), "b.npy": npyF32("(1, 2)", 1, 2)}, "a.npy", "b.npy"), "X")
	calib("calib_npz_bad_member.npz", zipOf(map[string][]byte{"X.npy": []byte("not npy")}, "X.npy"), "npy")
	addArgs("calib_empty_folder", "calibrate $D/base.onnx --data $D/empty_folder -o $O/t.json", "empty_folder", "no")
	addArgs("calib_bad_observer", "calibrate $D/base.onnx --data $D/x12.npy --observer histogramm -o $O/t.json", "histogramm", "observer")
	addArgs("calib_negative_limit", "calibrate $D/base.onnx --data $D/x12.npy --limit -3 -o $O/t.json", "limit", "negative")
	addArgs("calib_output_is_input", "calibrate $D/base.onnx --data $D/x12.npy -o $D/x12.npy", "x12.npy", "overwrite")

	// Images, for the image model X[1,3,4,4].
	imgDir := func(name string, members map[string][]byte, want string) {
		for n, b := range members {
			files[filepath.Join(name, n)] = b
		}
		addArgs(name, "calibrate $D/image_model.onnx --data $D/"+name+" -o $O/t.json", name, want)
	}
	good := pngOf(4, 4)
	imgDir("img_truncated", map[string][]byte{"a.png": good, "b.png": good[:len(good)/2]}, "image")
	imgDir("img_not_an_image", map[string][]byte{"a.jpg": []byte("this is text, not a JPEG")}, "image")
	imgDir("img_empty_file", map[string][]byte{"a.png": nil}, "image")
	imgDir("img_huge_header", map[string][]byte{"a.png": hugePNG(1<<20, 1<<20)}, "out of range")
	imgDir("img_wrong_size", map[string][]byte{"a.png": pngOf(5, 3)}, "5")
	add("img_garbage.tar", []byte(strings.Repeat("not a tar archive ", 40)), "calibrate $D/image_model.onnx --data $D/img_garbage.tar -o $O/t.json", "tar")
	add("img_corrupt.tar.gz", gz(tarOf(map[string][]byte{"a.png": good}, "a.png"))[:40], "calibrate $D/image_model.onnx --data $D/img_corrupt.tar.gz -o $O/t.json", "EOF")
	add("img_bad_member.tar", tarOf(map[string][]byte{"a.png": good, "b.png": []byte("garbage")}, "a.png", "b.png"),
		"calibrate $D/image_model.onnx --data $D/img_bad_member.tar -o $O/t.json", "b.png")

	// Calibration tables, through calibrate merge and convert --table.
	merge := func(name string, data []byte, want string) {
		add(name, data, "calibrate merge $D/table_ok.json $D/"+name+" -o $O/t.json", want)
	}
	files["table_ok.json"] = mutTable(base, func(map[string]any) {})
	merge("table_not_json.json", []byte("version: 1\n"), "JSON")
	merge("table_truncated.json", mutTable(base, func(map[string]any) {})[:200], "JSON")
	merge("table_no_version.json", []byte(`{"model": {}}`), "version")
	merge("table_future_version.json", mutTable(base, func(t map[string]any) { t["version"] = 99 }), "version 99")
	merge("table_negative_scale.json", mutTable(base, func(t map[string]any) {
		tensorEntry(t, "X")["scales"] = []any{-0.5}
	}), "scale")
	merge("table_zero_point_range.json", mutTable(base, func(t map[string]any) {
		tensorEntry(t, "X")["zero_points"] = []any{300}
	}), "zero_point")
	merge("table_unknown_field.json", mutTable(base, func(t map[string]any) { t["tensor"] = []any{} }), "unknown field")
	merge("table_bad_sha.json", mutTable(base, func(t map[string]any) {
		t["model"].(map[string]any)["sha256"] = "xyz"
	}), "sha256")
	merge("table_other_model.json", mutTable(base, func(t map[string]any) {
		t["model"].(map[string]any)["sha256"] = strings.Repeat("ab", 32)
	}), "model")
	merge("table_missing_tensor.json", mutTable(base, func(t map[string]any) {
		t["tensors"] = t["tensors"].([]any)[1:]
	}), "tensor")
	merge("table_bad_dtype.json", mutTable(base, func(t map[string]any) { tensorEntry(t, "X")["dtype"] = "uint3" }), "uint3")
	add("convert_table_negative_scale.json", mutTable(base, func(t map[string]any) { tensorEntry(t, "Y")["scales"] = []any{-1} }),
		"convert $D/base.onnx --table $D/convert_table_negative_scale.json -o $O/q.onnx", "scale")
	addArgs("convert_table_missing", "convert $D/base.onnx --table $D/nope.json -o $O/q.onnx", "nope.json", "no such file")

	// Configs.
	cfg := func(name, yaml, cmd, want string) {
		add(name, []byte(yaml), strings.ReplaceAll(cmd, "CFG", "$D/"+name), want)
	}
	const calibCmd = "calibrate $D/base.onnx --data $D/x12.npy --config CFG -o $O/t.json"
	const convCmd = "convert $D/base.onnx --dynamic --config CFG -o $O/q.onnx"
	cfg("config_yaml_syntax.yaml", "calibration: [unclosed\n", calibCmd, "yaml")
	cfg("config_unknown_key.yaml", "calibration:\n  observr: minmax\n", calibCmd, "observr")
	cfg("config_wrong_type.yaml", "calibration:\n  skip_nonfinite: maybe\n", calibCmd, "skip_nonfinite")
	cfg("config_bad_observer.yaml", "calibration:\n  activation: {observer: kmeans}\n", calibCmd, "kmeans")
	cfg("config_contradiction.yaml", "calibration:\n  tensors: [{name: X, op_type: MatMul, observer: minmax}]\n", calibCmd, "exactly one of")
	cfg("config_minmax_per_channel.yaml", "calibration:\n  activation: {observer: minmax, qscheme: per_channel_affine}\n", calibCmd, "contradicts")
	cfg("config_per_channel_per_tensor.yaml", "calibration:\n  weight: {observer: per_channel_minmax, qscheme: per_tensor_affine}\n", calibCmd, "contradicts")
	cfg("config_histogram_int32.yaml", "calibration:\n  activation: {observer: histogram, dtype: int32}\n", calibCmd, "int32")
	cfg("config_unknown_tensor.yaml", "calibration:\n  tensors: [{name: nosuch, observer: minmax}]\n", calibCmd, "nosuch")
	cfg("config_percentile_range.yaml", "calibration:\n  activation: {observer: percentile, percentile: 150}\n", calibCmd, "150")
	cfg("config_bad_preprocess.yaml", "calibration:\n  preprocess: {range: \"0..7\"}\n", calibCmd, "0..7")
	cfg("config_mean_std_channels.yaml", "calibration:\n  preprocess: {mean: [0.5, 0.5], std: [0.5, 0.5]}\n",
		"calibrate $D/image_model.onnx --data $D/img_ok --config CFG -o $O/t.json", "mean")
	files["img_ok/a.png"] = good
	cfg("config_quant_unknown_key.yaml", "quantization:\n  formatt: qdq\n", convCmd, "formatt")
	cfg("config_quant_bad_format.yaml", "quantization:\n  format: qdqq\n", "convert $D/base.onnx --table $D/table_ok.json --config CFG -o $O/q.onnx", "qdqq")
	cfg("config_quant_wrong_type.yaml", "quantization:\n  weight: {dtype: 8}\n", convCmd, "dtype")
	cfg("config_top_unknown_key.yaml", "thredas: 2\n", calibCmd, "thredas")
	cfg("config_top_wrong_type.yaml", "threads: lots\n", calibCmd, "threads")
	cfg("config_top_wrong_duration.yaml", "min-time: 5\n", "bench $D/base.onnx --runs 1 --config CFG", "min-time")
	cfg("config_run_wrong_type.yaml", "output-dir: [a, b]\n", "run $D/base.onnx --input $D/x12.npy --config CFG", "output-dir")
	addArgs("max_tensor_mb_flag", "run $D/constant_of_shape_bomb.onnx --input $D/x12.npy --output-dir $O --max-tensor-mb 100", "constant_of_shape_bomb.onnx", "100.0 MiB")
	addArgs("bench_wrong_shape", "bench $D/base.onnx --input X=$D/npy_wrong_shape.npy --runs 1", "npy_wrong_shape.npy", "shape")
	addArgs("bench_big_endian", "bench $D/base.onnx --input X=$D/npy_big_endian.npy --runs 1", "npy_big_endian.npy", "big-endian")
	addArgs("bench_unknown_op", "bench $D/unknown_op.onnx --runs 1", "unknown_op.onnx", "Frobnicate")
	addArgs("calib_offset_beyond_data", "calibrate $D/base.onnx --data $D/x12.npy --offset 5 -o $O/t.json", "x12.npy", "offset")
	addArgs("config_missing", "calibrate $D/base.onnx --data $D/x12.npy --config $D/nope.yaml -o $O/t.json", "nope.yaml", "not found")
	addArgs("convert_two_modes", "convert $D/base.onnx --dynamic --fp16 -o $O/q.onnx", "convert", "one of")
	addArgs("fuse_output_is_input", "fuse $D/base.onnx -o $D/base.onnx", "base.onnx", "overwrite")
	addArgs("convert_output_is_input", "convert $D/base.onnx --dynamic -o $D/base.onnx", "base.onnx", "overwrite")
	addArgs("quantize_output_is_input", "quantize $D/base.onnx --data $D/samples.npy -o $D/base.onnx", "base.onnx", "overwrite")
	addArgs("quantize_nan_data", "quantize $D/base.onnx --data $D/calib_nan.npy -o $O/q.onnx", "calib_nan.npy", "NaN")
	addArgs("run_output_dir_is_file", "run $D/base.onnx --input $D/x12.npy --output-dir $D/x12.npy", "x12.npy", "not a directory")

	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	var tsv strings.Builder
	tsv.WriteString("# case\targs ($D cli folder, $M malformed folder, $O output folder)\terror names file\terror must contain (generated by tools/malformed)\n")
	for _, c := range cases {
		fmt.Fprintf(&tsv, "%s\t%s\t%s\t%s\n", c.name, c.args, c.file, c.want)
	}
	return os.WriteFile(filepath.Join(dir, "CLI.tsv"), []byte(tsv.String()), 0o644)
}
