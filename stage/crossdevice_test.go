//go:build linux

package stage_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/zuora-erp-etl/zuora-erp-etl/internal/s3test"
)

// TestFileStageOnAnotherFilesystemThanTheTempFolder writes to a file:// stage
// whose folder is on another device than os.TempDir(): a temp file written in
// the temp folder could not be renamed into the stage (invalid cross-device link).
func TestFileStageOnAnotherFilesystemThanTheTempFolder(t *testing.T) {
	root := otherDeviceDir(t)
	st := open(t, "file://"+filepath.ToSlash(root)+"/stage")
	ctx := context.Background()
	if _, err := st.WriteBytes(ctx, "raw/entity=invoices/window=w/part-00000.parquet", []byte("parquet")); err != nil {
		t.Fatalf("write to a stage on another filesystem: %v", err)
	}
	if err := st.WriteJSON(ctx, "state/highwater.json", map[string]string{"next": "x"}); err != nil {
		t.Fatalf("write JSON: %v", err)
	}
	got, err := st.Read(ctx, "raw/entity=invoices/window=w/part-00000.parquet")
	if err != nil || string(got) != "parquet" {
		t.Fatalf("read back %q, %v", got, err)
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("listing %+v; want exactly the two objects written", objs)
	}
	err = filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(path, ".tmp") {
			t.Errorf("a temp file was left behind: %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLocalPathCacheOnAnotherFilesystem: the local copies of a remote stage's
// objects are written to a temp file in the cache folder itself, so a cache on
// another device than os.TempDir() works too.
func TestLocalPathCacheOnAnotherFilesystem(t *testing.T) {
	st := open(t, s3test.StageURL(t))
	st.SetCacheDir(filepath.Join(otherDeviceDir(t), "cache"))
	ctx := context.Background()
	info, err := st.WriteBytes(ctx, "raw/x.parquet", []byte("parquet"))
	if err != nil {
		t.Fatal(err)
	}
	path, err := st.LocalPath(ctx, "raw/x.parquet", info.SHA256)
	if err != nil {
		t.Fatalf("local copy into a cache on another filesystem: %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "parquet" {
		t.Fatalf("local copy %q, %v", got, err)
	}
}

func device(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Dev)
}

// otherDeviceDir returns an empty folder on another device than os.TempDir():
// one under /dev/shm when that is another device, else a tmpfs mounted for the
// test (which needs root, as CI has).
func otherDeviceDir(t *testing.T) string {
	t.Helper()
	tmp := device(t, os.TempDir())
	if d, err := os.MkdirTemp("/dev/shm", "stage-test-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		if device(t, d) != tmp {
			return d
		}
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("no folder on another device than %s: /dev/shm is the same device and mount -t tmpfs failed (it needs root): %v %s", os.TempDir(), err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	if device(t, mnt) == tmp {
		t.Fatalf("the tmpfs mounted on %s has the device of %s", mnt, os.TempDir())
	}
	return mnt
}
