package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"strata.dev/strata/internal/runtime"
)

// layerSaver writes a fixed layer whole and, for a backup, a layer with a plan, or
// fails as a driver does that cannot list the changes (after writing part of it).
type layerSaver struct {
	whole, planned string
	plan           []runtime.TarFile
	planErr        error
}

func (s *layerSaver) SaveRootfs(_ context.Context, _ string, w io.Writer) error {
	_, err := io.WriteString(w, s.whole)
	return err
}

func (s *layerSaver) SaveRootfsPlan(_ context.Context, _ string, w io.Writer, _ runtime.Unchanged) ([]runtime.TarFile, error) {
	if _, err := io.WriteString(w, s.planned); err != nil {
		return nil, err
	}
	return s.plan, s.planErr
}

// TestSaveRootfsPlan: a backup's snapshot keeps the layer a plan-writing driver wrote
// and its plan next to it; a driver that cannot write a plan (ErrUnsupported) has its
// partial output replaced by the whole layer, with no plan; any other failure fails;
// a plain snapshot never asks for a plan.
func TestSaveRootfsPlan(t *testing.T) {
	plan := []runtime.TarFile{{Path: "srv/blob", Offset: 512, Size: 1 << 20, Skipped: true}}
	known := func(string, FileState) bool { return true }
	for _, tc := range []struct {
		name      string
		saver     *layerSaver
		unchanged Unchanged
		want      string
		wantPlan  bool
		wantErr   string
	}{
		{"plan", &layerSaver{whole: "whole", planned: "planned", plan: plan}, known, "planned", true, ""},
		{"plain snapshot", &layerSaver{whole: "whole", planned: "planned", plan: plan}, nil, "whole", false, ""},
		{"unsupported", &layerSaver{whole: "whole", planned: "partial output that is longer",
			planErr: fmt.Errorf("instance %q: %w: a sandbox", "web-0", runtime.ErrUnsupported)}, known, "whole", false, ""},
		{"failure", &layerSaver{whole: "whole", planned: "x", planErr: errors.New("walk: input/output error")}, known, "", false,
			"copy the root filesystem of web-0: walk: input/output error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "slot-0", RootfsFile)
			err := saveRootfs(context.Background(), tc.saver, "web-0", p, tc.unchanged)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(p); string(got) != tc.want {
				t.Errorf("layer %q, want %q", got, tc.want)
			}
			data, err := os.ReadFile(p + PlanSuffix)
			if !tc.wantPlan {
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("plan file: %v; want none", err)
				}
				return
			}
			var got []TarFile
			if err != nil || json.Unmarshal(data, &got) != nil || len(got) != 1 || got[0] != plan[0] {
				t.Errorf("plan %s (%v); want %+v", data, err, plan)
			}
		})
	}
}
