package npy

import (
	"fmt"
	"io"
	"os"

	"github.com/qtool/qtool/internal/tensor"
)

// Rows reads slices of the first axis of a .npy array through an
// io.ReaderAt, so that a data set far larger than memory can be consumed a
// few samples at a time (calibration, evaluation).
type Rows struct {
	h        *Header
	r        io.ReaderAt
	n        int   // rows
	rowShape []int // shape without the first axis
	rowElems int
	rowBytes int64
}

// NewRows parses the header at the start of r (size bytes long) and checks
// that the data is all there. The array must have at least one axis.
func NewRows(r io.ReaderAt, size int64) (*Rows, error) {
	h, err := ReadHeader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, err
	}
	if len(h.Shape) == 0 {
		return nil, fmt.Errorf(".npy array is a scalar: it needs a first (sample) axis")
	}
	if h.DataOffset+h.ByteLen() > size {
		return nil, fmt.Errorf(".npy data is truncated: shape %v of %v needs %d bytes, file has %d", h.Shape, h.DType, h.ByteLen(), size-h.DataOffset)
	}
	rs := &Rows{h: h, r: r, n: h.Shape[0], rowShape: append([]int{}, h.Shape[1:]...)}
	rs.rowElems, _ = tensor.NumElements(rs.rowShape)
	rs.rowBytes = int64(rs.rowElems) * int64(h.DType.Size())
	return rs, nil
}

// Header is the array's header.
func (rs *Rows) Header() *Header { return rs.h }

// Len is the number of rows (the first dimension).
func (rs *Rows) Len() int { return rs.n }

// RowShape is the shape of one row (the array's shape without its first axis).
func (rs *Rows) RowShape() []int { return append([]int{}, rs.rowShape...) }

// Read returns rows i..j-1 as a tensor of shape [j-i, RowShape()...].
func (rs *Rows) Read(i, j int) (*tensor.Tensor, error) {
	if i < 0 || j < i || j > rs.n {
		return nil, fmt.Errorf("rows %d..%d out of range [0, %d]", i, j, rs.n)
	}
	shape := append([]int{j - i}, rs.rowShape...)
	sr := io.NewSectionReader(rs.r, rs.h.DataOffset+int64(i)*rs.rowBytes, int64(j-i)*rs.rowBytes)
	return readData(sr, rs.h, (j-i)*rs.rowElems, shape)
}

// RowsFile is Rows over an open file; Close closes it.
type RowsFile struct {
	*Rows
	f *os.File
}

// OpenRows opens a .npy file for reading rows.
func OpenRows(path string) (*RowsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	rs, err := NewRows(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &RowsFile{Rows: rs, f: f}, nil
}

// Close closes the file.
func (rf *RowsFile) Close() error { return rf.f.Close() }
