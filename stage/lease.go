package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// One writer per stage. The lease is a series of generation-numbered records
// under LeasePrefix; the highest generation is the current one. A writer takes
// the lease by creating the next generation with a create-if-absent write, so
// of two contenders exactly one succeeds; it renews by rewriting its own
// record, and gives the lease back by rewriting it as released. A holder whose
// record has a successor, or whose expiry has passed, has lost the lease, and
// the stage then refuses its writes. See docs/design.md, "Lease".

// LeasePrefix holds the lease records, one object per generation.
const LeasePrefix = "state/lease/"

// DefaultLeaseTTL is how long a lease lives without renewal: the longest a
// killed holder keeps the stage from other writers.
const DefaultLeaseTTL = 3 * time.Minute

// leaseGenerationsKept is how many of the latest records acquisition keeps;
// older ones are deleted.
const leaseGenerationsKept = 3

func leaseKey(gen int64) string { return fmt.Sprintf("%s%012d.json", LeasePrefix, gen) }

// leaseGeneration returns the generation a lease record's key names.
func leaseGeneration(key string) (int64, bool) {
	name, ok := strings.CutPrefix(key, LeasePrefix)
	if !ok {
		return 0, false
	}
	name, ok = strings.CutSuffix(name, ".json")
	if !ok || len(name) != 12 {
		return 0, false
	}
	gen, err := strconv.ParseInt(name, 10, 64)
	return gen, err == nil && gen > 0
}

// Holder names the process behind a lease record.
type Holder struct {
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	RunID   string `json:"run_id,omitempty"`
	Command string `json:"command,omitempty"`
}

func (h Holder) String() string {
	s := h.Command
	if s == "" {
		s = "a writer"
	}
	if h.RunID != "" {
		s += " " + h.RunID
	}
	return fmt.Sprintf("%s (pid %d on host %s)", s, h.PID, h.Host)
}

// LeaseRecord is one generation of the stage's lease.
type LeaseRecord struct {
	Generation int64     `json:"generation"`
	Holder     Holder    `json:"holder"`
	Token      string    `json:"token"` // random, tells two records of one holder apart
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	TTL        string    `json:"ttl"`
	// ReleasedAt is set when the holder gave the lease back, or from the start
	// on the record of a break.
	ReleasedAt *time.Time `json:"released_at,omitempty"`
	// TookOver names the holder of the expired generation this one replaced.
	TookOver *Holder `json:"took_over,omitempty"`
	// Broke names the holder whose lease this record (of `lease break`) ended.
	Broke *Holder `json:"broke,omitempty"`
}

// Live reports whether the record holds the stage at now: not released, not expired.
func (r LeaseRecord) Live(now time.Time) bool { return r.ReleasedAt == nil && now.Before(r.ExpiresAt) }

// LeaseHeldError is returned by AcquireLease when another writer holds the stage.
type LeaseHeldError struct {
	Stage    string // redacted URL, for messages
	StageURL string // the URL as given without credentials, for commands that name the stage
	Lease    LeaseRecord
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("another writer holds the stage %s: %s, since %s, lease expires %s unless renewed",
		e.Stage, e.Lease.Holder, e.Lease.AcquiredAt.UTC().Format(time.RFC3339), e.Lease.ExpiresAt.UTC().Format(time.RFC3339))
}

// LeaseLostError is what every write returns once the lease this process held
// is lost: it expired before it could be renewed, or another process took over
// or broke it. Nothing more is written.
type LeaseLostError struct {
	Stage    string      // redacted URL, for messages
	StageURL string      // the URL as given without credentials, for commands that name the stage
	Lease    LeaseRecord // this process's record as last written
	Reason   string
	// Successor is the record that replaced this process's, when there is one.
	Successor *LeaseRecord
}

func (e *LeaseLostError) Error() string {
	return fmt.Sprintf("this process lost the lease of stage %s (%s): it writes nothing more", e.Stage, e.Reason)
}

// ErrLeaseChanged is returned by BreakLease when the generation to break is no
// longer the current one.
var ErrLeaseChanged = errors.New("the stage's lease changed hands meanwhile")

// LeaseOptions configures AcquireLease.
type LeaseOptions struct {
	TTL    time.Duration // default DefaultLeaseTTL
	Holder Holder        // Host and PID default to this process's
	Logger *slog.Logger
	Now    func() time.Time // the clock expiry is computed with; default time.Now
}

