// Package stage is the pipeline's durable store: raw Parquet snapshots, ERP-ready
// documents, the load ledger, manifests and the high water, all in one
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
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

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
	url      string
	openURL  string // the normalized URL the bucket is opened with
	root     string // the folder of a file:// stage, else ""
	shared   bool   // a process-wide mem:// bucket, not closed by Close
	readOnly bool
	cacheDir string
	lease    atomic.Pointer[Lease] // the lease this process holds, if any

	mu     sync.Mutex
	bucket *blob.Bucket // nil until a file:// stage's folder exists
}

// ObjectInfo describes one object written to or listed in the stage.
type ObjectInfo struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("not found in stage")

// NoStageError says that there is no stage at a location: a read-only command
// was pointed at a folder or bucket that does not exist (a typo, most often).
type NoStageError struct {
	URL string // redacted
	Why string
}

func (e *NoStageError) Error() string { return fmt.Sprintf("no stage at %s (%s)", e.URL, e.Why) }

// ErrReadOnly is returned by writes to a stage opened with ReadOnly.
var ErrReadOnly = errors.New("the stage is open read-only")

// OpenOption changes how Open treats the stage.
type OpenOption func(*Stage)

// ReadOnly opens a stage that must already exist, for reading only: Open
// returns a *NoStageError when there is none, and every write is refused.
func ReadOnly() OpenOption { return func(s *Stage) { s.readOnly = true } }

// Open opens the stage at rawURL. A bare path or a relative file:// URL is taken
// relative to the working directory. Opening creates nothing: a file:// stage's
// folder is created by the first write into it.
func Open(ctx context.Context, rawURL string, opts ...OpenOption) (*Stage, error) {
	u, err := normalizeURL(rawURL)
	if err != nil {
		return nil, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	s := &Stage{url: rawURL, openURL: u, cacheDir: filepath.Join(cache, "zuora-erp-etl")}
	for _, o := range opts {
		o(s)
	}
	if p, err := url.Parse(u); err == nil && p.Scheme == "file" {
		s.root = filepath.FromSlash(p.Path)
		return s, s.openFolder(ctx)
	}
	if strings.HasPrefix(u, "mem://") && s.readOnly && !memExists(u) {
		return nil, &NoStageError{URL: Redact(rawURL), Why: "nothing was written to this mem:// stage in this process"}
	}
	b, shared, err := openBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open stage %s: %w", Redact(rawURL), err)
	}
	s.bucket, s.shared = b, shared
	if s.readOnly && !shared {
		ok, err := b.IsAccessible(ctx)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("open stage %s: %w", Redact(rawURL), err)
		}
		if !ok {
			b.Close()
			return nil, &NoStageError{URL: Redact(rawURL), Why: "the bucket does not exist"}
		}
	}
	return s, nil
}

// openFolder opens a file:// stage whose folder exists; a missing folder is
// refused when the stage is read-only, and otherwise left for the first write.
func (s *Stage) openFolder(ctx context.Context) error {
	fi, err := os.Stat(s.root)
	switch {
	case errors.Is(err, fs.ErrNotExist) && s.readOnly:
		return &NoStageError{URL: s.URL(), Why: "the folder does not exist; a writing command such as run creates it"}
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("open stage %s: %w", s.URL(), err)
	case !fi.IsDir():
		return fmt.Errorf("open stage %s: %s is not a folder", s.URL(), s.root)
	}
	_, err = s.bucketFor(ctx, false)
	return err
}

// bucketFor returns the bucket. A file:// stage's folder is created by the
// first write; before that, reads get a nil bucket and see an empty stage.
func (s *Stage) bucketFor(ctx context.Context, write bool) (*blob.Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bucket != nil {
		return s.bucket, nil
	}
	if !write {
		if _, err := os.Stat(s.root); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	} else if err := os.MkdirAll(s.root, 0o777); err != nil {
		return nil, fmt.Errorf("create the stage folder: %w", err)
	}
	b, err := blob.OpenBucket(ctx, s.openURL)
	if err != nil {
		return nil, fmt.Errorf("open stage %s: %w", s.URL(), err)
	}
	s.bucket = b
	return b, nil
}

// writable reports why the stage refuses a write, if it does: it is read-only,
// or the lease this process held is lost.
func (s *Stage) writable(ctx context.Context) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if l := s.lease.Load(); l != nil {
		return l.check(ctx)
	}
	return nil
}

