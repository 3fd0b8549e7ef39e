// Package stage is the pipeline's durable store: raw Parquet snapshots, ERP-ready
// documents, the load ledger, manifests and the high-water mark, all in one
// gocloud blob bucket (file://, mem://, s3://, gs://, azblob://).
//
// It is the only package that imports gocloud.dev/blob. Keys are a pure function
// of the data (see keys.go); a manifest written last commits a step, and readers
// trust only what a manifest lists.
package stage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob:// stages
	_ "gocloud.dev/blob/fileblob"  // file:// stages
	_ "gocloud.dev/blob/gcsblob"   // gs:// stages
	_ "gocloud.dev/blob/memblob"   // mem:// stages
	_ "gocloud.dev/blob/s3blob"    // s3:// stages
	"gocloud.dev/gcerrors"

	"github.com/aws/smithy-go"
)

// Stage is an open stage bucket.
type Stage struct {
	bucket   *blob.Bucket
	url      string
	root     string // the folder of a file:// stage, else ""
	shared   bool   // a process-wide mem:// bucket, not closed by Close
	cacheDir string
}

// ObjectInfo describes one object written to or listed in the stage.
type ObjectInfo struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("not found in stage")

// Open opens the stage at rawURL. A bare path or a relative file:// URL is taken
// relative to the working directory and created if missing.
func Open(ctx context.Context, rawURL string) (*Stage, error) {
	u, err := normalizeURL(rawURL)
	if err != nil {
		return nil, err
	}
	b, shared, err := openBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open stage %s: %w", Redact(rawURL), err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	s := &Stage{bucket: b, url: rawURL, shared: shared, cacheDir: filepath.Join(cache, "zuora-erp-etl")}
	if p, err := url.Parse(u); err == nil && p.Scheme == "file" {
		s.root = filepath.FromSlash(p.Path)
	}
	return s, nil
}

// OpenBucket wraps an already open bucket (tests use it for in-process S3 servers).
func OpenBucket(b *blob.Bucket, name string) *Stage {
	return &Stage{bucket: b, url: name, cacheDir: filepath.Join(os.TempDir(), "zuora-erp-etl-cache")}
}

// SetCacheDir sets where LocalPath keeps local copies of remote objects.
func (s *Stage) SetCacheDir(dir string) { s.cacheDir = dir }

func normalizeURL(raw string) (string, error) {
	if raw == "" {
		raw = "./stage"
	}
	if !strings.Contains(raw, "://") {
		raw = "file://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("stage URL %s: %w", Redact(raw), err)
	}
	if u.Scheme != "file" {
		return raw, nil
	}
	path := u.Host + u.Path
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", fmt.Errorf("stage path %s: %w", path, err)
		}
		path = abs
	}
	q := u.Query()
	if q.Get("create_dir") == "" {
		q.Set("create_dir", "true")
	}
	if q.Get("metadata") == "" {
		q.Set("metadata", "skip")
	}
	return "file://" + filepath.ToSlash(path) + "?" + q.Encode(), nil
}

// Redact drops credentials and query parameters from a stage URL for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable stage URL>"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// URL returns the stage URL as given, for display (see Redact).
func (s *Stage) URL() string { return Redact(s.url) }

// IsLocal reports whether the stage is a local folder.
func (s *Stage) IsLocal() bool { return s.root != "" }

// Close releases the bucket.
func (s *Stage) Close() error {
	if s.shared {
		return nil
	}
	return s.bucket.Close()
}

var (
	memMu      sync.Mutex
	memBuckets = map[string]*blob.Bucket{}
)

// openBucket opens the bucket at u. A mem:// URL names one bucket for the whole
// process, so that every step of a run (and a test) sees the same stage.
func openBucket(ctx context.Context, u string) (b *blob.Bucket, shared bool, err error) {
	if !strings.HasPrefix(u, "mem://") {
		b, err = blob.OpenBucket(ctx, u)
		return b, false, err
	}
	memMu.Lock()
	defer memMu.Unlock()
	if b := memBuckets[u]; b != nil {
		return b, true, nil
	}
	b, err = blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, false, err
	}
	memBuckets[u] = b
	return b, true, nil
}

