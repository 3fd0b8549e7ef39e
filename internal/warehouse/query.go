package warehouse

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Query runs one SQL statement and writes the result to w as an aligned text
// table ("table"), "csv" with a header, or "json" (one object per line).
// Values are exact: decimals are never converted to floating point.
func (db *DB) Query(ctx context.Context, query string, w io.Writer, format string) error {
	switch format {
	case "table", "csv", "json":
	default:
		return fmt.Errorf("query output format %q: want table, csv or json", format)
	}
	var out resultWriter
	err := db.scan(ctx, query, func(cols, types []string, r Row) error {
		if out == nil {
			numeric := make([]bool, len(cols))
			for i, t := range types {
				numeric[i] = isNumeric(t)
			}
			switch format {
			case "table":
				out = &tableWriter{w: w, cols: cols, numeric: numeric}
			case "csv":
				out = newCSVWriter(w, cols)
			case "json":
				literal := make([]bool, len(cols))
				for i, t := range types {
					literal[i] = numeric[i] || t == "BOOLEAN" || isNested(t)
				}
				out = &jsonWriter{w: w, cols: cols, literal: literal}
			}
		}
		if r.Values == nil { // the header call of a result with no rows
			return nil
		}
		if err := out.row(r); err != nil {
			return fmt.Errorf("write query result: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := out.flush(); err != nil {
		return fmt.Errorf("write query result: %w", err)
	}
	return nil
}

type resultWriter interface {
	row(Row) error
	flush() error
}

// tableWriter buffers the rows to align the columns; NULL prints as "NULL".
type tableWriter struct {
	w       io.Writer
	cols    []string
	numeric []bool
	rows    [][]string
}

func (t *tableWriter) row(r Row) error {
	cells := make([]string, len(r.Values))
	for i, v := range r.Values {
		if r.Null[i] {
			v = "NULL"
		}
		cells[i] = strings.ReplaceAll(v, "\n", `\n`)
	}
	t.rows = append(t.rows, cells)
	return nil
}

func (t *tableWriter) flush() error {
	widths := make([]int, len(t.cols))
	for i, c := range t.cols {
		widths[i] = utf8.RuneCountInString(c)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b bytes.Buffer
	line := func(cells []string, rightAlign bool) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if rightAlign && t.numeric[i] {
				b.WriteString(pad + c)
			} else if i == len(cells)-1 {
				b.WriteString(c)
			} else {
				b.WriteString(c + pad)
			}
		}
		b.WriteString("\n")
	}
	line(t.cols, false)
	rule := make([]string, len(t.cols))
	for i := range rule {
		rule[i] = strings.Repeat("-", widths[i])
	}
	line(rule, false)
	for _, r := range t.rows {
		line(r, true)
	}
	fmt.Fprintf(&b, "(%d rows)\n", len(t.rows))
	_, err := t.w.Write(b.Bytes())
	return err
}

type csvWriter struct {
	w      *csv.Writer
	header []string
	wrote  bool
}

func newCSVWriter(w io.Writer, cols []string) *csvWriter {
	return &csvWriter{w: csv.NewWriter(w), header: cols}
}

func (c *csvWriter) row(r Row) error {
	if !c.wrote {
		c.wrote = true
		if err := c.w.Write(c.header); err != nil {
			return err
		}
	}
	return c.w.Write(r.Values)
}

func (c *csvWriter) flush() error {
	if !c.wrote {
		c.wrote = true
		if err := c.w.Write(c.header); err != nil {
			return err
		}
	}
	c.w.Flush()
	return c.w.Error()
}

// jsonWriter writes one object per row, keys in column order, numbers as
// their exact text.
type jsonWriter struct {
	w       io.Writer
	cols    []string
	literal []bool // numbers and booleans, written as they are
}

func (j *jsonWriter) row(r Row) error {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range j.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		b.Write(k)
		b.WriteByte(':')
		switch {
		case r.Null[i]:
			b.WriteString("null")
		case j.literal[i] && json.Valid([]byte(r.Values[i])):
			b.WriteString(r.Values[i])
		default:
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(r.Values[i]); err != nil {
				return err
			}
			b.Truncate(b.Len() - 1) // Encode's newline
		}
	}
	b.WriteString("}\n")
	_, err := j.w.Write(b.Bytes())
	return err
}

func (j *jsonWriter) flush() error { return nil }
