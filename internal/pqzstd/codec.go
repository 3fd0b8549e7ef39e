// Package pqzstd is the zstd codec and page size of the Parquet the
// pipeline writes (the raw tables and the ledger): one set of encoders for
// the whole process, sized to the pages.
package pqzstd

import (
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// PageBytes is the Parquet page size: a column's values are buffered up to
// it before they are encoded and compressed.
const PageBytes = 64 << 10

// codec is the zstd codec of every Parquet file the pipeline writes.
var codec = newZstdCodec()

// Options are the writer options of every Parquet file the pipeline writes:
// zstd with the shared encoders, and PageBytes pages.
func Options() []parquet.WriterOption {
	return []parquet.WriterOption{parquet.Compression(codec), parquet.PageBufferSize(PageBytes)}
}

// zstdCodec compresses Parquet pages with one set of zstd encoders for the
// whole process, each with a window of two pages: parquet-go's zstd.Codec
// pools encoders per codec value with zstd's default 8 MB window, and each
// such encoder keeps a 16 MB history, however small the pages.
type zstdCodec struct{ enc *zstd.Encoder }

func newZstdCodec() *zstdCodec {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(min(runtime.GOMAXPROCS(0), 4)),
		zstd.WithWindowSize(2*PageBytes),
		zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err) // the options are constants
	}
	return &zstdCodec{enc: enc}
}

func (*zstdCodec) String() string { return "ZSTD" }

func (*zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode compresses src into dst; the encoder is safe for concurrent use.
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}

// Decode is parquet-go's, as any zstd frame decodes alike.
func (*zstdCodec) Decode(dst, src []byte) ([]byte, error) { return parquet.Zstd.Decode(dst, src) }
