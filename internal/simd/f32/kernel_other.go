//go:build !amd64 || noasm

package f32

func archKernels() []*kernel { return nil }