// Lease is the stage's lease held by this process. While it is held, the
// stage it came from refuses writes once it is lost.
type Lease struct {
	st     *Stage
	ttl    time.Duration
	margin time.Duration // the holder stops this long before its expiry: the clock skew tolerated
	now    func() time.Time
	log    *slog.Logger

	mu         sync.Mutex
	rec        LeaseRecord
	validUntil time.Time
	lost       *LeaseLostError

	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

// AcquireLease takes the stage's lease for this process, or returns a
// *LeaseHeldError naming the live holder. It takes over a lease that expired.
// The lease is renewed in the background until Release; every write of the
// stage checks it first.
func (s *Stage) AcquireLease(ctx context.Context, opts LeaseOptions) (*Lease, error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	if s.lease.Load() != nil {
		return nil, errors.New("acquire the stage's lease: this stage already holds it")
	}
	opts = opts.withDefaults()
	for attempt := 0; attempt < 10; attempt++ {
		cur, found, err := s.CurrentLease(ctx)
		if err != nil {
			return nil, fmt.Errorf("acquire the stage's lease: %w", err)
		}
		now := opts.Now()
		if found && cur.Live(now) {
			return nil, &LeaseHeldError{Stage: s.URL(), StageURL: s.CommandURL(), Lease: cur}
		}
		rec := LeaseRecord{Generation: cur.Generation + 1, Holder: opts.Holder, Token: newToken(),
			AcquiredAt: now.UTC(), RenewedAt: now.UTC(), ExpiresAt: now.Add(opts.TTL).UTC(), TTL: opts.TTL.String()}
		if found && cur.ReleasedAt == nil {
			rec.TookOver = &cur.Holder
		}
		data, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return nil, err
		}
		created, err := s.createIfAbsent(ctx, leaseKey(rec.Generation), data)
		if err != nil {
			return nil, fmt.Errorf("acquire the stage's lease: %w", err)
		}
		if !created {
			continue // another contender took this generation: look again
		}
		l := &Lease{st: s, ttl: opts.TTL, margin: opts.TTL / 4, now: opts.Now, log: opts.Logger,
			rec: rec, validUntil: now.Add(opts.TTL - opts.TTL/4), stop: make(chan struct{}), stopped: make(chan struct{})}
		if err := s.verifyConditionalWrites(ctx, rec.Generation, data); err != nil {
			_ = l.writeReleased(ctx)
			return nil, err
		}
		if rec.TookOver != nil {
			l.log.Warn("took over an expired lease of the stage", "stage", s.URL(), "previous_holder", rec.TookOver.String(),
				"previous_run_id", rec.TookOver.RunID, "expired_at", cur.ExpiresAt)
		}
		s.lease.Store(l)
		go l.renewLoop()
		s.pruneLeases(ctx, rec.Generation)
		return l, nil
	}
	return nil, errors.New("acquire the stage's lease: other writers kept taking it first; try again")
}

func (o LeaseOptions) withDefaults() LeaseOptions {
	if o.TTL <= 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.Holder.Host == "" {
		o.Holder.Host, _ = os.Hostname()
	}
	if o.Holder.PID == 0 {
		o.Holder.PID = os.Getpid()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CurrentLease returns the highest lease record, found=false when the stage
// never had one. The record may be released or expired: see Live.
func (s *Stage) CurrentLease(ctx context.Context) (rec LeaseRecord, found bool, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		gens, err := s.leaseGenerations(ctx)
		if err != nil || len(gens) == 0 {
			return LeaseRecord{}, false, err
		}
		top := gens[len(gens)-1]
		err = s.ReadJSON(ctx, leaseKey(top), &rec)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between the listing and the read (a wiped stage): list again
		}
		if err != nil {
			return LeaseRecord{}, false, fmt.Errorf("lease record %s: %w", leaseKey(top), err)
		}
		rec.Generation = top
		return rec, true, nil
	}
	return LeaseRecord{}, false, errors.New("the lease records keep disappearing while being read")
}

