package modeltest

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool/qtool/internal/model"
	"github.com/qtool/qtool/internal/runtime"
	"github.com/qtool/qtool/internal/tensor"
)

// readWAV16 reads a 16-bit PCM mono WAV file as samples in [-1, 1).
func readWAV16(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%s: not a RIFF/WAVE file", path)
	}
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8:]
		if size > len(body) {
			return nil, fmt.Errorf("%s: chunk %q truncated", path, id)
		}
		switch id {
		case "fmt ":
			if size < 16 || binary.LittleEndian.Uint16(body) != 1 || binary.LittleEndian.Uint16(body[2:]) != 1 || binary.LittleEndian.Uint16(body[14:]) != 16 {
				return nil, fmt.Errorf("%s: want 16-bit PCM mono", path)
			}
		case "data":
			out := make([]float32, size/2)
			for i := range out {
				out[i] = float32(int16(binary.LittleEndian.Uint16(body[2*i:]))) / 32768
			}
			return out, nil
		}
		off += 8 + size + size%2
	}
	return nil, fmt.Errorf("%s: no data chunk", path)
}

// TestSileroVAD runs the Silero VAD (Pad reflect, Conv1d, LSTM) over the
// shared 60 s speech file the way its reference was measured (512-sample
// chunks with 64 samples of left context, state carried from zeros) and
// compares with the figures in ../shared/models/README.md (ONNX Runtime's).
func TestSileroVAD(t *testing.T) {
	s := sharedDir()
	if s == "" {
		t.Skip("../shared not found")
	}
	md, err := model.Load(filepath.Join(s, "models", "silero-vad", "silero_vad_openvino_16k.onnx"))
	if err != nil {
		t.Skip(err)
	}
	wav, err := readWAV16(filepath.Join(s, "data", "silero-vad", "test.wav"))
	if err != nil {
		t.Skip(err)
	}
	sess, err := runtime.NewSession(md.Graph, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	const chunk, ctxLen = 512, 64
	state := tensor.MustNew(tensor.Float32, []int{2, 1, 128})
	var probs []float64
	for start := 0; start+chunk <= len(wav); start += chunk {
		in := make([]float32, ctxLen+chunk)
		if start >= ctxLen {
			copy(in, wav[start-ctxLen:start+chunk])
		} else {
			copy(in[ctxLen:], wav[start:start+chunk])
		}
		out, err := sess.Run(map[string]*tensor.Tensor{
			"input": tensor.FromFloat32([]int{1, ctxLen + chunk}, in),
			"state": state,
		})
		if err != nil {
			t.Fatalf("chunk %d: %v", len(probs), err)
		}
		probs = append(probs, float64(out["output"].F32()[0]))
		state = out["stateN"]
	}
	mean, above := 0.0, 0
	for _, p := range probs {
		mean += p
		if p > 0.5 {
			above++
		}
	}
	mean /= float64(len(probs))
	frac := float64(above) / float64(len(probs))
	t.Logf("%d chunks, mean %.4f, above 0.5 %.2f%%, first %.3f %.3f %.3f %.3f", len(probs), mean, 100*frac, probs[0], probs[1], probs[2], probs[3])
	if len(probs) != 1875 {
		t.Errorf("%d chunks, want 1875", len(probs))
	}
	if math.Abs(mean-0.778) > 0.0005 || math.Abs(frac-0.774) > 0.0005 {
		t.Errorf("mean %.4f (want 0.778), above 0.5 %.4f (want 0.774)", mean, frac)
	}
	for i, w := range []float64{0.208, 0.818, 0.891, 0.996} {
		if math.Abs(probs[i]-w) > 0.0005 {
			t.Errorf("chunk %d: %.4f, want %.3f", i, probs[i], w)
		}
	}
}
