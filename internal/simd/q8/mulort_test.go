package q8

import (
	"math"
	"math/rand"
	"testing"

	"github.com/qtool/qtool/internal/simd/cpu"
)

// mulORTCases are ONNX Runtime's QLinearMul outputs over every code pair
// (SHA-256 of the bytes; layouts as addGrids): testdata/gen_mul_ort.py.
// The first nine are random scales on which some other float32 order
// misses ONNX Runtime, the last four saturating ratios (1000, 1e5, 2e5 and
// infinite).
var mulORTCases = []ortCase{
	{0x3c122975, 0x3c4e6b9c, 0x3cc575bc, 0, 0, 0, false, "e76bd09fb211ecf97ae7f47456c82dbe1b3238ce8fb1b3b526b054f7f6a0f1fb", "e76bd09fb211ecf97ae7f47456c82dbe1b3238ce8fb1b3b526b054f7f6a0f1fb", "e76bd09fb211ecf97ae7f47456c82dbe1b3238ce8fb1b3b526b054f7f6a0f1fb"},
	{0x3d3673cd, 0x3b78cd27, 0x3d0680af, 128, 128, 128, false, "d45c05d7bd28b01452a74deb8411a388200ba48d3b0efd03a4ccdb3c663cba74", "d45c05d7bd28b01452a74deb8411a388200ba48d3b0efd03a4ccdb3c663cba74", "d45c05d7bd28b01452a74deb8411a388200ba48d3b0efd03a4ccdb3c663cba74"},
	{0x3bbfd1be, 0x3d88d7cb, 0x3da1e287, 255, 0, 255, false, "7e564c6ce10bee8cde1081cc1e6cdeb87ea651d8a8e848353d507f0ca2460aec", "bd932ba77ddb803066ba8638e1dacb7f57c6ecc83cbc57d8430439350afef9ea", "7e564c6ce10bee8cde1081cc1e6cdeb87ea651d8a8e848353d507f0ca2460aec"},
	{0x3da8910c, 0x3e221064, 0x40091efe, 119, 252, 194, false, "33267cf3b67ec635f3e01435f78b852d2a2acb748aeeec83fe332eed1090c948", "7821402e89b98a5eb349daad17bd1894ea0ad53b0b82e7684c32ae9f205deaf1", "33267cf3b67ec635f3e01435f78b852d2a2acb748aeeec83fe332eed1090c948"},
	{0x3ccb3875, 0x3daca0d4, 0x3e100bf4, 0, 0, 0, true, "08cc1950d3aa72345ed2f4a5ff36278581d69fc8403a6b456593f6bd53770071", "08cc1950d3aa72345ed2f4a5ff36278581d69fc8403a6b456593f6bd53770071", "08cc1950d3aa72345ed2f4a5ff36278581d69fc8403a6b456593f6bd53770071"},
	{0x3d7aa76b, 0x3c92c4eb, 0x3e2dafe9, -128, 127, 127, true, "34926b0e80fb86e2a6372e5482b21e96d12fdaabe95d3d95b1690400ce8a4c93", "8db7146fe65b7266ad9c7a0221db53baa0930a9f3ed447c9819bc9291b8f4d85", "34926b0e80fb86e2a6372e5482b21e96d12fdaabe95d3d95b1690400ce8a4c93"},
	{0x3c620c5e, 0x3b7b250c, 0x3bbf136c, -61, 64, 119, true, "4ddf103413da50c3dab6a371b54bb8ad49e48bd5f1a8a4e5ba01f62f961d32ca", "78839d3312087048b97b3d46c3082ea17390312b1c25699bc683a26cd6d2f22e", "4ddf103413da50c3dab6a371b54bb8ad49e48bd5f1a8a4e5ba01f62f961d32ca"},
	{0x3c65f933, 0x3d33b94d, 0x3de4c3e8, -108, 6, 37, true, "fca45ae6494828c411c2505d2c5a08f10809fa5a5c7eaa94a0b4d73aaf6236d1", "cb92734e9ff21ff27365d643aa3c8a6338877ff1a7c7479e6c1fd68272ee8bd3", "fca45ae6494828c411c2505d2c5a08f10809fa5a5c7eaa94a0b4d73aaf6236d1"},
	{0x3d1cf2cd, 0x3d98fc54, 0x3ecb909d, 139, 197, 95, false, "7ba273efef4278c32f0b4bf737c9df2efc5a50fb53a13ac73368d3d2a574951b", "195b082ba9c2cc564e608ead91126744df0d5aaa1f54775164519434b4b6961d", "7ba273efef4278c32f0b4bf737c9df2efc5a50fb53a13ac73368d3d2a574951b"},
	{0x3f000000, 0x3e800000, 0x3903126f, 128, 128, 0, false, "233e98db39c4f5a13d1b84b0c1d989022a874106510440c0c9d7800f686cce2d", "233e98db39c4f5a13d1b84b0c1d989022a874106510440c0c9d7800f686cce2d", "233e98db39c4f5a13d1b84b0c1d989022a874106510440c0c9d7800f686cce2d"},
	{0x3f800000, 0x3f800000, 0x3727c5ac, 0, 0, 0, false, "6ab8b5e94df2222ad824dcc589ecc531419fe3c5e4c4fc09c199e8b2b6b66de6", "6ab8b5e94df2222ad824dcc589ecc531419fe3c5e4c4fc09c199e8b2b6b66de6", "6ab8b5e94df2222ad824dcc589ecc531419fe3c5e4c4fc09c199e8b2b6b66de6"},
	{0x3f800000, 0x3f800000, 0x36a7c5ac, 0, 0, 0, true, "e9e9a56e30c0c7547ae14d3cdae696e5e1253c19342eb67a4ce18c3b7ea71c3d", "e9e9a56e30c0c7547ae14d3cdae696e5e1253c19342eb67a4ce18c3b7ea71c3d", "e9e9a56e30c0c7547ae14d3cdae696e5e1253c19342eb67a4ce18c3b7ea71c3d"},
	{0x60ad78ec, 0x60ad78ec, 0x3f800000, 128, 128, 128, false, "de2f256064a0af797747c2b97505dc0b9f3df0de4f489eac731c23ae9ca9cc31", "de2f256064a0af797747c2b97505dc0b9f3df0de4f489eac731c23ae9ca9cc31", "de2f256064a0af797747c2b97505dc0b9f3df0de4f489eac731c23ae9ca9cc31"},
}