// leaseGenerations lists the generations of the lease records, ascending.
func (s *Stage) leaseGenerations(ctx context.Context) ([]int64, error) {
	objs, err := s.List(ctx, LeasePrefix)
	if err != nil {
		return nil, err
	}
	var gens []int64
	for _, o := range objs {
		if g, ok := leaseGeneration(o.Key); ok {
			gens = append(gens, g)
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	return gens, nil
}

// BreakLease ends generation gen, which must be the current lease record, by
// writing the next generation as a released record that names its holder.
// The stage is free at once; if that holder still runs, it finds its lease
// lost and stops before its next write. It returns ErrLeaseChanged when gen is
// no longer current.
func (s *Stage) BreakLease(ctx context.Context, gen int64, by Holder) (LeaseRecord, error) {
	if s.readOnly {
		return LeaseRecord{}, ErrReadOnly
	}
	cur, found, err := s.CurrentLease(ctx)
	if err != nil {
		return LeaseRecord{}, fmt.Errorf("break the stage's lease: %w", err)
	}
	if !found || cur.Generation != gen {
		return LeaseRecord{}, ErrLeaseChanged
	}
	by = LeaseOptions{Holder: by}.withDefaults().Holder
	now := time.Now().UTC()
	rec := LeaseRecord{Generation: gen + 1, Holder: by, Token: newToken(), AcquiredAt: now, RenewedAt: now,
		ExpiresAt: now, ReleasedAt: &now, Broke: &cur.Holder}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return LeaseRecord{}, err
	}
	created, err := s.createIfAbsent(ctx, leaseKey(rec.Generation), data)
	if err != nil {
		return LeaseRecord{}, fmt.Errorf("break the stage's lease: %w", err)
	}
	if !created {
		return LeaseRecord{}, ErrLeaseChanged
	}
	return cur, nil
}

// createIfAbsent writes data to key unless key exists, atomically: of several
// concurrent callers exactly one gets created=true. fileblob's IfNotExist
// checks and renames in two steps, so a file:// stage links a complete temp
// file to its name instead, which the filesystem refuses when the name exists.
func (s *Stage) createIfAbsent(ctx context.Context, key string, data []byte) (created bool, err error) {
	if s.root != "" {
		path := filepath.Join(s.root, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
			return false, fmt.Errorf("create %s: %w", key, err)
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*"+tempSuffix)
		if err != nil {
			return false, fmt.Errorf("create %s: %w", key, err)
		}
		defer os.Remove(tmp.Name())
		_, err = tmp.Write(data)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Link(tmp.Name(), path)
		}
		switch {
		case errors.Is(err, fs.ErrExist):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("create %s: %w", key, err)
		}
		return true, nil
	}
	b, err := s.bucketFor(ctx, true)
	if err != nil {
		return false, err
	}
	w, err := b.NewWriter(ctx, key, &blob.WriterOptions{IfNotExist: true, ContentType: "application/json"})
	if err != nil {
		return false, s.wrap("create", key, err)
	}
	_, werr := w.Write(data)
	err = w.Close()
	switch {
	case werr != nil:
		return false, s.wrap("create", key, werr)
	case gcerrors.Code(err) == gcerrors.FailedPrecondition:
		return false, nil
	case err != nil:
		return false, s.wrap("create", key, err)
	}
	return true, nil
}

// verifyConditionalWrites checks, right after this process created lease
// generation gen, that the store refuses to create it again. An S3-compatible
// server that ignores If-None-Match would let two writers both "win"; such a
// stage cannot have a lease, and saying so beats trusting it.
func (s *Stage) verifyConditionalWrites(ctx context.Context, gen int64, data []byte) error {
	if s.root != "" || s.shared {
		return nil // a hard link and memblob's lock are exclusive by construction
	}
	again, err := s.createIfAbsent(ctx, leaseKey(gen), data)
	if err != nil {
		return fmt.Errorf("acquire the stage's lease: %w", err)
	}
	if again {
		return fmt.Errorf("the stage %s does not honour conditional writes (a create-if-absent of an existing object succeeded): "+
			"two writers could both take its lease; use a store that supports them (S3 If-None-Match, GCS, Azure)", s.URL())
	}
	return nil
}

// pruneLeases deletes lease records older than the few latest; a failure is
// harmless (the next acquisition tries again) and only logged.
func (s *Stage) pruneLeases(ctx context.Context, current int64) {
	gens, err := s.leaseGenerations(ctx)
	if err != nil {
		return
	}
	b, err := s.bucketFor(ctx, true)
	if err != nil {
		return
	}
	for _, g := range gens {
		if g > current-leaseGenerationsKept {
			break
		}
		if err := b.Delete(ctx, leaseKey(g)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return
		}
	}
}

// Record returns this process's lease record as last written.
func (l *Lease) Record() LeaseRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec
}

// Err returns the *LeaseLostError once the lease is lost, else nil.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		return nil
	}
	return l.lost
}

