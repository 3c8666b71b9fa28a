// Command benchpeers times ResNet-18 and MobileNetV2 in qtool, ONNX Runtime
// (npm onnxruntime-node) and, where installed, PyTorch, and prints one
// table of medians and ratios. It is what `make bench-float` (float only,
// qtool vs ONNX Runtime) and `make bench-peers` (float and int8, all
// peers) run.
//
// The machine is shared and noisy, so the peers take turns inference by
// inference (A, B, C, C, B, A, A, B, C, ...): qtool runs in this process
// (internal/runtime, as `qtool bench` does), ONNX Runtime and PyTorch in
// server processes (ort_server.js, torch_bench.py) that time each
// inference themselves and answer over a pipe, so the pipe is not timed.
// A slow spell of the machine then hits every peer alike. Each peer's
// figure is the median of its samples; ratios are of those medians.
//
// int8 models are what `qtool quantize` writes for each float model, in
// both of its formats (QDQ, and QOperator: QLinearConv and friends),
// calibrated on the input tensor stored next to it (one sample: enough to
// time, not to judge accuracy), cached under --work. ONNX Runtime runs the
// same files; PyTorch runs its own int8 model on both rows.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qtool/qtool/internal/bench"
	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	_ "github.com/qtool/qtool/internal/runtime/ops/all"
	"github.com/qtool/qtool/internal/runtime/qdq"
	"github.com/qtool/qtool/internal/tensor"
)

type variant struct {
	name, kind string // "resnet18", "float"|"int8 qdq"|"int8 qop"
	path       string // ONNX file
}

type peer interface {
	Name() string
	// Load prepares v (session, packed weights, inputs).
	Load(v variant) error
	// Run makes n inferences of v and returns their latencies in ms.
	Run(v variant, n int) ([]float64, error)
}

