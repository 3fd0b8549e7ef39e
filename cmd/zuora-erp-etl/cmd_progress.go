package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/pipeline"
	"github.com/zuora-erp-etl/zuora-erp-etl/stage"
)

// progress is how a command shows a run's progress: bars on a terminal, a
// log line every --progress-interval elsewhere.
type progress interface {
	pipeline.Progress
	startRun(runID string, log *slog.Logger)
	io.Closer
}

// newProgress picks the progress for the command's stderr: bars when it is
// a terminal, log lines when it is not (unless --progress-interval is 0).
func (s *settings) newProgress(e *env) progress {
	if s.fs.Lookup("progress-interval") == nil {
		return nil
	}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p := &barProgress{out: f, bars: map[progressKey]*bar{}}
		s.closers = append(s.closers, p)
		return p
	}
	if s.ops.progressInterval <= 0 {
		return nil
	}
	p := newLogProgress(s.ops.progressInterval)
	s.closers = append(s.closers, p)
	return p
}

// progressKey names one line of progress: a raw table fetched or a document
// type posted, of one window.
type progressKey struct {
	window, step, name string
}

// item is one line's figures.
type item struct {
	started        time.Time
	pages, records int64 // extract
	done, total    int64 // load
}

// barProgress draws a bar per raw table fetched (pages, records, rate) and
// per document type posted (done of total, rate, ETA), a container per window.
type barProgress struct {
	out io.Writer

	mu        sync.Mutex
	container *mpb.Progress
	bars      map[progressKey]*bar
}

// bar is one drawn line. Its figures are atomics: mpb's render loop reads
// them in the decorators while a caller holding barProgress.mu may be
// waiting on that loop to add a bar (container.New), so a decorator must
// never take the lock.
type bar struct {
	b                           *mpb.Bar
	started                     time.Time
	pages, records, done, total atomic.Int64
	spinner                     bool
}

// snapshot is the bar's figures as an item.
func (b *bar) snapshot() item {
	return item{started: b.started, pages: b.pages.Load(), records: b.records.Load(), done: b.done.Load(), total: b.total.Load()}
}

func (p *barProgress) startRun(string, *slog.Logger) {}