// Write streams an object to key. The object becomes visible only when fn
// returns nil; on error nothing is written.
func (s *Stage) Write(ctx context.Context, key string, fn func(w io.Writer) error) (ObjectInfo, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := s.bucket.NewWriter(wctx, key, nil)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(bw, h)}
	if err := fn(cw); err != nil {
		cancel() // aborts the upload: the object is not created
		_ = bw.Close()
		return ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	if err := bw.Close(); err != nil {
		return ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	return ObjectInfo{Key: key, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// WriteBytes writes data to key.
func (s *Stage) WriteBytes(ctx context.Context, key string, data []byte) (ObjectInfo, error) {
	return s.Write(ctx, key, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteJSON writes v as indented JSON to key.
func (s *Stage) WriteJSON(ctx context.Context, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	_, err = s.WriteBytes(ctx, key, append(data, '\n'))
	return err
}

// ReadJSON decodes the JSON object at key into v. It returns ErrNotFound
// (wrapped) when the key does not exist.
func (s *Stage) ReadJSON(ctx context.Context, key string, v any) error {
	data, err := s.Read(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// Read returns the whole object at key.
func (s *Stage) Read(ctx context.Context, key string) ([]byte, error) {
	data, err := s.bucket.ReadAll(ctx, key)
	if err != nil {
		return nil, s.wrap("read", key, err)
	}
	return data, nil
}

// NewReader opens the object at key for streaming.
func (s *Stage) NewReader(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return nil, s.wrap("read", key, err)
	}
	return r, nil
}

// Exists reports whether key exists.
func (s *Stage) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.bucket.Exists(ctx, key)
	if err != nil {
		return false, s.wrap("stat", key, err)
	}
	return ok, nil
}

// List returns every object under prefix, in key order.
func (s *Stage) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, s.wrap("list", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		out = append(out, ObjectInfo{Key: obj.Key, Size: obj.Size})
	}
	return out, nil
}

// Delete removes key; a missing key is not an error.
func (s *Stage) Delete(ctx context.Context, key string) error {
	err := s.bucket.Delete(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return s.wrap("delete", key, err)
	}
	return nil
}

// LocalPath returns a local file holding the object at key, for engines such as
// DuckDB that read files. A file:// stage returns the file itself; other stages
// copy the object into a cache keyed by key and checksum, so a second call is free.
// When sha256 is non-empty the copy is verified against it.
func (s *Stage) LocalPath(ctx context.Context, key, sha256sum string) (string, error) {
	if s.root != "" {
		return filepath.Join(s.root, filepath.FromSlash(key)), nil
	}
	name := strings.ReplaceAll(key, "/", "__")
	if sha256sum != "" {
		name = sha256sum[:16] + "-" + name
	}
	path := filepath.Join(s.cacheDir, name)
	if _, err := os.Stat(path); err == nil && sha256sum != "" {
		return path, nil
	}
	if err := os.MkdirAll(s.cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("stage cache: %w", err)
	}
	r, err := s.NewReader(ctx, key)
	if err != nil {
		return "", err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(s.cacheDir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("stage cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), r); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copy %s to cache: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("copy %s to cache: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); sha256sum != "" && got != sha256sum {
		return "", fmt.Errorf("copy %s to cache: checksum %s, manifest says %s", key, got, sha256sum)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("copy %s to cache: %w", key, err)
	}
	return path, nil
}

func (s *Stage) wrap(op, key string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("%s %s in stage %s: %w", op, key, s.URL(), err)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var _ io.Writer = (*countingWriter)(nil)

// IsAccessDenied reports whether err is the bucket refusing our credentials,
// or the cloud SDK finding none: a setting to fix, not an outage. The AWS SDK
// gives a missing identity no type of its own, only its "get identity" step.
func IsAccessDenied(err error) bool {
	if err == nil {
		return false
	}
	if gcerrors.Code(err) == gcerrors.PermissionDenied {
		return true
	}
	var oe *smithy.OperationError
	return errors.As(err, &oe) && oe.Err != nil && strings.HasPrefix(oe.Err.Error(), "get identity:")
}
