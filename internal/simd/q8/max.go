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

// SumPixels adds, for each of c channels, the n pixels of an NHWC image
// (pixel p at img[p*c:]) to acc[ch], the bytes read as uint8 or, when
// signed, int8: GlobalAveragePool's sums.
func SumPixels(acc []int32, img []uint8, n, c int, signed bool) {
	if n < 0 || c < 0 || len(acc) < c || len(img) < n*c {
		panic(fmt.Sprintf("q8.SumPixels: %d pixels of %d channels from %d bytes into %d sums", n, c, len(img), len(acc)))
	}
	if n == 0 {
		return
	}
	ch := 0
	if k := colSumKern[b2i(signed)]; k != nil && active != isaGeneric {
		for ; ch+8 <= c; ch += 8 {
			k(&acc[ch], &img[ch], n, c)
		}
	}
	if ch == c {
		return
	}
	for p := 0; p < n; p++ {
		row := img[p*c+ch : (p+1)*c]
		a := acc[ch:c]
		if signed {
			for j, v := range row {
				a[j] += int32(int8(v))
			}
		} else {
			for j, v := range row {
				a[j] += int32(v)
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
