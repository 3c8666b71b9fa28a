package calibrate

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/qtool/qtool/internal/npy"
	"github.com/qtool/qtool/internal/tensor"
)

// npyRows is a .npy file (or a stored .npz entry) whose first axis is the
// sample: each sample is read from disk when asked for.
type npyRows struct {
	rows  *npy.Rows
	name  string
	close func() error
}

func openNPYRows(path string) (*npyRows, error) {
	rf, err := npy.OpenRows(path)
	if err != nil {
		return nil, err
	}
	return &npyRows{rows: rf.Rows, name: path, close: rf.Close}, nil
}

func (s *npyRows) Len() int { return s.rows.Len() }

func (s *npyRows) Sample(i int) (*tensor.Tensor, error) {
	t, err := s.rows.Read(i, i+1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Where(i), err)
	}
	t.Shape = t.Shape[1:]
	return t, nil
}

func (s *npyRows) Where(i int) string { return fmt.Sprintf("%s sample %d", s.name, i) }
func (s *npyRows) Label(int) int      { return -1 }
func (s *npyRows) Close() error       { return s.close() }

type npzArray struct {
	name string
	src  *npyRows
}

// maxTempBytes bounds what a compressed .npz entry may expand to on disk.
const maxTempBytes = 1 << 40

// openNPZ opens every array of an .npz. Stored entries are read in place;
// deflated ones are expanded once into a temporary file (random access into
// a deflate stream would mean decompressing from the start for every
// sample), so memory stays bounded either way.
func openNPZ(path string) (arrays []npzArray, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, a := range arrays {
				a.src.Close()
			}
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: not an .npz file: %v", path, err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("%s: the .npz holds no arrays", path)
	}
	refs := 0
	for _, zf := range zr.File {
		if !strings.HasSuffix(zf.Name, ".npy") {
			return nil, fmt.Errorf("%s: entry %q is not a .npy array", path, zf.Name)
		}
		name := strings.TrimSuffix(zf.Name, ".npy")
		where := path + ":" + name
		for _, a := range arrays {
			if a.name == name {
				return nil, fmt.Errorf("%s: two arrays named %q", path, name)
			}
		}
		var src *npyRows
		switch zf.Method {
		case zip.Store:
			off, err := zf.DataOffset()
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			size := int64(zf.UncompressedSize64)
			if size < 0 || off+size > st.Size() {
				return nil, fmt.Errorf("%s: entry extends past the end of the file", where)
			}
			rows, err := npy.NewRows(io.NewSectionReader(f, off, size), size)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			refs++
			src = &npyRows{rows: rows, name: where, close: func() error {
				refs--
				if refs == 0 {
					return f.Close()
				}
				return nil
			}}
		default:
			src, err = expandEntry(zf, where)
			if err != nil {
				return nil, err
			}
		}
		arrays = append(arrays, npzArray{name: name, src: src})
	}
	if refs == 0 {
		f.Close()
	}
	n := arrays[0].src.Len()
	for _, a := range arrays[1:] {
		if a.src.Len() != n {
			return nil, fmt.Errorf("%s: array %q has %d samples, %q has %d", path, arrays[0].name, n, a.name, a.src.Len())
		}
	}
	return arrays, nil
}

func expandEntry(zf *zip.File, where string) (*npyRows, error) {
	if zf.UncompressedSize64 > maxTempBytes {
		return nil, fmt.Errorf("%s: entry expands to %d bytes", where, zf.UncompressedSize64)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp("", "qtool-npz-*.npy")
	if err != nil {
		return nil, err
	}
	cleanup := func() error {
		err := tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	// The zip reader checks the CRC and the declared size at the end.
	n, err := io.Copy(tmp, io.LimitReader(rc, int64(zf.UncompressedSize64)+1))
	if err == nil && n != int64(zf.UncompressedSize64) {
		err = fmt.Errorf("entry holds %d bytes, the directory says %d", n, zf.UncompressedSize64)
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	rows, err := npy.NewRows(tmp, n)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &npyRows{rows: rows, name: where, close: cleanup}, nil
}

// npyFolder is a folder of .npy files, one sample each, in name order.
type npyFolder struct {
	dir   string
	files []string
}

func (s *npyFolder) Len() int { return len(s.files) }

func (s *npyFolder) Sample(i int) (*tensor.Tensor, error) {
	p := filepath.Join(s.dir, s.files[i])
	t, err := npy.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (s *npyFolder) Where(i int) string { return filepath.Join(s.dir, s.files[i]) }
func (s *npyFolder) Label(int) int      { return -1 }
func (s *npyFolder) Close() error       { return nil }