// check is what every write of the stage asks first: the lease is still held
// by the local clock, and no later generation exists.
func (l *Lease) check(ctx context.Context) error {
	l.mu.Lock()
	lost, valid := l.lost, l.validUntil
	l.mu.Unlock()
	if lost != nil {
		return lost
	}
	if !l.now().Before(valid) {
		return l.lose(fmt.Sprintf("it was not renewed in time and expires at %s", l.Record().ExpiresAt.Format(time.RFC3339)), nil)
	}
	return l.checkSuccessor(ctx)
}

// checkSuccessor loses the lease when the next generation exists.
func (l *Lease) checkSuccessor(ctx context.Context) error {
	gen := l.Record().Generation
	b, err := l.st.bucketFor(ctx, false)
	if err != nil {
		return fmt.Errorf("check the stage's lease: %w", err)
	}
	var ok bool
	if b != nil {
		if ok, err = b.Exists(ctx, leaseKey(gen+1)); err != nil {
			return fmt.Errorf("check the stage's lease: %w", err)
		}
	}
	if !ok {
		if b == nil {
			return l.lose("its record is gone: the stage folder was removed", nil)
		}
		return nil
	}
	var next LeaseRecord
	reason := "another writer took it over"
	if err := l.st.ReadJSON(ctx, leaseKey(gen+1), &next); err == nil {
		next.Generation = gen + 1
		if next.Broke != nil {
			reason = "it was broken by " + next.Holder.String()
		} else {
			reason = "it was taken over by " + next.Holder.String()
		}
		return l.lose(reason, &next)
	}
	return l.lose(reason, nil)
}

// lose records that the lease is lost (the first reason wins) and returns the error.
func (l *Lease) lose(reason string, successor *LeaseRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = &LeaseLostError{Stage: l.st.URL(), StageURL: l.st.CommandURL(), Lease: l.rec, Reason: reason, Successor: successor}
		l.log.Error("lost the stage's lease: no more writes", "stage", l.st.URL(), "reason", reason, "generation", l.rec.Generation)
	}
	return l.lost
}

func (l *Lease) renewLoop() {
	defer close(l.stopped)
	t := time.NewTicker(max(l.ttl/3, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if l.Err() != nil {
				return
			}
			l.renew()
		}
	}
}

// renew pushes the expiry forward by a TTL from now. A renewal that completes
// after the holder's own deadline does not count: another writer may already
// have taken over.
func (l *Lease) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), max(l.ttl/3, time.Second))
	defer cancel()
	if l.check(ctx) != nil {
		return
	}
	start := l.now()
	rec := l.Record()
	rec.RenewedAt, rec.ExpiresAt = start.UTC(), start.Add(l.ttl).UTC()
	if err := l.st.overwrite(ctx, leaseKey(rec.Generation), rec); err != nil {
		l.log.Warn("could not renew the stage's lease; trying again", "stage", l.st.URL(), "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil && l.now().Before(l.validUntil) {
		l.rec, l.validUntil = rec, start.Add(l.ttl-l.margin)
	}
}

// Release stops the renewals and gives the lease back, so that the next writer
// need not wait for it to expire. Releasing a lost lease writes nothing.
func (l *Lease) Release(ctx context.Context) error {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.stopped
	l.st.lease.CompareAndSwap(l, nil)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if l.Err() != nil {
		return nil // someone else's now
	}
	if err := l.checkSuccessor(ctx); err != nil {
		if l.Err() != nil {
			return nil
		}
		return fmt.Errorf("release the stage's lease (it expires by itself at %s): %w", l.Record().ExpiresAt.Format(time.RFC3339), err)
	}
	if err := l.writeReleased(ctx); err != nil {
		return fmt.Errorf("release the stage's lease (it expires by itself at %s): %w", l.Record().ExpiresAt.Format(time.RFC3339), err)
	}
	return nil
}

func (l *Lease) writeReleased(ctx context.Context) error {
	rec := l.Record()
	now := l.now().UTC()
	rec.ReleasedAt = &now
	return l.st.overwrite(ctx, leaseKey(rec.Generation), rec)
}

// overwrite writes v as JSON to key without the write checks: the lease's own
// records.
func (s *Stage) overwrite(ctx context.Context, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b, err := s.bucketFor(ctx, true)
	if err != nil {
		return err
	}
	if err := b.WriteAll(ctx, key, append(data, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return s.wrap("write", key, err)
	}
	return nil
}
