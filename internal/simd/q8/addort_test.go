package q8

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"testing"
)

// addORTCases are ONNX Runtime's QLinearAdd outputs over every code pair
// (SHA-256 of the bytes) for parameters where the float32 orders of AddU8's
// constant part disagree: testdata/gen_add_ort.py.
var addORTCases = []ortCase{
	{0x3d8672a4, 0x3a89abcf, 0x3d69a883, 190, 183, 168, false, "59a6281dc41720598275f36df8df9a63ba02a233ffb651c3a055e64ac433f2c4", "48182b65f504551fa6e882a5a6218226a8c82549c811c9b348681ee76b565d78", "bbd103c6e6de839eba8c74ef0fafd5ef65da96bcbbc6d4f710192ed909d420c7"},
	{0x3d757b60, 0x3dccc1a8, 0x3cc069fd, 90, -109, -20, true, "071b97f4bac1e72871d6053819beca966c78fde08c127497fb904df2de8502da", "b58ecfdb28f5dd1d11ba458a5767eed0f4465f4fded79a0e95945b5d4ef23577", "8f92d8d4852d3e180677020347b4f9ae3af689c881670139013e1d73066c45eb"},
	{0x3d8af89e, 0x3d3fec96, 0x3d811838, 117, 111, 43, false, "e405aede95a0caa28359d6f0d7b1e950b43ae6d80261591a294b7f2c5c14be2d", "a6453377d23b5f134a152eda5279fe6ed2ad38ab6ad92f62e91618c580493009", "a5af1b7eec89e27052baa6e4f7038a0eac65ea65a5a9391a526784c04307b849"},
	{0x3d1e6f6a, 0x3d2cfd96, 0x3c16e5c1, 32, 90, -87, true, "c31600ae995a1984b24c2026605fbbd1814bf1afefe927a6afa72e3a50b64bcf", "9c696b4eede7ca665ab4e641d95174a3d8a5c4128fd2b33843139da096afe2e3", "c31600ae995a1984b24c2026605fbbd1814bf1afefe927a6afa72e3a50b64bcf"},
	{0x3d382bfe, 0x3d73f3da, 0x3d9d4e2d, 22, 213, 105, false, "3592c78efbe95d949a6abd275b6dcf6b2d43ec2c7f369bf46dd95dbd35d82931", "fca92d69c6a77bd24b8f239b1bd4b2a4a1987b792754327974f243e2bdbd4027", "fc258406f9ebfd9491a1da68106cfed8e36c154f92fbe5604c822dc5061482cd"},
	{0x3cf26346, 0x3da6f405, 0x3d05896a, -31, 119, -10, true, "c978ffa65d7a66ab8dd91198de65791d147cb1a6ac887c4007f0fee6c4da44c8", "3d8473de988a64d600d4ea65258ad7aa44e4a392216c6d61853a67505a3acf00", "40e51b6c13cc5cdf9bf2927b58a8abe66e14e74df4f5220bedd2e75b34060ae8"},
	{0x3cc346fb, 0x3dcb297b, 0x3db987c8, 55, 201, 173, false, "dced961088859c8b6630860994bdd5991261aec5ffe7b7cae8c6ecc6c8f7621f", "56ae22a2f4e7eae8e1ccd9b6a747675e606d9ef23864c40da4daa0c07c7f491f", "f755cfb7c02e559425be7acc547ebee50f0b0e01d773b5befd26bdd842840036"},
	{0x3db0db3e, 0x3d1a258a, 0x3c7e8c9e, -57, 112, -104, true, "4562bcfe556eeba23e1fe1cbfadb6b3c5648290322a10fc7b8e063ed628cafc0", "a61249b73b866334cec78d6c8600229e151331cdb98fd8e837ab6877ccf99c8f", "de7917a160fde39365d196f5d67050b2fa76bf682447468f34dc5e195eaced8b"},
	{0x3d95225a, 0x3daa4e11, 0x3bc04e3e, 168, 228, 166, false, "56f4afc12d6dfa9df2c77f183f229dd910a1483fa247ef204a14dd36314853da", "fb3edf3eef504d11999a95c07b44e54461941cfdb1d48efb87fb140b19d54d08", "a5efb837b7e315296f7425af438c4e2cf32d1641554fd419a8e46482c3e2d498"},
	{0x3b7d4546, 0x3d971913, 0x3c3e7b3d, -57, 34, 113, true, "edce3a27a829b71728172f390e2a25751735f19931920d8290bbd94f5ea2afc0", "de360616f4953251328186c5f784c9da5843e5b92bcb2395b7214ee64ff6f3e1", "234a749483f4e1f1e1a4b0625a1568ea6ef6b22e37e2a43128a2b136703e9efd"},
	{0x3db8af15, 0x3cfd9529, 0x3d540465, 221, 14, 86, false, "e723f60812b984299f0b35374891d4254222fb7d7ccbce35554b67093b323909", "774f6492aa8faa8c12b20b1a350116db46d17015b66542ac45f69b7b0cca96eb", "36a89bd4c1e7c861ba1e5f58c64a1fbadb9b57308158120dc07f19d1c13e15d1"},
	{0x3d0f2468, 0x3da43fde, 0x3c96efb1, 94, 60, -97, true, "e122f95f1f103763f4cbbcd1b52d5c8db17ad7542d14f8c722a66cb72c369c80", "75f5f9409339901df2eed6fc1d3c4a421e751b8d1f1a0ce41fa1c339afab75c0", "c2b5124556301e8f09c4a604c4350b2452648e6b544982d2a0687a3d10387341"},
}

