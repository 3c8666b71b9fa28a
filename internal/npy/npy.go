// Package npy reads and writes NumPy .npy and .npz files: the data format of
// `qtool run`, `qtool calibrate` and `qtool eval`.
//
// Files are untrusted. Every size read from a header is checked against the
// bytes actually present before anything is allocated, and unsupported
// layouts (big-endian, Fortran order, object arrays) are refused with an
// error that says how to convert them, rather than misread.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/qtool/qtool/internal/tensor"
)

var magic = []byte("\x93NUMPY")

// maxHeader bounds the header dictionary; NumPy writes well under 4 KiB.
const maxHeader = 1 << 16

// Header describes the array in a .npy file.
type Header struct {
	DType tensor.DType
	Shape []int
	// DataOffset is where the array bytes start in the file.
	DataOffset int64
}

// NumElements is the product of the shape.
func (h *Header) NumElements() int {
	n, _ := tensor.NumElements(h.Shape)
	return n
}

// ByteLen is the number of data bytes the header promises.
func (h *Header) ByteLen() int64 { return int64(h.NumElements()) * int64(h.DType.Size()) }

var descrs = map[string]tensor.DType{
	"f4": tensor.Float32, "f8": tensor.Float64, "f2": tensor.Float16,
	"i1": tensor.Int8, "u1": tensor.Uint8, "i2": tensor.Int16, "u2": tensor.Uint16,
	"i4": tensor.Int32, "u4": tensor.Uint32, "i8": tensor.Int64, "u8": tensor.Uint64,
	"b1": tensor.Bool,
}

func descrOf(dt tensor.DType) (string, error) {
	for k, v := range descrs {
		if v == dt {
			if dt.Size() == 1 {
				return "|" + k, nil
			}
			return "<" + k, nil
		}
	}
	return "", fmt.Errorf("npy: cannot write dtype %v", dt)
}

// ReadHeader parses the header of a .npy stream.
func ReadHeader(r io.Reader) (*Header, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("not a .npy file: %w", shortErr(err))
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, errors.New("not a .npy file: bad magic")
	}
	var hlen int
	off := int64(8)
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %w", shortErr(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
		off += 2
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated .npy header: %w", shortErr(err))
		}
		v := binary.LittleEndian.Uint32(b[:])
		if v > maxHeader {
			return nil, fmt.Errorf(".npy header length %d is larger than %d bytes", v, maxHeader)
		}
		hlen = int(v)
		off += 4
	default:
		return nil, fmt.Errorf("unsupported .npy format version %d.%d", pre[6], pre[7])
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, fmt.Errorf("truncated .npy header: %w", shortErr(err))
	}
	off += int64(hlen)
	h, err := parseDict(string(hb))
	if err != nil {
		return nil, err
	}
	h.DataOffset = off
	return h, nil
}

func shortErr(err error) error {
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return errors.New("file too short")
	}
	return err
}

// parseDict parses NumPy's header, a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
func parseDict(s string) (*Header, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, errors.New("malformed .npy header: not a dict")
	}
	body := s[1 : len(s)-1]
	var descr, fortran, shape string
	var haveDescr, haveFortran, haveShape bool
	for len(strings.TrimSpace(body)) > 0 {
		body = strings.TrimSpace(body)
		key, rest, err := pyString(body)
		if err != nil {
			return nil, fmt.Errorf("malformed .npy header: %v", err)
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, ":") {
			return nil, errors.New("malformed .npy header: missing ':'")
		}
		rest = strings.TrimSpace(rest[1:])
		var val string
		switch {
		case strings.HasPrefix(rest, "'") || strings.HasPrefix(rest, "\""):
			v, r2, err := pyString(rest)
			if err != nil {
				return nil, fmt.Errorf("malformed .npy header: %v", err)
			}
			val, rest = "'"+v, r2
		case strings.HasPrefix(rest, "("):
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return nil, errors.New("malformed .npy header: unterminated shape tuple")
			}
			val, rest = rest[:end+1], rest[end+1:]
		default:
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		switch key {
		case "descr":
			if !strings.HasPrefix(val, "'") {
				return nil, errors.New("malformed .npy header: descr is not a string (structured arrays are not supported)")
			}
			descr, haveDescr = val[1:], true
		case "fortran_order":
			fortran, haveFortran = val, true
		case "shape":
			shape, haveShape = val, true
		default:
			return nil, fmt.Errorf("malformed .npy header: unknown key %q", key)
		}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, ",") {
			rest = rest[1:]
		} else if strings.TrimSpace(rest) != "" {
			return nil, errors.New("malformed .npy header: missing ','")
		}
		body = rest
	}
	if !haveDescr || !haveFortran || !haveShape {
		return nil, errors.New("malformed .npy header: needs descr, fortran_order and shape")
	}
	h := &Header{}
	if len(descr) < 2 {
		return nil, fmt.Errorf("unsupported .npy dtype %q", descr)
	}
	order, code := descr[0], descr[1:]
	dt, ok := descrs[code]
	if !ok {
		return nil, fmt.Errorf("unsupported .npy dtype %q (use float32, float64, float16, int8..int64, uint8..uint64 or bool)", descr)
	}
	switch order {
	case '<', '|':
	case '=':
		// Native order; NumPy writes '<' on every platform qtool supports.
	case '>':
		if dt.Size() > 1 {
			return nil, fmt.Errorf("big-endian .npy data (%q) is not supported: save it with arr.astype('<%s')", descr, code)
		}
	default:
		return nil, fmt.Errorf("unsupported .npy dtype %q", descr)
	}
	h.DType = dt
	switch fortran {
	case "False":
	case "True":
		return nil, errors.New("Fortran-ordered .npy data is not supported: save it with np.ascontiguousarray(arr)")
	default:
		return nil, fmt.Errorf("malformed .npy header: fortran_order is %q", fortran)
	}
	dims, err := parseShape(shape)
	if err != nil {
		return nil, err
	}
	if _, err := tensor.NumElements(dims); err != nil {
		return nil, fmt.Errorf("bad .npy shape: %v", err)
	}
	h.Shape = dims
	return h, nil
}

