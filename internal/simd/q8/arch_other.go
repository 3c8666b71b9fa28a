//go:build !amd64 && !arm64

package q8

func initArch() {}

func emulateAVXVNNI() bool { return false }

func hasPeak() bool { return false }

func peakVNNI512(iters int) {}