// OpenBucket wraps an already open bucket (tests use it for in-process S3 servers).
func OpenBucket(b *blob.Bucket, name string) *Stage {
	return &Stage{bucket: b, url: name, openURL: name, cacheDir: filepath.Join(os.TempDir(), "zuora-erp-etl-cache")}
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
	if q.Get("no_tmp_dir") == "" {
		// Temp files beside their target: a rename from the system temp
		// folder fails when the stage is on another filesystem.
		q.Set("no_tmp_dir", "true")
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

// CommandURL returns the stage URL as given without credentials, for a
// command line that must reach the same stage (query parameters such as an
// S3 endpoint or region are kept).
func (s *Stage) CommandURL() string {
	u, err := url.Parse(s.url)
	if err != nil {
		return s.URL()
	}
	u.User = nil
	return u.String()
}

// IsLocal reports whether the stage is a local folder.
func (s *Stage) IsLocal() bool { return s.root != "" }

// Close releases the bucket.
func (s *Stage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared || s.bucket == nil {
		return nil
	}
	return s.bucket.Close()
}

var (
	memMu      sync.Mutex
	memBuckets = map[string]*blob.Bucket{}
)

func memExists(u string) bool {
	memMu.Lock()
	defer memMu.Unlock()
	return memBuckets[u] != nil
}

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

// Writer streams one object into the stage. Nothing is visible until Close
// succeeds; Abort, a failed Close or a cancelled context discards it, and the
// key keeps what it held before. Take it with NewWriter; defer Abort right
// away, as it does nothing once the object is committed.
type Writer struct {
	key    string
	bw     *blob.Writer
	cancel context.CancelFunc
	h      hash.Hash
	n      int64
	done   bool
	info   ObjectInfo
}

// NewWriter opens key for writing. Like every write, it is refused once the
// lease this process held is lost, or when the stage is read-only.
func (s *Stage) NewWriter(ctx context.Context, key string) (*Writer, error) {
	if err := s.writable(ctx); err != nil {
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	b, err := s.bucketFor(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	bw, err := b.NewWriter(wctx, key, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("write %s: %w", key, err)
	}
	return &Writer{key: key, bw: bw, cancel: cancel, h: sha256.New()}, nil
}

// Write appends p to the object.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: the writer is closed", w.key)
	}
	n, err := w.bw.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Close commits the object; Info then describes it.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.cancel()
	if err := w.bw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", w.key, err)
	}
	w.info = ObjectInfo{Key: w.key, Size: w.n, SHA256: hex.EncodeToString(w.h.Sum(nil))}
	return nil
}

// Abort discards the object unless Close committed it already.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.cancel() // cancelled before Close: the object is not created
	_ = w.bw.Close()
}

// Info describes the object Close committed.
func (w *Writer) Info() ObjectInfo { return w.info }

var _ io.WriteCloser = (*Writer)(nil)

// WriteBytes writes data to key.
func (s *Stage) WriteBytes(ctx context.Context, key string, data []byte) (ObjectInfo, error) {
	w, err := s.NewWriter(ctx, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return ObjectInfo{}, fmt.Errorf("write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return ObjectInfo{}, err
	}
	return w.Info(), nil
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
	b, err := s.bucketFor(ctx, false)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("read %s: %w", key, ErrNotFound)
	}
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		return nil, s.wrap("read", key, err)
	}
	return data, nil
}

// NewReader opens the object at key for streaming.
func (s *Stage) NewReader(ctx context.Context, key string) (io.ReadCloser, error) {
	b, err := s.bucketFor(ctx, false)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("read %s: %w", key, ErrNotFound)
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, s.wrap("read", key, err)
	}
	return r, nil
}

// Exists reports whether key exists.
func (s *Stage) Exists(ctx context.Context, key string) (bool, error) {
	b, err := s.bucketFor(ctx, false)
	if err != nil || b == nil {
		return false, err
	}
	ok, err := b.Exists(ctx, key)
	if err != nil {
		return false, s.wrap("stat", key, err)
	}
	return ok, nil
}

// List returns every object under prefix, in key order.
func (s *Stage) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	b, err := s.bucketFor(ctx, false)
	if err != nil || b == nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		out, err := s.list(ctx, b, prefix)
		// fileblob fails a listing when a file vanishes while it walks the
		// folder (a temp file renamed into place, a deleted object): walk again.
		if err != nil && s.root != "" && gcerrors.Code(err) == gcerrors.NotFound && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, s.wrap("list", prefix, err)
		}
		return out, nil
	}
}

func (s *Stage) list(ctx context.Context, b *blob.Bucket, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if obj.IsDir || s.root != "" && strings.HasSuffix(obj.Key, tempSuffix) {
			continue // a write in progress (or one a killed process left) in a file:// stage
		}
		out = append(out, ObjectInfo{Key: obj.Key, Size: obj.Size})
	}
}

// tempSuffix ends the names of the temp files a file:// stage writes beside
// their target; no stage key ends with it.
const tempSuffix = ".tmp"

// Delete removes key; a missing key is not an error.
func (s *Stage) Delete(ctx context.Context, key string) error {
	if err := s.writable(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	b, err := s.bucketFor(ctx, false)
	if err != nil || b == nil {
		return err
	}
	err = b.Delete(ctx, key)
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