func pyString(s string) (string, string, error) {
	if len(s) == 0 || (s[0] != '\'' && s[0] != '"') {
		return "", s, errors.New("expected a quoted string")
	}
	q := s[0]
	end := strings.IndexByte(s[1:], q)
	if end < 0 {
		return "", s, errors.New("unterminated string")
	}
	return s[1 : 1+end], s[end+2:], nil
}

func parseShape(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return nil, fmt.Errorf("malformed .npy header: shape %q is not a tuple", s)
	}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	dims := []int{}
	if inner == "" {
		return dims, nil
	}
	for _, p := range strings.Split(inner, ",") {
		p = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), "L"))
		if p == "" {
			continue
		}
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("malformed .npy header: bad dimension %q in shape %s", p, s)
		}
		dims = append(dims, int(v))
	}
	if len(dims) > 32 {
		return nil, fmt.Errorf("malformed .npy header: %d dimensions", len(dims))
	}
	return dims, nil
}

// Read reads a whole .npy stream. size is the number of bytes available in
// the stream (the file size), or -1 when unknown; a header that promises more
// data than size is refused before allocating.
func Read(r io.Reader, size int64) (*tensor.Tensor, error) {
	br := bufio.NewReader(r)
	h, err := ReadHeader(br)
	if err != nil {
		return nil, err
	}
	if size >= 0 && h.DataOffset+h.ByteLen() > size {
		return nil, fmt.Errorf(".npy data is truncated: shape %v of %v needs %d bytes, file has %d", h.Shape, h.DType, h.ByteLen(), size-h.DataOffset)
	}
	return readData(br, h, h.NumElements(), h.Shape)
}

// ReadFile reads a .npy file.
func ReadFile(path string) (*tensor.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	t, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// readData decodes n elements of h.DType into a tensor of the given shape.
func readData(r io.Reader, h *Header, n int, shape []int) (*tensor.Tensor, error) {
	t, err := tensor.New(h.DType, shape)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, n*h.DType.Size())
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf(".npy data is truncated: %w", shortErr(err))
	}
	if err := decode(t, raw); err != nil {
		return nil, err
	}
	return t, nil
}

// decode fills t from little-endian bytes. NumPy writes bools as 0 or 1;
// any other byte means the file is not what its header says.
func decode(t *tensor.Tensor, raw []byte) error {
	if t.DType == tensor.Bool {
		for i, b := range raw[:t.Len()] {
			if b > 1 {
				return fmt.Errorf("bool .npy data holds byte %d at element %d", b, i)
			}
		}
	}
	data, err := tensor.DecodeLE(t.DType, raw, t.Len())
	if err != nil {
		return err
	}
	t.Data = data
	return nil
}

// Encode returns the raw little-endian bytes of a tensor's elements.
func Encode(t *tensor.Tensor) ([]byte, error) { return tensor.EncodeLE(t) }

// Write writes a tensor as a version 1.0 .npy stream.
func Write(w io.Writer, t *tensor.Tensor) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	descr, err := descrOf(t.DType)
	if err != nil {
		return err
	}
	var sh strings.Builder
	sh.WriteString("(")
	for i, d := range t.Shape {
		if i > 0 {
			sh.WriteString(", ")
		}
		sh.WriteString(strconv.Itoa(d))
	}
	if len(t.Shape) == 1 {
		sh.WriteString(",")
	}
	sh.WriteString(")")
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, sh.String())
	// Pad so that the data starts on a 64-byte boundary, as NumPy does.
	total := len(magic) + 2 + 2 + len(dict) + 1
	pad := (64 - total%64) % 64
	dict += strings.Repeat(" ", pad) + "\n"
	if len(dict) > math.MaxUint16 {
		return errors.New("npy: header too long")
	}
	var hdr bytes.Buffer
	hdr.Write(magic)
	hdr.Write([]byte{1, 0})
	var l [2]byte
	binary.LittleEndian.PutUint16(l[:], uint16(len(dict)))
	hdr.Write(l[:])
	hdr.WriteString(dict)
	raw, err := Encode(t)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	_, err = w.Write(raw)
	return err
}
