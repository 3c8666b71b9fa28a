package q8

import "fmt"

// MaxBytes sets dst[i] = max(dst[i], src[i]) for the first len(dst) bytes,
// comparing them as uint8, or as int8 when signed: MaxPool's inner loop.
func MaxBytes(dst, src []uint8, signed bool) {
	n := len(dst)
	if len(src) < n {
		panic(fmt.Sprintf("q8.MaxBytes: %d source bytes for %d", len(src), n))
	}
	i := 0
	if k := maxKern[b2i(signed)]; k != nil && active != isaGeneric {
		if m := n &^ 31; m > 0 {
			k(&dst[0], &src[0], m)
			i = m
		}
	}
	maxBytesGo(dst[i:n], src[i:n], signed)
}

func maxBytesGo(dst, src []uint8, signed bool) {
	if signed {
		for i, v := range src[:len(dst)] {
			dst[i] = uint8(max(int8(dst[i]), int8(v)))
		}
		return
	}
	for i, v := range src[:len(dst)] {
		dst[i] = max(dst[i], v)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
