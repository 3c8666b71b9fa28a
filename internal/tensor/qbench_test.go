package tensor

import (
	"math/rand"
	"testing"
)

const benchN = 1 << 20

func benchInput() *Tensor {
	r := rand.New(rand.NewSource(1))
	x := make([]float32, benchN)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
	}
	return FromFloat32([]int{64, 128, 128}, x)
}

// b.SetBytes counts the float32 side (4 bytes per element), so MB/s is
// float input (quantize) or float output (dequantize) per second.
func benchQuantize(b *testing.B, dt DType, rule RoundingRule, perChannel bool, axis int) {
	x := benchInput()
	c := x.Shape[axis]
	scales := make([]float32, c)
	zps := make([]int32, c)
	for i := range scales {
		scales[i] = 0.02 + float32(i)*1e-4
		zps[i] = int32(i % 7)
	}
	out := MustNew(dt, x.Shape)
	b.SetBytes(4 * benchN)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if perChannel {
			quantizeChannels(out.Data, x.F32(), x.Shape, axis, scales, zps, dt, rule)
		} else {
			quantizeRun(dt, out.Data, 0, x.F32(), scales[0], zps[0], rule)
		}
	}
}

func BenchmarkQuantizePerTensorU8Torch(b *testing.B)  { benchQuantize(b, Uint8, RuleTorch, false, 0) }
func BenchmarkQuantizePerTensorI8Torch(b *testing.B)  { benchQuantize(b, Int8, RuleTorch, false, 0) }
func BenchmarkQuantizePerTensorU8ONNX(b *testing.B)   { benchQuantize(b, Uint8, RuleONNX, false, 0) }
func BenchmarkQuantizePerChannelAxis0I8(b *testing.B) { benchQuantize(b, Int8, RuleTorch, true, 0) }
func BenchmarkQuantizePerChannelAxisLastI8(b *testing.B) {
	benchQuantize(b, Int8, RuleTorch, true, 2)
}

func benchDequantize(b *testing.B, dt DType, perChannel bool, axis int) {
	x := benchInput()
	c := x.Shape[axis]
	scales := make([]float32, c)
	zps := make([]int32, c)
	for i := range scales {
		scales[i] = 0.02 + float32(i)*1e-4
		zps[i] = int32(i % 7)
	}
	var q *QTensor
	if perChannel {
		q, _ = QuantizePerChannel(x, scales, zps, axis, dt, RuleTorch)
	} else {
		q, _ = QuantizePerTensor(x, scales[0], zps[0], dt, RuleTorch)
	}
	out := make([]float32, benchN)
	b.SetBytes(4 * benchN)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.DequantizeInto(out)
	}
}

func BenchmarkDequantizePerTensorU8(b *testing.B)          { benchDequantize(b, Uint8, false, 0) }
func BenchmarkDequantizePerTensorI8(b *testing.B)          { benchDequantize(b, Int8, false, 0) }
func BenchmarkDequantizePerChannelAxis0I8(b *testing.B)    { benchDequantize(b, Int8, true, 0) }
func BenchmarkDequantizePerChannelAxisLastU8(b *testing.B) { benchDequantize(b, Uint8, true, 2) }
