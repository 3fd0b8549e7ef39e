package stage

import (
	"fmt"
	"time"
)

// Stage keys are a pure function of the data they hold: re-running a step writes
// the same keys, and only a manifest makes them visible to readers.

// RawKey is where the extract writes part n of a raw table for a window.
func RawKey(table string, w Window, part int) string {
	return fmt.Sprintf("raw/entity=%s/window=%s/part-%05d.parquet", table, w.ID(), part)
}

// ReadyKey is where the transform writes one of its outputs for a window:
// kind is "documents", "rejects" or "skipped"; ext is "parquet" or "ndjson".
func ReadyKey(kind string, w Window, ext string) string {
	return fmt.Sprintf("ready/%s/window=%s/part-00000.%s", kind, w.ID(), ext)
}

// ledgerRoot holds the ledger parts of every window.
const ledgerRoot = "ledger/"

// LedgerPrefix holds every ledger part of a window.
func LedgerPrefix(w Window) string {
	return fmt.Sprintf("%swindow=%s/", ledgerRoot, w.ID())
}

// LedgerKey names one append-only ledger part. Parts are never rewritten; the
// name sorts in write order and is unique per run and sequence number.
func LedgerKey(w Window, at time.Time, runID string, seq int) string {
	return fmt.Sprintf("%spart-%s-%s-%06d.parquet", LedgerPrefix(w), at.UTC().Format("20060102T150405.000000000Z"), runID, seq)
}

// ManifestKey is the commit point of a step ("extract", "transform" or "load") for a window.
func ManifestKey(step string, w Window) string {
	return fmt.Sprintf("manifests/window=%s/%s.json", w.ID(), step)
}

// LoadCompleteKey records that a window's load is complete, so that finding
// the unfinished windows takes one listing instead of a read per window. It is
// written after the load manifest that says so, and deleted before anything
// that could make the window unfinished again.
func LoadCompleteKey(w Window) string {
	return fmt.Sprintf("manifests/window=%s/load-complete", w.ID())
}

// ManifestPrefix lists the manifests of every window.
const ManifestPrefix = "manifests/"

// HighWaterKey holds the pipeline's high water.
const HighWaterKey = "state/highwater.json"

// StartKey holds where the stage's history starts (see Stage.Start).
const StartKey = "state/start.json"

// MappingKey holds the digest of the mapping whose rejects the last run retried.
const MappingKey = "state/mapping.json"
