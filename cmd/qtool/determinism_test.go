package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/tensor"
)

// Determinism (issue 10): the same command twice, and at --threads 1 against
// --threads 2, writes the same bytes. A difference in the last bit of one
// value fails these tests: float reductions split by thread count, map
// iteration order in a writer, or a timestamp in a file all show up here.

// writeNPY writes a fixed pseudo-random float32 tensor (an LCG, so the
// bytes are the same on every machine).
func writeNPY(t *testing.T, path string, shape ...int) {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	s := uint32(12345)
	for i := range v {
		s = s*1664525 + 1013904223
		v[i] = float32(s>>8)/float32(1<<24)*2 - 1
	}
	var buf bytes.Buffer
	if err := npy.Write(&buf, tensor.FromFloat32(shape, v)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if code, _, stderr := runCLI(t, append(args, "--quiet")...); code != 0 {
		t.Fatalf("qtool %v: exit %d: %s", args, code, stderr)
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameFiles runs the command once per thread count in the list (a count
// may repeat: the same command twice), each writing to its own output, and
// requires byte-identical outputs. out(i) names the i-th run's output file.
func sameFiles(t *testing.T, what string, threads []int, args func(out string) []string, file func(out string) string) []byte {
	t.Helper()
	var first []byte
	for i, th := range threads {
		out := filepath.Join(t.TempDir(), "out"+strconv.Itoa(i))
		mustRun(t, append(args(out), "--threads", strconv.Itoa(th))...)
		b := readAll(t, file(out))
		if i == 0 {
			first = b
			continue
		}
		if !bytes.Equal(b, first) {
			t.Errorf("%s: run %d (--threads %d) differs from run 0 (--threads %d): %d vs %d bytes, first difference at byte %d",
				what, i, th, threads[0], len(b), len(first), firstDiff(b, first))
		}
	}
	return first
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

func TestDeterministicRunMNIST(t *testing.T) {
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	in := filepath.Join(exampleDigits, "digit0_label7.npy")
	sameFiles(t, "run mnist", []int{1, 2, 1, 2},
		func(out string) []string { return []string{"run", m, "--input", in, "--output-dir", out} },
		func(out string) string { return filepath.Join(out, "Plus214_Output_0.npy") })
}

func TestDeterministicRunSqueezeNet(t *testing.T) {
	m := filepath.Join("..", "..", "..", "shared", "models", "squeezenet-cifar10", "squeezenet_cifar10.onnx")
	if _, err := os.Stat(m); err != nil {
		t.Skipf("no shared models: %v", err)
	}
	in := filepath.Join(t.TempDir(), "x.npy")
	writeNPY(t, in, 2, 32, 32, 3)
	b := sameFiles(t, "run squeezenet", []int{1, 2, 2},
		func(out string) []string { return []string{"run", m, "--input", in, "--output-dir", out} },
		func(out string) string { return filepath.Join(out, "loss.npy") })
	// Identical NaNs would also compare equal: the output must be real.
	y, err := npy.Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range y.F32() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("squeezenet output %v", y.F32())
		}
	}
}

// mnistSamples is a folder of the example digits plus pseudo-random
// samples, enough for several batches and for the histogram observer to
// re-bin.
func mnistSamples(t *testing.T) string {
	dir := t.TempDir()
	writeNPY(t, filepath.Join(dir, "random.npy"), 12, 1, 28, 28)
	all := filepath.Join(dir, "all.npy")
	// One .npy of 16 samples: the 4 digits and the 12 random ones.
	var v []float32
	for _, f := range []string{"digit0_label7.npy", "digit1_label2.npy", "digit2_label1.npy", "digit3_label0.npy"} {
		x, err := npy.ReadFile(filepath.Join(exampleDigits, f))
		if err != nil {
			t.Fatal(err)
		}
		v = append(v, x.F32()...)
	}
	r, err := npy.ReadFile(filepath.Join(dir, "random.npy"))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range r.F32() {
		v = append(v, x*255)
	}
	var buf bytes.Buffer
	if err := npy.Write(&buf, tensor.FromFloat32([]int{16, 1, 28, 28}, v)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(all, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return all
}

func TestDeterministicCalibrate(t *testing.T) {
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	data := mnistSamples(t)
	for _, obs := range []string{"histogram", "minmax", "entropy"} {
		sameFiles(t, "calibrate --observer "+obs, []int{1, 1, 2},
			func(out string) []string {
				return []string{"calibrate", m, "--data", data, "--observer", obs, "--batch", "4", "-o", out + ".json"}
			},
			func(out string) string { return out + ".json" })
	}
}

func TestDeterministicFuse(t *testing.T) {
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	sameFiles(t, "fuse", []int{1, 2},
		func(out string) []string { return []string{"fuse", m, "-o", out + ".onnx"} },
		func(out string) string { return out + ".onnx" })
}

// convert and quantize, and the quantized model run at both thread counts.
func TestDeterministicConvertQuantize(t *testing.T) {
	m := filepath.Join(exampleMNIST, "mnist-8.onnx")
	data := mnistSamples(t)
	table := filepath.Join(t.TempDir(), "t.json")
	mustRun(t, "calibrate", m, "--data", data, "-o", table)
	for _, mode := range [][]string{{"--table", table}, {"--table", table, "--format", "qoperator"}, {"--dynamic"}, {"--fp16"}} {
		sameFiles(t, "convert "+mode[0], []int{1, 2},
			func(out string) []string { return append([]string{"convert", m, "-o", out + ".onnx"}, mode...) },
			func(out string) string { return out + ".onnx" })
	}
	q := filepath.Join(t.TempDir(), "q.onnx")
	sameFiles(t, "quantize", []int{1, 2, 2},
		func(out string) []string { return []string{"quantize", m, "--data", data, "-o", out + ".onnx"} },
		func(out string) string { return out + ".onnx" })
	mustRun(t, "quantize", m, "--data", data, "-o", q)
	in := filepath.Join(exampleDigits, "digit1_label2.npy")
	sameFiles(t, "run int8", []int{1, 2},
		func(out string) []string { return []string{"run", q, "--input", in, "--output-dir", out} },
		func(out string) string { return filepath.Join(out, "Plus214_Output_0.npy") })
}
