package all

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/runtime/nodetest"
	"github.com/qtool/qtool/internal/tensor"
)

// modelsDir is shared/models next to shared/onnx-node.
func modelsDir(t *testing.T) string {
	root := nodetest.SharedDir()
	if root == "" {
		t.Skip("shared/ not found above the working directory")
	}
	d := filepath.Join(filepath.Dir(root), "models")
	if _, err := os.Stat(d); err != nil {
		t.Skip(err)
	}
	return d
}

// maxRelErr is max|got-want| / max|want|: how far an output is from the
// reference, relative to the output's scale.
func maxRelErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	return d / m
}

func session(t *testing.T, path string, threads int) *runtime.Session {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(m.Graph, runtime.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run1(t *testing.T, s *runtime.Session, x *tensor.Tensor) *tensor.Tensor {
	t.Helper()
	out, err := s.Run(map[string]*tensor.Tensor{s.InputNames()[0]: x})
	if err != nil {
		t.Fatal(err)
	}
	return out[s.OutputNames()[0]]
}

// TestTorchvisionModels runs ResNet-18 and MobileNetV2 through the Session
// against PyTorch 1.13's outputs, at batch 1 (1 and 2 threads, which must
// agree bit for bit) and batch 2 (each sample as at batch 1).
func TestTorchvisionModels(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models")
	}
	dir := filepath.Join(modelsDir(t), "torchvision-random")
	x, err := npy.ReadFile(filepath.Join(dir, "input_1x3x224x224.npy"))
	if err != nil {
		t.Skip(err)
	}
	for _, c := range []struct{ model, want string }{
		{"resnet18_fp32_opset13.onnx", "resnet18_fp32_output.npy"},
		{"mobilenet_v2_fp32_bnrecal_opset13.onnx", "mobilenet_v2_fp32_bnrecal_output.npy"},
	} {
		t.Run(c.model, func(t *testing.T) {
			want, err := npy.ReadFile(filepath.Join(dir, c.want))
			if err != nil {
				t.Fatal(err)
			}
			s1 := session(t, filepath.Join(dir, c.model), 1)
			got := run1(t, s1, x)
			if e := maxRelErr(got.F32(), want.F32()); e > 1e-4 {
				t.Errorf("batch 1: max error %.3g relative to PyTorch, want <= 1e-4", e)
			} else {
				t.Logf("batch 1: max error %.3g relative to PyTorch", e)
			}
			s2 := session(t, filepath.Join(dir, c.model), 2)
			got2 := run1(t, s2, x)
			for i, v := range got.F32() {
				if math.Float32bits(v) != math.Float32bits(got2.F32()[i]) {
					t.Fatalf("2 threads differ from 1 at %d: %v vs %v", i, got2.F32()[i], v)
				}
			}
			xx := tensor.FromFloat32([]int{2, 3, 224, 224}, append(append([]float32{}, x.F32()...), x.F32()...))
			gotB := run1(t, s2, xx)
			n := want.Len()
			if gotB.Len() != 2*n {
				t.Fatalf("batch 2: output %v", gotB.Shape)
			}
			for b := 0; b < 2; b++ {
				if e := maxRelErr(gotB.F32()[b*n:(b+1)*n], want.F32()); e > 1e-4 {
					t.Errorf("batch 2 sample %d: max error %.3g", b, e)
				}
			}
			if p := s2.PeakBytes(); p > 0 {
				t.Logf("peak live activations at batch 2: %.1f MiB", float64(p)/(1<<20))
			}
		})
	}
}

// TestMNISTOpset1 runs the opset-1 CNTK MNIST model (legacy broadcast,
// normalised by the loader) against the outputs shipped with it.
func TestMNISTOpset1(t *testing.T) {
	dir := filepath.Join(modelsDir(t), "mnist-onnxzoo-cntk-2018")
	s := session(t, filepath.Join(dir, "model.onnx"), 2)
	for i := 0; i < 3; i++ {
		a, err := npy.ReadNPZFile(filepath.Join(dir, fmt.Sprintf("test_data_%d.npz", i)))
		if err != nil {
			t.Fatal(err)
		}
		x, want := a.Arrays["inputs"], a.Arrays["outputs"]
		if x == nil || want == nil {
			t.Fatalf("test_data_%d.npz: arrays %v", i, a.Names)
		}
		// The npz holds [1,28,28]; the model takes [1,1,28,28].
		x = tensor.FromFloat32([]int{1, 1, 28, 28}, x.F32())
		got := run1(t, s, x)
		if e := maxRelErr(got.F32(), want.F32()); e > 1e-5 {
			t.Errorf("test_data_%d: max error %.3g relative", i, e)
		}
	}
}

// readWAV16 reads a 16-bit PCM mono WAV file as samples / 32768.
func readWAV16(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s: not a WAV file", path)
	}
	le16 := func(p []byte) int { return int(p[0]) | int(p[1])<<8 }
	le32 := func(p []byte) int { return le16(p) | le16(p[2:])<<16 }
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), le32(b[off+4:])
		body := b[off+8 : min(len(b), off+8+size)]
		switch id {
		case "fmt ":
			if len(body) < 16 || le16(body) != 1 || le16(body[2:]) != 1 || le16(body[14:]) != 16 {
				return nil, fmt.Errorf("%s: want 16-bit PCM mono", path)
			}
		case "data":
			x := make([]float32, len(body)/2)
			for i := range x {
				x[i] = float32(int16(le16(body[2*i:]))) / 32768
			}
			return x, nil
		}
		off += 8 + size + size%2
	}
	return nil, fmt.Errorf("%s: no data chunk", path)
}

