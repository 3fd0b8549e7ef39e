package load

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// index is a window's lines in file order, as the read that verified them
// found them, kept in a temporary file rather than in memory: every use of
// the lines is a scan in that order (docs/design.md, "The load's window"),
// so what the load holds does not grow with the window by its lines. A
// record is 100 to 170 bytes (ids, the amount, the payload's digest, the
// line's mark); the types, events and currencies it names are numbers into
// names, one copy each.
type index struct {
	f     *os.File // nil for a window without lines
	path  string   // the file's name, "" once removed
	n     int      // lines
	size  int64    // bytes written
	names []string // what the records' codes name; 0 is ""
}

// indexWriter appends the records of an index being built.
type indexWriter struct {
	x     *index
	w     *bufio.Writer
	codes map[string]uint64
	rec   []byte
}

// newIndex starts an index in the temporary directory ($TMPDIR). On a
// system that lets an open file be removed the file has no name from the
// start, so a killed load leaves nothing behind.
func newIndex() (*indexWriter, error) {
	f, err := os.CreateTemp("", "zuora-erp-etl-load-*.index")
	if err != nil {
		return nil, fmt.Errorf("create the load's index of the window's lines: %w", err)
	}
	x := &index{f: f, path: f.Name(), names: []string{""}}
	if os.Remove(f.Name()) == nil {
		x.path = ""
	}
	return &indexWriter{x: x, w: bufio.NewWriterSize(f, 64<<10), codes: map[string]uint64{"": 0}}, nil
}

// code is the number of name in the index, given on first use.
func (iw *indexWriter) code(name string) uint64 {
	c, ok := iw.codes[name]
	if !ok {
		c = uint64(len(iw.x.names))
		iw.codes[name] = c
		iw.x.names = append(iw.x.names, name)
	}
	return c
}

// add appends d's record.
func (iw *indexWriter) add(d *document) error {
	b := iw.rec[:0]
	b = binary.AppendUvarint(b, iw.code(string(d.DocType)))
	b = binary.AppendUvarint(b, iw.code(d.Currency))
	b = binary.AppendUvarint(b, iw.code(d.Event))
	b = binary.AppendUvarint(b, iw.code(string(d.reverses)))
	b = appendString(b, d.ZuoraID)
	if d.IdempotencyKey == d.ZuoraID {
		b = append(b, 0) // the usual case: the key is the id
	} else {
		b = append(b, 1)
		b = appendString(b, d.IdempotencyKey)
	}
	b = binary.AppendUvarint(b, uint64(len(d.deps)))
	for _, dp := range d.deps {
		b = binary.AppendUvarint(b, iw.code(string(dp.DocType)))
		b = appendString(b, dp.ZuoraID)
	}
	b = append(b, d.fixed[:]...)
	b = append(b, d.sha[:]...)
	b = binary.LittleEndian.AppendUint64(b, d.line.digest)
	b = binary.AppendUvarint(b, uint64(d.line.from))
	b = binary.AppendUvarint(b, uint64(d.line.to))
	iw.rec = b

	var head [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(head[:], uint64(len(b)))
	if _, err := iw.w.Write(head[:h]); err != nil {
		return iw.failed(err)
	}
	if _, err := iw.w.Write(b); err != nil {
		return iw.failed(err)
	}
	iw.x.n++
	iw.x.size += int64(h + len(b))
	return nil
}

// done ends the writing and returns the index to scan.
func (iw *indexWriter) done() (*index, error) {
	if err := iw.w.Flush(); err != nil {
		return nil, iw.failed(err)
	}
	return iw.x, nil
}

// abandon removes the index being written.
func (iw *indexWriter) abandon() { iw.x.close() }

func (iw *indexWriter) failed(err error) error {
	return fmt.Errorf("write the load's index of the window's lines (%d written) to the temporary directory %s: %w", iw.x.n, os.TempDir(), err)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// close removes the index; a closed index has no lines.
func (x *index) close() {
	if x == nil || x.f == nil {
		return
	}
	_ = x.f.Close()
	if x.path != "" {
		_ = os.Remove(x.path)
	}
	*x = index{}
}

// len is how many lines the index holds.
func (x *index) len() int {
	if x == nil {
		return 0
	}
	return x.n
}

// each calls fn with the number and the record of each line in file order;
// d is fn's to keep. An error from fn ends the scan and is returned.
// Scans may run at once.
func (x *index) each(fn func(i int, d *document) error) error {
	r := x.reader()
	for {
		d, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(r.i-1, &d); err != nil {
			return err
		}
	}
}

// indexReader reads an index's records in order.
type indexReader struct {
	x   *index
	r   *bufio.Reader
	rec []byte
	i   int // records read
}

func (x *index) reader() *indexReader {
	r := &indexReader{x: x}
	if x.len() > 0 {
		r.r = bufio.NewReaderSize(io.NewSectionReader(x.f, 0, x.size), 64<<10)
	}
	return r
}

// errCorruptIndex is a record the index cannot have written.
var errCorruptIndex = errors.New("a record is not one the load wrote")

// next returns the next line's record; ok is false after the last.
func (r *indexReader) next() (d document, ok bool, err error) {
	if r.i >= r.x.len() {
		return d, false, nil
	}
	size, err := binary.ReadUvarint(r.r)
	if err == nil && size > uint64(r.x.size) {
		err = errCorruptIndex
	}
	if err == nil {
		if cap(r.rec) < int(size) {
			r.rec = make([]byte, size)
		}
		r.rec = r.rec[:size]
		_, err = io.ReadFull(r.r, r.rec)
	}
	if err == nil {
		d, err = r.x.decode(r.rec)
	}
	if err != nil {
		return d, false, fmt.Errorf("read the load's index of the window's lines at line %d: %w", r.i+1, err)
	}
	r.i++
	return d, true, nil
}

// decode is the inverse of indexWriter.add.
func (x *index) decode(b []byte) (document, error) {
	var (
		d   document
		bad bool
	)
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	name := func() string {
		c := uvarint()
		if c >= uint64(len(x.names)) {
			bad = true
			return ""
		}
		return x.names[c]
	}
	str := func() string {
		n := uvarint()
		if n > uint64(len(b)) {
			bad = true
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	fixed := func(dst []byte) {
		if len(b) < len(dst) {
			bad = true
			return
		}
		b = b[copy(dst, b):]
	}
	d.DocType, d.Currency, d.Event, d.reverses = stage.DocType(name()), name(), name(), stage.DocType(name())
	d.ZuoraID = str()
	switch flag := uvarint(); flag {
	case 0: // the key is the id
		d.IdempotencyKey = d.ZuoraID
	case 1:
		d.IdempotencyKey = str()
	default:
		bad = true
	}
	if n := uvarint(); n > uint64(len(b)) {
		bad = true // more dependencies than bytes left
	} else if n > 0 {
		d.deps = make([]Dep, n)
		for i := range d.deps {
			d.deps[i].DocType = stage.DocType(name())
			d.deps[i].ZuoraID = str()
		}
	}
	fixed(d.fixed[:])
	fixed(d.sha[:])
	var digest [8]byte
	fixed(digest[:])
	d.line.digest = binary.LittleEndian.Uint64(digest[:])
	d.line.from, d.line.to = uint32(uvarint()), uint32(uvarint())
	if bad || len(b) != 0 {
		return document{}, errCorruptIndex
	}
	return d, nil
}