// mulViaScalar is MulU8 with a single-element operand routed through
// MulScalarU8, as com.qtool QLinearMul runs it.
func mulViaScalar(dst, a, b []uint8, p *AddParams) {
	switch {
	case len(b) == 1 && len(a) != 1:
		MulScalarU8(dst, a, code8(b[0], p.Signed)-p.ZeroB, p.ZeroA, p)
	case len(a) == 1 && len(b) != 1:
		MulScalarU8(dst, b, code8(a[0], p.Signed)-p.ZeroA, p.ZeroB, p)
	default:
		MulU8(dst, a, b, p)
	}
}

func code8(v uint8, signed bool) int32 {
	if signed {
		return int32(int8(v))
	}
	return int32(v)
}

// TestMulU8ORT checks MulU8 (and MulScalarU8 on the broadcast layouts) on
// every path against ONNX Runtime bit for bit on every code pair. Each order
// a port might pick instead of MLAS's must miss ONNX Runtime on some case
// of every layout, or the cases lost their point: the multiply and add
// fused (what Go may do on arm64), the ratio as sa·(sb/sc), and MLAS's own
// plain C++ fallback (dequantized product over sc, clamped as a float, so a
// product past 2^31 saturates high instead of giving INT32_MIN).
func TestMulU8ORT(t *testing.T) {
	alt := func(order int) func(dst, a, b []uint8, p *AddParams) {
		return func(dst, a, b []uint8, p *AddParams) {
			lo, hi := int32(0), int32(255)
			if p.Signed {
				lo, hi = -128, 127
			}
			ratio := p.ScaleA * p.ScaleB / p.ScaleC
			if order == 1 {
				ratio = p.ScaleA * float32(p.ScaleB/p.ScaleC)
			}
			zc := float32(p.ZeroC)
			for i := range dst {
				x := code8(a[min(i, len(a)-1)], p.Signed) - p.ZeroA
				y := code8(b[min(i, len(b)-1)], p.Signed) - p.ZeroB
				var v float32
				switch order {
				case 0:
					v = fma32(float32(x*y), ratio, zc)
				case 1:
					v = float32(float32(float32(x*y)*ratio) + zc)
				case 2:
					q := float32(float32(float32(x)*p.ScaleA)*float32(float32(y)*p.ScaleB)) / p.ScaleC
					q = min(max(q, float32(lo-p.ZeroC)), float32(hi-p.ZeroC))
					dst[i] = uint8(int32(math.RoundToEven(float64(float32(q + zc)))))
					continue
				}
				dst[i] = saturate8(min(max(cvtps2dq(v), -32768), 32767), p.Signed)
			}
		}
	}
	checkORT(t, mulORTCases, "MulU8", MulU8, 0)
	checkORT(t, mulORTCases, "MulScalarU8", mulViaScalar, 1)
	checkORTMisses(t, mulORTCases, []func(dst, a, b []uint8, p *AddParams){alt(0), alt(1), alt(2)})
}

