package repo

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// at parses a UTC time "2006-01-02 15:04".
func at(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestChoose is the retention table: backups (group:time) and a policy in,
// the set kept (with reasons) out. The clock is fixed.
func TestChoose(t *testing.T) {
	now := "2025-03-12 12:00" // a Wednesday
	// A week of backups of group "a" every 6 hours, plus two of group "b".
	var week []string
	for d := 5; d <= 12; d++ {
		for _, h := range []string{"00", "06", "12"} {
			day := "2025-03-" + twoDigits(d)
			if d == 12 && h == "12" {
				continue
			}
			week = append(week, "a:"+day+" "+h+":00")
		}
	}
	week = append(week, "b:2025-03-01 09:00", "b:2025-02-01 09:00")

	tests := []struct {
		name    string
		backups []string
		ret     Retention
		keep    []string // "group:time reasons"
	}{
		{
			name:    "last",
			backups: week,
			ret:     Retention{KeepLast: 2},
			keep: []string{
				"a:2025-03-12 00:00 last", "a:2025-03-12 06:00 last",
				"b:2025-02-01 09:00 last", "b:2025-03-01 09:00 last",
			},
		},
		{
			name:    "daily keeps the newest of each of the last n days that have a backup",
			backups: week,
			ret:     Retention{KeepDaily: 3},
			keep: []string{
				"a:2025-03-10 12:00 daily", "a:2025-03-11 12:00 daily", "a:2025-03-12 06:00 daily",
				"b:2025-02-01 09:00 daily", "b:2025-03-01 09:00 daily",
			},
		},
		{
			name:    "reasons add up",
			backups: week,
			ret:     Retention{KeepLast: 1, KeepHourly: 2, KeepWeekly: 2},
			keep: []string{
				"a:2025-03-09 12:00 weekly", // Sunday: the newest of ISO week 10
				"a:2025-03-12 00:00 hourly",
				"a:2025-03-12 06:00 last,hourly,weekly",
				"b:2025-02-01 09:00 hourly,weekly", // its hour is b's second
				"b:2025-03-01 09:00 last,hourly,weekly",
			},
		},
		{
			name:    "backups stopped a month ago: daily still keeps n",
			backups: []string{"a:2025-02-01 10:00", "a:2025-02-02 10:00", "a:2025-02-02 11:00", "a:2025-02-03 10:00"},
			ret:     Retention{KeepDaily: 2},
			keep:    []string{"a:2025-02-02 11:00 daily", "a:2025-02-03 10:00 daily"},
		},
		{
			name:    "hours of different days are different buckets",
			backups: []string{"a:2025-03-10 10:00", "a:2025-03-11 10:00", "a:2025-03-11 10:30"},
			ret:     Retention{KeepHourly: 2},
			keep:    []string{"a:2025-03-10 10:00 hourly", "a:2025-03-11 10:30 hourly"},
		},
		{
			name:    "a backup from the future is kept",
			backups: []string{"a:2025-03-11 10:00", "a:2025-03-11 11:00", "a:2025-03-13 10:00"},
			ret:     Retention{KeepLast: 1},
			keep:    []string{"a:2025-03-13 10:00 future,last"},
		},
		{
			name:    "empty group means the sorted workloads",
			backups: []string{"web,db:2025-03-11 10:00", "db,web:2025-03-11 11:00"},
			ret:     Retention{KeepLast: 1},
			keep:    []string{"db,web:2025-03-11 11:00 last"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ms []Manifest
			for i, s := range tc.backups {
				group, ts, _ := strings.Cut(s, ":")
				meta := Meta{Group: group}
				if strings.Contains(group, ",") {
					meta = Meta{Workloads: strings.Split(group, ",")}
				}
				ms = append(ms, Manifest{ID: twoDigits(i), Time: at(t, ts), Meta: meta})
			}
			ds, err := Choose(ms, tc.ret, at(t, now))
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != len(ms) {
				t.Fatalf("Choose returned %d decisions for %d backups", len(ds), len(ms))
			}
			var got []string
			for i, d := range ds {
				if d.Backup.ID != ms[i].ID {
					t.Fatalf("decision %d is for backup %s; want the input order", i, d.Backup.ID)
				}
				if d.Keep != (len(d.Reasons) > 0) {
					t.Fatalf("decision %+v: Keep disagrees with its reasons", d)
				}
				if d.Keep {
					got = append(got, d.Backup.Meta.GroupKey()+":"+d.Backup.Time.Format("2006-01-02 15:04")+" "+strings.Join(d.Reasons, ","))
				}
			}
			slices.Sort(got)
			want := slices.Clone(tc.keep)
			for i, w := range want {
				if g, rest, ok := strings.Cut(w, ":"); ok && strings.Contains(g, ",") {
					want[i] = (Meta{Workloads: strings.Split(g, ",")}).GroupKey() + ":" + rest
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("kept:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10%10), byte('0' + n%10)})
}

func TestChooseRefusesKeepingNothing(t *testing.T) {
	_, err := Choose(nil, Retention{}, time.Now())
	errIs(t, err, ErrInvalid)
	_, err = Choose(nil, Retention{KeepLast: -1, KeepDaily: 3}, time.Now())
	errIs(t, err, ErrInvalid)
}

// TestPruneGC prunes a repository with a fake clock: the manifests the
// retention drops go, then GC deletes exactly the chunks no remaining
// backup uses once they are past the grace, and every kept backup still
// verifies.
func TestPruneGC(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			testPruneGC(t, b)
		})
	}
}

func testPruneGC(t *testing.T, b backend) {
	ctx := context.Background()
	url := b.url(t)
	key, err := Init(ctx, url, Options{KeyFile: filepath.Join(t.TempDir(), "key")})
	if err != nil {
		t.Fatal(err)
	}
	clock := at(t, "2025-03-10 08:00")
	st, err := OpenStorage(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenStorageRepo(ctx, st, key, Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	shared := randomBytes(100, 2*mib)
	var ms []Manifest
	for day := range 4 {
		ms = append(ms, backupFiles(t, r, Meta{Group: "g"},
			testFile{name: "shared", data: shared},
			testFile{name: "own", data: randomBytes(uint64(day), 2*mib)}))
		clock = clock.Add(24 * time.Hour)
	}
	// Chunks only the two oldest backups use.
	onlyOld := map[ChunkID]bool{}
	for _, m := range ms[:2] {
		f, _ := m.File("own")
		for _, c := range f.Chunks {
			onlyOld[c.ID] = true
		}
	}
	chunksBefore := countChunks(t, st)

	// Within the grace (real time now, the chunks are seconds old) the
	// manifests go but every chunk stays.
	res, err := r.Prune(ctx, Retention{KeepDaily: 2}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 2 || len(res.Kept) != 2 || res.Deleted[0].Backup.ID != ms[0].ID || res.Deleted[1].Backup.ID != ms[1].ID {
		t.Fatalf("Prune deleted %d, kept %d; want the two oldest deleted", len(res.Deleted), len(res.Kept))
	}
	if res.GC.Deleted != 0 || res.GC.Young != len(onlyOld) {
		t.Fatalf("GC within the grace: %+v; want nothing deleted and %d young", res.GC, len(onlyOld))
	}
	// Past the grace, exactly the chunks of the dropped backups' own files.
	res, err = r.Prune(ctx, Retention{KeepDaily: 2}, time.Now().Add(DefaultGCGrace+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 0 || res.GC.Deleted != len(onlyOld) || res.GC.Freed <= 4*mib || res.GC.Young != 0 || res.GC.Missing != 0 {
		t.Fatalf("GC past the grace: %+v; want the %d chunks of the dropped backups", res.GC, len(onlyOld))
	}
	if after := countChunks(t, st); after != chunksBefore-len(onlyOld) || after != res.GC.Referenced {
		t.Fatalf("%d chunks left of %d; want %d", after, chunksBefore, chunksBefore-len(onlyOld))
	}
	var st2 ObjectInfo
	for id := range onlyOld {
		if st2, err = st.Stat(ctx, id.objectName()); err == nil {
			t.Fatalf("chunk %s survived GC: %+v", id, st2)
		}
		errIs(t, err, ErrNotFound)
	}
	for _, m := range ms[2:] {
		verifyClean(t, r, m.ID)
	}
	// A custom grace applies too: nothing is left to delete.
	res, err = r.Prune(ctx, Retention{KeepLast: 5, Grace: time.Nanosecond}, time.Now())
	if err != nil || res.GC.Deleted != 0 {
		t.Fatalf("third Prune: %+v, %v", res.GC, err)
	}
}

func countChunks(t testing.TB, st Storage) int {
	t.Helper()
	n := 0
	err := st.List(context.Background(), chunksPrefix, func(ObjectInfo) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGCWaitsForWriters checks the in-process exclusion: GC does not run
// while a Writer is open, and a Writer does not start while GC runs.
func TestGCWaitsForWriters(t *testing.T) {
	ctx := context.Background()
	r, _, _ := newRepo(t, fileBackend())
	w := r.NewBackup(Meta{Group: "g"})
	if err := w.AddBytes(ctx, "a", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := r.GC(short, time.Now(), 0)
	errIs(t, err, context.DeadlineExceeded)
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
}