func (p *barProgress) line(k progressKey, total int64) *bar {
	if b := p.bars[k]; b != nil {
		return b
	}
	if p.container == nil {
		p.container = mpb.New(mpb.WithOutput(p.out), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	}
	b := &bar{started: time.Now()}
	label := decor.Name(fmt.Sprintf("%s %s %-18s", k.window, k.step, k.name), decor.WCSyncSpaceR)
	if k.step == "fetch" {
		b.spinner = true
		b.b = p.container.New(0, mpb.SpinnerStyle(), mpb.PrependDecorators(label),
			mpb.AppendDecorators(
				decor.Any(func(decor.Statistics) string {
					it := b.snapshot()
					return fmt.Sprintf("%d pages, %d records  %.1f records/s", it.pages, it.records, rate(it.records, time.Since(it.started).Seconds()))
				}, decor.WCSyncSpace)))
	} else {
		b.b = p.container.New(total, mpb.BarStyle(), mpb.PrependDecorators(label),
			mpb.AppendDecorators(
				decor.Any(func(decor.Statistics) string { return postFigures(b.snapshot()) }, decor.WCSyncSpace)))
	}
	p.bars[k] = b
	return b
}

func (p *barProgress) Fetched(w stage.Window, table string, pages, records int64) {
	p.mu.Lock()
	b := p.line(progressKey{w.ID(), "fetch", table}, 0)
	p.mu.Unlock()
	b.pages.Add(pages)
	b.records.Add(records)
	b.b.IncrInt64(records)
}

func (p *barProgress) Posted(w stage.Window, docType stage.DocType, done, total int64) {
	p.mu.Lock()
	b := p.line(progressKey{w.ID(), "post", string(docType)}, total)
	p.mu.Unlock()
	b.done.Store(done)
	b.total.Store(total)
	b.b.SetCurrent(done)
}

// WindowDone completes the window's bars and lets the container finish drawing.
func (p *barProgress) WindowDone(stage.Window) { p.finish() }

func (p *barProgress) finish() {
	p.mu.Lock()
	c, bars := p.container, p.bars
	p.container, p.bars = nil, map[progressKey]*bar{}
	p.mu.Unlock()
	if c == nil {
		return
	}
	for _, b := range bars {
		switch {
		case b.spinner:
			b.b.SetTotal(-1, true)
		case !b.b.Completed():
			b.b.Abort(false) // stopped before every document was posted
		}
	}
	c.Wait()
}

func (p *barProgress) Close() error { p.finish(); return nil }

// logProgress logs, every interval, one line per table being fetched and per
// document type being posted, with the same figures the bars show.
type logProgress struct {
	every time.Duration
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	log   *slog.Logger
	items map[progressKey]*item
	order []progressKey
}

func newLogProgress(every time.Duration) *logProgress {
	p := &logProgress{every: every, stop: make(chan struct{}), done: make(chan struct{}), items: map[progressKey]*item{},
		log: slog.New(slog.DiscardHandler)}
	go p.loop()
	return p
}

func (p *logProgress) startRun(_ string, log *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = log
}

func (p *logProgress) get(k progressKey) *item {
	it := p.items[k]
	if it == nil {
		it = &item{started: time.Now()}
		p.items[k] = it
		p.order = append(p.order, k)
	}
	return it
}

func (p *logProgress) Fetched(w stage.Window, table string, pages, records int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	it := p.get(progressKey{w.ID(), "fetch", table})
	it.pages += pages
	it.records += records
}

func (p *logProgress) Posted(w stage.Window, docType stage.DocType, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	it := p.get(progressKey{w.ID(), "post", string(docType)})
	it.done, it.total = done, total
}

func (p *logProgress) WindowDone(w stage.Window) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := p.order[:0]
	for _, k := range p.order {
		if k.window == w.ID() {
			delete(p.items, k)
			continue
		}
		keep = append(keep, k)
	}
	p.order = keep
}

func (p *logProgress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.report()
		}
	}
}

// report logs the figures of every line in progress.
func (p *logProgress) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.order {
		it := p.items[k]
		secs := time.Since(it.started).Seconds()
		if k.step == "fetch" {
			p.log.Info("progress: fetching", "window", k.window, "table", k.name, "pages", it.pages, "records", it.records,
				"records_per_second", rate(it.records, secs))
			continue
		}
		attrs := []any{"window", k.window, "doc_type", k.name, "posted", it.done, "total", it.total, "documents_per_second", rate(it.done, secs)}
		if it.done > 0 && it.done < it.total {
			attrs = append(attrs, "eta", eta(*it).String())
		}
		p.log.Info("progress: posting", attrs...)
	}
}

// postFigures says how far one type's posts are: done of total, the rate and
// the time left at that rate.
func postFigures(it item) string {
	secs := time.Since(it.started).Seconds()
	r := rate(it.done, secs)
	out := fmt.Sprintf("%d / %d posted  %.1f docs/s", it.done, it.total, r)
	switch {
	case it.done >= it.total:
		return out + "  done"
	case r > 0:
		return out + "  ETA " + eta(it).String()
	}
	return out
}

// eta is the time left to post the rest at the rate so far.
func eta(it item) time.Duration {
	secs := time.Since(it.started).Seconds()
	if it.done <= 0 || secs <= 0 {
		return 0
	}
	return time.Duration(float64(it.total-it.done) / (float64(it.done) / secs) * float64(time.Second)).Round(time.Second)
}

func rate(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(int64(float64(n)/secs*10)) / 10
}

func (p *logProgress) Close() error {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	return nil
}
