// Package logctx carries log fields in a context, so that every line logged
// with that context says, for instance, which window it belongs to, whichever
// package logs it.
package logctx

import (
	"context"
	"log/slog"
	"time"
)

type key struct{}

// With returns ctx carrying args (slog key-value pairs or attributes) besides
// those ctx carries already.
func With(ctx context.Context, args ...any) context.Context {
	prev, _ := ctx.Value(key{}).([]slog.Attr)
	r := slog.NewRecord(timeZero, 0, "", 0)
	r.Add(args...)
	attrs := append([]slog.Attr(nil), prev...)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	return context.WithValue(ctx, key{}, attrs)
}

// Handler adds the fields of each record's context to the record, unless the
// record has a field of that name already.
func Handler(h slog.Handler) slog.Handler { return handler{next: h} }

type handler struct {
	next  slog.Handler
	given map[string]bool // fields the logger was given with With
	group bool            // WithGroup was called: context fields would land in the group
}

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if len(h.given) > 0 {
		r = h.withoutGiven(r)
	}
	if attrs, ok := ctx.Value(key{}).([]slog.Attr); ok && len(attrs) > 0 && !h.group {
		have := map[string]bool{}
		for k := range h.given {
			have[k] = true
		}
		r.Attrs(func(a slog.Attr) bool { have[a.Key] = true; return true })
		for _, a := range attrs {
			if !have[a.Key] {
				r.AddAttrs(a)
			}
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs adds attrs to the logger, leaving out a field the logger has
// already: a package that adds the run id to a logger that says it already
// does not make it appear twice on a line.
func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	given := make(map[string]bool, len(h.given)+len(attrs))
	for k := range h.given {
		given[k] = true
	}
	var fresh []slog.Attr
	for _, a := range attrs {
		if h.group || !given[a.Key] {
			fresh = append(fresh, a)
		}
		given[a.Key] = true
	}
	return handler{next: h.next.WithAttrs(fresh), given: given, group: h.group}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{next: h.next.WithGroup(name), given: h.given, group: true}
}

var timeZero = time.Time{}

// withoutGiven drops from r the fields the logger says already.
func (h handler) withoutGiven(r slog.Record) slog.Record {
	dup := false
	r.Attrs(func(a slog.Attr) bool {
		dup = h.given[a.Key]
		return !dup
	})
	if !dup || h.group {
		return r
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !h.given[a.Key] {
			out.AddAttrs(a)
		}
		return true
	})
	return out
}