// TestMulU8Kernel checks the MulU8 kernel the hook holds (AVX2 on amd64,
// NEON on arm64) against MulU8's Go loop (the hook cleared) bit for bit on
// every non-generic path: every code pair under ratios that saturate, hit
// 2^31 exactly (INT32_MIN), overflow, are infinite or NaN, zero points at
// the ends and far outside the 8-bit range (int32 wrap of the product);
// lengths 0..100 (the Go tail), misaligned, in place, with guard bytes.
func TestMulU8Kernel(t *testing.T) {
	if cpu.X86.AVX2 && mulKern[0] == nil {
		t.Fatal("AVX2 machine without the MulU8 kernel wired")
	}
	if mulKern[0] == nil || mulKern[1] == nil {
		t.Skip("no MulU8 kernel here")
	}
	var simd []variant
	for _, v := range paths(t) {
		if v.p != isaGeneric && !v.noFused {
			simd = append(simd, v)
		}
	}
	goLoop := func(dst, a, b []uint8, p *AddParams) {
		old := mulKern
		mulKern = [2]func(dst, a, b *uint8, n int, za, zb int32, ratio, zc float32){}
		defer func() { mulKern = old }()
		MulU8(dst, a, b, p)
	}
	a, b := codePairs()
	scales := [][3]float32{{0.02, 0.01, 0.05}, {0.1, 0.2, 1e-3}, {1, 1, 1e-3}, {1, 1, 0x1p-17}, {1, 1, 1e-12},
		{0.0123, 0.0371, 0}, {0, 0.5, 0}, {float32(math.Inf(1)), 1, 1}}
	zps := [][3]int32{{0, 0, 0}, {128, 128, 128}, {255, 255, 255}, {0, 255, 17}, {1 << 20, -(1 << 19), 3}}
	want := make([]uint8, len(a))
	for _, signed := range []bool{false, true} {
		for _, sc := range scales {
			for _, z := range zps {
				p := binaryParams(sc, z, signed)
				goLoop(want, a, b, p)
				for _, v := range simd {
					dst, check := guarded(t, len(a), 7)
					withISA(t, v, func() { MulU8(dst, a, b, p) })
					check("MulU8")
					for i := range want {
						if dst[i] != want[i] {
							t.Fatalf("%v %+v: MulU8(%d, %d) = %d, Go %d", v, *p, a[i], b[i], dst[i], want[i])
						}
					}
				}
			}
		}
	}
	rnd := rand.New(rand.NewSource(27))
	for n := 0; n <= 100; n++ {
		p := randParams(rnd, 0.01, 1e-4, n%2 == 1)
		x := make([]uint8, n+3)[n%4:][:n]
		y := make([]uint8, n+9)[n%10:][:n]
		for i := range x {
			x[i], y[i] = uint8(rnd.Intn(256)), uint8(rnd.Intn(256))
		}
		want := make([]uint8, n)
		goLoop(want, x, y, p)
		for _, v := range simd {
			dst, check := guarded(t, n, n%16)
			inA := append([]uint8(nil), x...)
			inB := append([]uint8(nil), y...)
			withISA(t, v, func() {
				MulU8(dst, x, y, p)
				MulU8(inA, inA, y, p)
				MulU8(inB, x, inB, p)
			})
			check("MulU8")
			for i := range want {
				if dst[i] != want[i] || inA[i] != want[i] || inB[i] != want[i] {
					t.Fatalf("%v n=%d %+v: [%d] = %d (in place %d, %d), Go %d", v, n, *p, i, dst[i], inA[i], inB[i], want[i])
				}
			}
		}
	}
}