// ortCase is a row of gen_add_ort.py's or gen_mul_ort.py's output: the
// parameters and the SHA-256 of ONNX Runtime's output in each layout of
// addGrids.
type ortCase struct {
	sa, sb, sc              uint32 // float32 bits
	za, zb, zc              int32
	signed                  bool
	whole, scalarB, scalarA string
}

func (c ortCase) params() *AddParams {
	return &AddParams{ScaleA: math.Float32frombits(c.sa), ScaleB: math.Float32frombits(c.sb), ScaleC: math.Float32frombits(c.sc),
		ZeroA: c.za, ZeroB: c.zb, ZeroC: c.zc, Signed: c.signed}
}

func (c ortCase) hashes() [3]string { return [3]string{c.whole, c.scalarB, c.scalarA} }

// checkORT checks f on every path against ONNX Runtime bit for bit on
// each case's layouts from..2 of addGrids.
func checkORT(t *testing.T, cases []ortCase, name string, f func(dst, a, b []uint8, p *AddParams), from int) {
	t.Helper()
	for ci, c := range cases {
		want := c.hashes()
		for _, v := range paths(t) {
			withISA(t, v, func() {
				got := addGrids(c.params(), f)
				for l := from; l < len(got); l++ {
					if got[l] != want[l] {
						t.Errorf("%s case %d %v: layout %d differs from ONNX Runtime", name, ci, v, l)
					}
				}
			})
		}
	}
}

// checkORTMisses fails unless each of alts (a float32 order a port might
// pick instead of ONNX Runtime's) misses ONNX Runtime on some case of
// every layout: else the cases lost their point.
func checkORTMisses(t *testing.T, cases []ortCase, alts []func(dst, a, b []uint8, p *AddParams)) {
	t.Helper()
	for k, alt := range alts {
		var missed [3]bool
		for _, c := range cases {
			want := c.hashes()
			got := addGrids(c.params(), alt)
			for l := range got {
				missed[l] = missed[l] || got[l] != want[l]
			}
		}
		for l, x := range missed {
			if !x {
				t.Errorf("order %d matches ONNX Runtime on every case of layout %d: the cases lost their point", k, l)
			}
		}
	}
}

// addGrids runs add over the three layouts of gen_add_ort.py and returns
// the SHA-256 of each output: A and B whole (a = code i, b = code j), B a
// single element per row of 256 (b = code i), A a single element per row.
func addGrids(p *AddParams, add func(dst, a, b []uint8, p *AddParams)) [3]string {
	a, b := codePairs()
	codes := b[:256]
	var h [3]string
	y := make([]uint8, 65536)
	sum := func() string { s := sha256.Sum256(y); return hex.EncodeToString(s[:]) }
	add(y, a, b, p)
	h[0] = sum()
	for i := range 256 {
		add(y[i*256:(i+1)*256], codes, codes[i:i+1], p)
	}
	h[1] = sum()
	for i := range 256 {
		add(y[i*256:(i+1)*256], codes[i:i+1], codes, p)
	}
	h[2] = sum()
	return h
}

// TestAddU8ORT checks AddU8 on every path against ONNX Runtime bit for bit
// on every code pair, whole and broadcast, where the order of the constant
// part's roundings shows. The two orders a compiler may pick without being
// told (all unfused, as Go on amd64; fma(rb, zb, ra·za), as Go fuses it on
// arm64) must each miss ONNX Runtime somewhere, or the cases lost their
// point.
func TestAddU8ORT(t *testing.T) {
	alt := func(fused bool) func(dst, a, b []uint8, p *AddParams) {
		return func(dst, a, b []uint8, p *AddParams) {
			val := func(v uint8) float32 {
				if p.Signed {
					return float32(int8(v))
				}
				return float32(v)
			}
			ra, rb := p.ScaleA/p.ScaleC, p.ScaleB/p.ScaleC
			za, zb := float32(p.ZeroA), float32(p.ZeroB)
			fixed := float32(p.ZeroC) - float32(float32(ra*za)+float32(rb*zb))
			if fused {
				fixed = float32(p.ZeroC) - fma32(rb, zb, float32(ra*za))
			}
			if len(a) == 1 {
				fixed = float32(fixed + float32(val(a[0])*ra))
				ra = 0
			}
			if len(b) == 1 {
				fixed = float32(fixed + float32(val(b[0])*rb))
				rb = 0
			}
			for i := range dst {
				v := fma32(val(b[min(i, len(b)-1)]), rb, fixed)
				v = fma32(val(a[min(i, len(a)-1)]), ra, v)
				dst[i] = saturate8(cvtps2dq(v), p.Signed)
			}
		}
	}
	checkORT(t, addORTCases, "AddU8", AddU8, 0)
	checkORTMisses(t, addORTCases, []func(dst, a, b []uint8, p *AddParams){alt(false), alt(true)})
}
