package npy

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/qtool/qtool/internal/tensor"
)

// maxNPZEntries bounds the archive directory we are willing to walk.
const maxNPZEntries = 1 << 16

// Archive is the content of an .npz file: arrays by name (without ".npy"),
// and their names in archive order.
type Archive struct {
	Names  []string
	Arrays map[string]*tensor.Tensor
}

// ReadNPZFile reads every array of an .npz file (stored or deflated).
func ReadNPZFile(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	a, err := ReadNPZ(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ReadNPZ reads an .npz archive from r of the given size.
func ReadNPZ(r io.ReaderAt, size int64) (*Archive, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not an .npz file: %v", err)
	}
	if len(zr.File) > maxNPZEntries {
		return nil, fmt.Errorf(".npz has %d entries, more than %d", len(zr.File), maxNPZEntries)
	}
	a := &Archive{Arrays: map[string]*tensor.Tensor{}}
	for _, zf := range zr.File {
		if !strings.HasSuffix(zf.Name, ".npy") {
			return nil, fmt.Errorf(".npz entry %q is not a .npy array", zf.Name)
		}
		name := strings.TrimSuffix(zf.Name, ".npy")
		if _, dup := a.Arrays[name]; dup {
			return nil, fmt.Errorf(".npz has two arrays named %q", name)
		}
		t, err := readEntry(zf)
		if err != nil {
			return nil, fmt.Errorf(".npz entry %q: %w", zf.Name, err)
		}
		a.Names = append(a.Names, name)
		a.Arrays[name] = t
	}
	return a, nil
}

func readEntry(zf *zip.File) (*tensor.Tensor, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h, err := ReadHeader(rc)
	if err != nil {
		return nil, err
	}
	if uint64(h.DataOffset)+uint64(h.ByteLen()) > zf.UncompressedSize64 {
		return nil, fmt.Errorf(".npy data is truncated: shape %v of %v needs %d bytes, entry has %d", h.Shape, h.DType, h.ByteLen(), int64(zf.UncompressedSize64)-h.DataOffset)
	}
	// The declared sizes come from the archive and may lie: grow the buffer
	// only as decompressed bytes actually arrive.
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(rc, h.ByteLen()))
	if err != nil {
		return nil, err
	}
	if n != h.ByteLen() {
		return nil, fmt.Errorf(".npy data is truncated: needs %d bytes, got %d", h.ByteLen(), n)
	}
	t, err := tensor.New(h.DType, h.Shape)
	if err != nil {
		return nil, err
	}
	if err := decode(t, buf.Bytes()); err != nil {
		return nil, err
	}
	return t, nil
}

// WriteNPZ writes arrays (stored, uncompressed) in the order of names.
func WriteNPZ(w io.Writer, names []string, arrays map[string]*tensor.Tensor) error {
	zw := zip.NewWriter(w)
	for _, name := range names {
		t, ok := arrays[name]
		if !ok {
			return fmt.Errorf("npz: no array %q", name)
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store})
		if err != nil {
			return err
		}
		if err := Write(fw, t); err != nil {
			return err
		}
	}
	return zw.Close()
}

// SortedNames returns the archive's names sorted, for deterministic output.
func (a *Archive) SortedNames() []string {
	s := append([]string(nil), a.Names...)
	sort.Strings(s)
	return s
}
