// Package tensor holds dense tensors and quantized tensors: the values that
// flow between every other package of qtool.
package tensor

import "fmt"

// DType is an element type. The numbers are ONNX's TensorProto.DataType, so
// conversion to and from ONNX is the identity.
type DType uint8

const (
	Undefined DType = 0
	Float32   DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Uint16    DType = 4
	Int16     DType = 5
	Int32     DType = 6
	Int64     DType = 7
	String    DType = 8
	Bool      DType = 9
	Float16   DType = 10
	Float64   DType = 11
	Uint32    DType = 12
	Uint64    DType = 13
)

var dtypeNames = map[DType]string{
	Undefined: "undefined", Float32: "float32", Uint8: "uint8", Int8: "int8",
	Uint16: "uint16", Int16: "int16", Int32: "int32", Int64: "int64",
	String: "string", Bool: "bool", Float16: "float16", Float64: "float64",
	Uint32: "uint32", Uint64: "uint64",
}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Supported reports whether qtool can hold elements of this type.
func (d DType) Supported() bool {
	_, ok := dtypeNames[d]
	return ok && d != Undefined
}

// Size is the element size in bytes (0 for String and Undefined).
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Int64, Float64, Uint64:
		return 8
	}
	return 0
}

// IsFloat reports float16, float32 and float64.
func (d DType) IsFloat() bool { return d == Float32 || d == Float16 || d == Float64 }

// IsInteger reports the signed and unsigned integer types (not bool).
func (d DType) IsInteger() bool {
	switch d {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Uint32, Uint64:
		return true
	}
	return false
}
