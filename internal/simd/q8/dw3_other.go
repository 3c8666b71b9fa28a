//go:build !arm64

package q8

// dw3Arm64 is set on arm64 only (dw3_arm64.go).
var dw3Arm64 func(x []uint8, h, w, c, stride int, xZero int32, d *DWWeights, y0, y1 int, out Output) bool
