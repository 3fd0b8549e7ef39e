// Package s3test serves an empty bucket from an in-process S3-compatible
// server (gofakes3) for the tests that run a stage on s3://.
package s3test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Bucket is the name of the bucket StageURL serves.
const Bucket = "etl-stage"

// StageURL starts a server holding one empty bucket, stopped when t ends, sets
// fake AWS credentials (setCredentials), and returns an s3:// stage URL
// pointing at it.
func StageURL(t testing.TB) string {
	t.Helper()
	return HookedStageURL(t, nil)
}

// HookedStageURL is StageURL with hook (when not nil) called first on every
// request: one that returns true has answered it, so a test can fail a write.
func HookedStageURL(t testing.TB, hook func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(Bucket); err != nil {
		t.Fatal(err)
	}
	s3 := gofakes3.New(backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook != nil && hook(w, r) {
			return
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	setCredentials()
	return "s3://" + Bucket + "?endpoint=" + srv.URL + "&region=us-east-1&use_path_style=true&disable_https=true"
}

// setCredentials sets the fake AWS credentials every server of the package
// accepts, in the process's environment and for the rest of it: the values
// are the same for every test, and t.Setenv would keep the tests that use an
// S3 stage from running in parallel. A test that unsets them with t.Setenv
// gets them back when it ends.
func setCredentials() {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":     "AKIAFAKEFAKEFAKE",
		"AWS_SECRET_ACCESS_KEY": "fake-secret-never-logged",
		"AWS_REGION":            "us-east-1",
	} {
		os.Setenv(k, v)
	}
}
