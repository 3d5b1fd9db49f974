package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/server"
	"strata.dev/strata/internal/store"
)

// fakeBackups answers Create with the progress and error it is given.
type fakeBackups struct {
	server.Backupper // the routes not tested here panic
	progress         int
	err              error
}

func (f *fakeBackups) Create(_ context.Context, req v1alpha1.BackupRequest, progress func(v1alpha1.BackupProgress)) (*v1alpha1.Backup, error) {
	for i := 1; i <= f.progress; i++ {
		progress(v1alpha1.BackupProgress{Workload: req.Workloads[0], File: "f", Bytes: int64(i), Total: int64(f.progress)})
	}
	if f.err != nil {
		return nil, f.err
	}
	return &v1alpha1.Backup{ID: "0123456789abcdef", Workloads: req.Workloads}, nil
}

// TestBackupStream: a backup streams progress lines then the backup; an error before
// any progress is an ordinary error answer with its status code, one after is the last
// line with the API's reason.
func TestBackupStream(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tests := []struct {
		name     string
		fake     fakeBackups
		code     int
		lines    int
		last     string
		lastKind string
	}{
		{"ok", fakeBackups{progress: 2}, http.StatusOK, 3, "0123456789abcdef", "backup"},
		{"invalid at once", fakeBackups{err: fmt.Errorf("%w: workload nope not found", runtime.ErrInvalid)}, http.StatusUnprocessableEntity, 1, "nope", "status"},
		{"failure midway", fakeBackups{progress: 1, err: errors.New("storage went away")}, http.StatusOK, 2, "InternalError", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := tt.fake
			hs := httptest.NewServer(server.New(server.Options{Store: st, Backups: &fb}).Handler())
			defer hs.Close()
			resp, err := http.Post(hs.URL+server.Prefix+server.BackupsPath, "application/json", strings.NewReader(`{"workloads": ["ledger"]}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.code)
			}
			var lines []string
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if len(lines) != tt.lines {
				t.Fatalf("%d lines %q, want %d", len(lines), lines, tt.lines)
			}
			last := lines[len(lines)-1]
			var l v1alpha1.BackupStreamLine
			_ = json.Unmarshal([]byte(last), &l)
			ok := strings.Contains(last, tt.last)
			switch tt.lastKind {
			case "backup":
				ok = ok && l.Backup != nil
			case "error":
				ok = ok && l.Error != nil && l.Error.Reason == server.ReasonInternal
			}
			if !ok {
				t.Errorf("last line %s, want a %s naming %q", last, tt.lastKind, tt.last)
			}
		})
	}
}
