package stage

import (
	"context"
	"fmt"
	"slices"
)

// WindowObjects are the objects of one window that a prune removes: its raw
// snapshot, its transform outputs and its manifests, never its ledger.
type WindowObjects struct {
	Window Window
	Keys   []string // in the order they are deleted
	Bytes  int64
}

// PruneObjects lists w's objects in the order a prune deletes them, so that
// a prune stopped at any point leaves a window no command takes for
// unfinished: the transform and load manifests first, then the extract
// manifest (the snapshot is then no longer committed), the snapshot's parts
// and the transform's outputs, the window's other records, and last the
// record that its load is complete. tables are the raw tables to look in
// besides the registry's and the quarantine.
func (s *Stage) PruneObjects(ctx context.Context, w Window, tables []string) (WindowObjects, error) {
	out := WindowObjects{Window: w}
	seen := map[string]bool{}
	add := func(objs ...ObjectInfo) {
		for _, o := range objs {
			if !seen[o.Key] {
				seen[o.Key] = true
				out.Keys = append(out.Keys, o.Key)
				out.Bytes += o.Size
			}
		}
	}
	manifests, err := s.List(ctx, fmt.Sprintf("%swindow=%s/", ManifestPrefix, w.ID()))
	if err != nil {
		return out, err
	}
	byKey := map[string]ObjectInfo{}
	for _, o := range manifests {
		byKey[o.Key] = o
	}
	for _, step := range []string{TransformManifest{}.step(), LoadManifest{}.step(), ExtractManifest{}.step()} {
		if o, ok := byKey[ManifestKey(step, w)]; ok {
			add(o)
		}
	}
	all := append(append(Tables(), QuarantineTable), tables...)
	slices.Sort(all)
	for _, t := range slices.Compact(all) {
		objs, err := s.List(ctx, fmt.Sprintf("raw/entity=%s/window=%s/", t, w.ID()))
		if err != nil {
			return out, err
		}
		add(objs...)
	}
	for _, kind := range []string{"documents", "rejects", "skipped"} {
		objs, err := s.List(ctx, fmt.Sprintf("ready/%s/window=%s/", kind, w.ID()))
		if err != nil {
			return out, err
		}
		add(objs...)
	}
	for _, o := range manifests {
		if o.Key != LoadCompleteKey(w) {
			add(o)
		}
	}
	if o, ok := byKey[LoadCompleteKey(w)]; ok {
		add(o)
	}
	return out, nil
}
