package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// probePrefix holds the objects CheckWritable writes and deletes at once.
const probePrefix = "probe/"

// CheckWritable proves that the stage takes writes and deletes, leaving
// nothing behind: a small object is written and deleted. A file:// stage whose
// folder does not exist yet is not created: the nearest existing folder above
// it must let this process create the folder (the first writing command does).
func (s *Stage) CheckWritable(ctx context.Context) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if s.root != "" {
		if _, err := os.Stat(s.root); errors.Is(err, fs.ErrNotExist) {
			return checkCreatable(s.root)
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	key := probePrefix + hex.EncodeToString(b[:])
	if _, err := s.WriteBytes(ctx, key, []byte("zuora-erp-etl config check\n")); err != nil {
		return err
	}
	if err := s.Delete(ctx, key); err != nil {
		return fmt.Errorf("the stage took a write but not its deletion, so %s is left in it: %w", key, err)
	}
	if s.root != "" {
		_ = os.Remove(filepath.Join(s.root, "probe")) // the folder fileblob made for it, when empty
	}
	return nil
}

// checkCreatable checks that the folder dir could be created: its nearest
// existing parent is a folder this process can write into.
func checkCreatable(dir string) error {
	parent := filepath.Dir(dir)
	for {
		fi, err := os.Stat(parent)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("the stage folder %s cannot be created: %s is not a folder", dir, parent)
		case err == nil:
			f, err := os.CreateTemp(parent, ".zuora-erp-etl-check-*")
			if err != nil {
				return fmt.Errorf("the stage folder %s cannot be created in %s: %w", dir, parent, errors.Unwrap(err))
			}
			name := f.Name()
			f.Close()
			return os.Remove(name)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("the stage folder %s: %w", dir, err)
		}
		next := filepath.Dir(parent)
		if next == parent {
			return fmt.Errorf("the stage folder %s cannot be created: no parent folder exists", dir)
		}
		parent = next
	}
}