func main() {
	var (
		qtoolBin    = flag.String("qtool", "bin/qtool", "qtool binary (for quantize)")
		nodeBin     = flag.String("node", "node", "Node.js binary")
		python      = flag.String("python", "/usr/bin/python3", "Python with torch and torchvision for the PyTorch peer")
		torchScript = flag.String("torch-script", "tools/benchpeers/torch_bench.py", "the PyTorch peer's script")
		ortScript   = flag.String("ort-script", "tools/benchpeers/ort_server.js", "the ONNX Runtime peer's script")
		modelsDir   = flag.String("models", "", "folder with resnet18_fp32_opset13.onnx and mobilenet_v2_fp32_bnrecal_opset13.onnx (default: find shared/models/torchvision-random above the working directory)")
		work        = flag.String("work", "bin/bench-models", "folder for the int8 models qtool quantize writes")
		int8        = flag.Bool("int8", false, "also time int8 models")
		torch       = flag.Bool("torch", false, "also time PyTorch when it is installed")
		goal        = flag.Float64("goal", 0, "say whether float qtool/ORT is at most this ratio (0: don't)")
		runs        = flag.Int("runs", 41, "timed inferences per peer and model, interleaved")
		warmup      = flag.Int("warmup", 5, "untimed inferences per peer and model first")
		threads     = flag.Int("threads", 1, "threads for every peer")
		verbose     = flag.Bool("v", false, "print every sample on stderr")
	)
	flag.Parse()
	if *runs < 1 || *warmup < 0 || *threads < 1 {
		fail("benchpeers: --runs and --threads must be at least 1, --warmup at least 0")
	}
	dir := *modelsDir
	if dir == "" {
		var err error
		if dir, err = findUp(filepath.Join("shared", "models", "torchvision-random")); err != nil {
			fail("benchpeers: %v (give --models)", err)
		}
	}
	var notes []string
	var variants []variant
	for _, m := range []struct{ name, file string }{
		{"resnet18", "resnet18_fp32_opset13.onnx"},
		{"mobilenet_v2", "mobilenet_v2_fp32_bnrecal_opset13.onnx"},
	} {
		p := filepath.Join(dir, m.file)
		if _, err := os.Stat(p); err != nil {
			fail("benchpeers: %v", err)
		}
		variants = append(variants, variant{m.name, "float", p})
		if *int8 {
			for _, f := range []struct{ kind, format string }{{"int8 qdq", "qdq"}, {"int8 qop", "qoperator"}} {
				q, err := quantized(*qtoolBin, p, filepath.Join(dir, "input_1x3x224x224.npy"), f.format,
					filepath.Join(*work, m.name+".int8."+f.format+".onnx"))
				if err != nil {
					notes = append(notes, fmt.Sprintf("%s %s skipped: qtool quantize failed: %v", m.name, f.kind, err))
					continue
				}
				variants = append(variants, variant{m.name, f.kind, q})
			}
		}
	}

	peers := []peer{&qtoolPeer{threads: *threads, sess: map[string]*qsess{}}}
	op, err := startServer("ORT", *nodeBin, *ortScript, fmt.Sprint(*threads))
	if err != nil {
		fail("benchpeers: ONNX Runtime: %v (run make peers)", err)
	}
	defer op.Close()
	op.request = func(v variant, op string, n int) map[string]any {
		return map[string]any{"op": op, "model": v.path, "n": n}
	}
	peers = append(peers, op)
	var tp *server
	if *torch {
		if err := exec.Command(*python, "-c", "import torch, torchvision").Run(); err != nil {
			notes = append(notes, fmt.Sprintf("PyTorch skipped: %s cannot import torch and torchvision", *python))
		} else if tp, err = startServer("PyTorch", *python, *torchScript, fmt.Sprint(*threads), dir); err != nil {
			notes = append(notes, "PyTorch skipped: "+err.Error())
		} else {
			defer tp.Close()
			tp.request = func(v variant, op string, n int) map[string]any {
				kind := v.kind
				if strings.HasPrefix(kind, "int8") {
					kind = "int8"
				}
				return map[string]any{"op": op, "model": v.name, "variant": kind, "n": n}
			}
			peers = append(peers, tp)
			if *int8 {
				notes = append(notes, "PyTorch int8 (both int8 rows) is its own eager-mode onednn quantization of the same architecture, not qtool's int8 file")
			}
		}
	}

	var logw io.Writer
	if *verbose {
		logw = os.Stderr
	}
	res := make([][][]float64, len(variants))
	errs := make([][]error, len(variants))
	for i, v := range variants {
		res[i], errs[i] = interleave(v, peers, *warmup, *runs, logw)
	}

	fmt.Printf("batch 1, %d thread(s); per peer and model %d warm-up and %d timed inferences, the peers taking turns; median ms\n",
		*threads, *warmup, *runs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "model\tvariant\t"
	for _, p := range peers {
		head += p.Name() + "\t"
	}
	for _, p := range peers[1:] {
		head += "qtool/" + p.Name() + "\t"
	}
	fmt.Fprintln(tw, head)
	med := func(i, j int) float64 {
		if errs[i][j] != nil || len(res[i][j]) == 0 {
			return 0
		}
		return bench.Median(res[i][j])
	}
	var goalLines []string
	for i, v := range variants {
		line := v.name + "\t" + v.kind + "\t"
		for j := range peers {
			if m := med(i, j); m > 0 {
				line += fmt.Sprintf("%.2f\t", m)
			} else {
				line += "-\t"
			}
		}
		q := med(i, 0)
		for j := 1; j < len(peers); j++ {
			m := med(i, j)
			if m <= 0 || q <= 0 {
				line += "-\t"
				continue
			}
			line += fmt.Sprintf("%.2fx\t", q/m)
			if *goal > 0 && j == 1 && v.kind == "float" {
				verdict := "meets"
				if q/m > *goal {
					verdict = "MISSES"
				}
				goalLines = append(goalLines, fmt.Sprintf("%s float: qtool/ORT %.2fx %s the %.2fx goal (median of the paired per-turn ratios %.2fx)",
					v.name, q/m, verdict, *goal, bench.Median(pairedRatios(res[i][0], res[i][j]))))
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for i, v := range variants {
		for j, p := range peers {
			if errs[i][j] != nil {
				notes = append(notes, fmt.Sprintf("%s %s on %s failed: %v", v.name, v.kind, p.Name(), errs[i][j]))
			}
		}
	}
	if tp != nil {
		for _, name := range sortedKeys(tp.diffs) {
			notes = append(notes, fmt.Sprintf("PyTorch's %s float output vs the exported ONNX model's reference output: max abs diff %.2g (same weights)", name, tp.diffs[name]))
		}
	}
	if *torch && *int8 && tp == nil {
		notes = append(notes, "no PyTorch column: see above")
	}
	for _, l := range goalLines {
		fmt.Println(l)
	}
	for _, n := range notes {
		fmt.Println("note:", n)
	}
}

// interleave loads v on every peer, warms each up, then takes runs turns:
// every peer makes one inference per turn, the order reversed every other
// turn so that none always runs right after another. res[peer] holds the
// samples; a peer that fails is dropped for this variant (errs[peer]).
func interleave(v variant, peers []peer, warmup, runs int, log io.Writer) ([][]float64, []error) {
	res := make([][]float64, len(peers))
	errs := make([]error, len(peers))
	for j, p := range peers {
		if err := p.Load(v); err != nil {
			errs[j] = err
			continue
		}
		if warmup > 0 {
			if _, err := p.Run(v, warmup); err != nil {
				errs[j] = err
			}
		}
	}
	for r := 0; r < runs; r++ {
		for k := range peers {
			j := k
			if r%2 == 1 {
				j = len(peers) - 1 - k
			}
			if errs[j] != nil {
				continue
			}
			ms, err := peers[j].Run(v, 1)
			if err == nil && len(ms) != 1 {
				err = fmt.Errorf("%d samples for 1 run", len(ms))
			}
			if err != nil {
				errs[j] = err
				continue
			}
			res[j] = append(res[j], ms[0])
			if log != nil {
				fmt.Fprintf(log, "%s %s turn %d %s: %.3f ms\n", v.name, v.kind, r+1, peers[j].Name(), ms[0])
			}
		}
	}
	return res, errs
}

// pairedRatios are a/b turn by turn: both ran within milliseconds of each
// other, under the same load.
func pairedRatios(a, b []float64) []float64 {
	var out []float64
	for r := 0; r < len(a) && r < len(b); r++ {
		if b[r] > 0 {
			out = append(out, a[r]/b[r])
		}
	}
	return out
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(2)
}

func sortedKeys(m map[string]float64) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(d, rel)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no %s above the working directory", rel)
		}
		d = up
	}
}

// quantized returns out, written by `qtool quantize` unless it is newer
// than both the float model and the qtool binary (a rebuilt quantizer
// may write a different model).
func quantized(qtool, model, data, format, out string) (string, error) {
	if st, err := os.Stat(out); err == nil {
		fresh := true
		for _, dep := range []string{model, qtool} {
			if ds, err := os.Stat(dep); err != nil || ds.ModTime().After(st.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			return out, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command(qtool, "quantize", model, "--data", data, "--format", format, "-o", out, "--quiet")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, lastLine(string(b)))
	}
	return out, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// qtoolPeer runs models in this process with the runtime and the inputs
// `qtool bench` uses.
type qtoolPeer struct {
	threads int
	sess    map[string]*qsess
}

type qsess struct {
	s     *runtime.Session
	feeds map[string]*tensor.Tensor
}

func (p *qtoolPeer) Name() string { return "qtool" }

func (p *qtoolPeer) Load(v variant) error {
	if p.sess[v.path] != nil {
		return nil
	}
	m, err := model.Load(v.path)
	if err != nil {
		return err
	}
	feeds, err := bench.Inputs(m.Graph, nil, bench.Synth{Batch: 1})
	if err != nil {
		return err
	}
	if _, err := qdq.Rewrite(m.Graph); err != nil {
		return err
	}
	s, err := runtime.NewSession(m.Graph, runtime.Options{Threads: p.threads})
	if err != nil {
		return err
	}
	p.sess[v.path] = &qsess{s, feeds}
	return nil
}

func (p *qtoolPeer) Run(v variant, n int) ([]float64, error) {
	q := p.sess[v.path]
	if q == nil {
		return nil, errors.New("not loaded")
	}
	out := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := q.s.Run(q.feeds); err != nil {
			return nil, err
		}
		out = append(out, float64(time.Since(t0))/float64(time.Millisecond))
	}
	return out, nil
}

// server is a peer in another process speaking the line protocol of
// ort_server.js and torch_bench.py.
type server struct {
	name    string
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	request func(v variant, op string, n int) map[string]any
	diffs   map[string]float64
}

func startServer(name, bin, script string, args ...string) (*server, error) {
	if _, err := os.Stat(script); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{script}, args...)...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &server{name: name, cmd: cmd, in: in, out: bufio.NewReader(out), diffs: map[string]float64{}}, nil
}

func (s *server) Name() string { return s.name }

type reply struct {
	OK    bool      `json:"ok"`
	MS    []float64 `json:"ms"`
	Diff  *float64  `json:"max_abs_diff"`
	Error string    `json:"error"`
}

func (s *server) call(req map[string]any) (*reply, error) {
	b, _ := json.Marshal(req)
	if _, err := s.in.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%s peer: %v", s.name, err)
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%s peer exited: %v", s.name, err)
	}
	var r reply
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return nil, fmt.Errorf("%s peer: %q", s.name, strings.TrimSpace(line))
	}
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	return &r, nil
}

func (s *server) Load(v variant) error {
	r, err := s.call(s.request(v, "load", 0))
	if err != nil {
		return err
	}
	if r.Diff != nil {
		s.diffs[v.name] = *r.Diff
	}
	return nil
}

func (s *server) Run(v variant, n int) ([]float64, error) {
	r, err := s.call(s.request(v, "run", n))
	if err != nil {
		return nil, err
	}
	return r.MS, nil
}

func (s *server) Close() {
	s.in.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
	}
}