// TestSileroVAD streams test.wav through the voice-activity detector as
// shared/models/README.md describes (512-sample chunks with 64 samples of
// left context, LSTM state carried from zeros) and checks the figures
// measured there with ONNX Runtime. It exercises repeated Runs of one
// Session, LSTM, and for the opset-15 export a dozen If nodes whose
// branches read outer values.
func TestSileroVAD(t *testing.T) {
	if testing.Short() {
		t.Skip("1875 runs")
	}
	dir := modelsDir(t)
	wav, err := readWAV16(filepath.Join(filepath.Dir(dir), "data", "silero-vad", "test.wav"))
	if err != nil {
		t.Skip(err)
	}
	for _, name := range []string{"silero_vad_openvino_16k.onnx", "silero_vad_16k_op15.onnx"} {
		t.Run(name, func(t *testing.T) {
			s := session(t, filepath.Join(dir, "silero-vad", name), 1)
			state := tensor.FromFloat32([]int{2, 1, 128}, make([]float32, 256))
			ctxBuf := make([]float32, 64)
			var probs []float64
			for off := 0; off+512 <= len(wav); off += 512 {
				x := append(append([]float32{}, ctxBuf...), wav[off:off+512]...)
				in := map[string]*tensor.Tensor{"input": tensor.FromFloat32([]int{1, 576}, x), "state": state}
				if len(s.InputNames()) == 3 {
					in["sr"] = tensor.FromInt64([]int{}, []int64{16000})
				}
				out, err := s.Run(in)
				if err != nil {
					t.Fatalf("chunk %d: %v", len(probs), err)
				}
				probs = append(probs, float64(out["output"].F32()[0]))
				state = out["stateN"]
				copy(ctxBuf, x[512:])
			}
			var sum float64
			above := 0
			for _, p := range probs {
				sum += p
				if p > 0.5 {
					above++
				}
			}
			mean, frac := sum/float64(len(probs)), float64(above)/float64(len(probs))
			t.Logf("%d chunks, mean %.4f, %.1f%% above 0.5, first %.3f", len(probs), mean, 100*frac, probs[:4])
			if len(probs) != 1875 || math.Abs(mean-0.778) > 0.0005 || math.Abs(frac-0.774) > 0.0005 {
				t.Errorf("%d chunks, mean %.4f, %.2f%% above 0.5; README: 1875, 0.778, 77.4%%", len(probs), mean, 100*frac)
			}
			for i, w := range []float64{0.208, 0.818, 0.891, 0.996} {
				if math.Abs(probs[i]-w) > 0.0005 {
					t.Errorf("chunk %d: %.4f, README %.3f", i, probs[i], w)
				}
			}
		})
	}
}
