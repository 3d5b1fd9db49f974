package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// manifestTimeFormat is the time in a manifest's object name: UTC, fixed
// width, so that names sort by time.
const manifestTimeFormat = "20060102T150405.000000000Z"

// backupIDLen is the length of a backup ID in hexadecimal digits.
const backupIDLen = 16

// Meta is what the caller says about a backup. The repository stores it
// and uses Group and Workloads to group backups for Prune; the rest is
// the caller's.
type Meta struct {
	// Workloads names the workloads backed up.
	Workloads []string `json:"workloads,omitempty"`
	// Group is the retention group: Prune keeps backups per group. Empty
	// means the workloads, sorted and joined with ",".
	Group string `json:"group,omitempty"`
	// Kind says what was backed up, for example "vm-disk", "volume",
	// "layer" or "store".
	Kind string `json:"kind,omitempty"`
	// Labels are free key/value pairs.
	Labels map[string]string `json:"labels,omitempty"`
	// Spec is free-form JSON, for example the workload's spec at backup
	// time, so that a restore can recreate it.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// GroupKey is the retention group of a backup with this Meta: Group, or
// else the sorted workloads joined with ",".
func (m Meta) GroupKey() string {
	if m.Group != "" {
		return m.Group
	}
	w := slices.Clone(m.Workloads)
	slices.Sort(w)
	return strings.Join(w, ",")
}

// Manifest records one committed backup.
type Manifest struct {
	Format int         `json:"format"`
	ID     string      `json:"id"`
	Time   time.Time   `json:"time"`
	Meta   Meta        `json:"meta"`
	Files  []File      `json:"files"`
	Stats  BackupStats `json:"stats"`
}

// File is one file of a backup.
type File struct {
	Name string      `json:"name"`
	Mode fs.FileMode `json:"mode"`
	Size int64       `json:"size"`
	// SHA256 is the hexadecimal SHA-256 of the file's content, or empty when
	// the file reused chunks of an earlier backup without reading them
	// (Writer.AddParts): its integrity is then that of its chunks.
	SHA256 string     `json:"sha256"`
	Chunks []ChunkRef `json:"chunks"`
}

// ChunkRef is one chunk of a file, in file order.
type ChunkRef struct {
	ID   ChunkID `json:"id"`
	Size int64   `json:"size"`
}

// BackupStats says what a backup read and stored.
type BackupStats struct {
	// BytesRead is the total size of the files.
	BytesRead int64 `json:"bytesRead"`
	// BytesReused is the part of BytesRead taken as chunks of an earlier
	// backup without reading it (Writer.AddParts).
	BytesReused int64 `json:"bytesReused,omitempty"`
	// ChunksNew counts chunks uploaded by this backup; ChunksReused those
	// already stored (by an earlier backup, or earlier in this one).
	ChunksNew    int `json:"chunksNew"`
	ChunksReused int `json:"chunksReused"`
	// BytesNew is the plaintext size of the new chunks; BytesStoredNew
	// what they take in the repository after compression and sealing.
	BytesNew       int64 `json:"bytesNew"`
	BytesStoredNew int64 `json:"bytesStoredNew"`
	// Duration is the time from the first file to Commit.
	Duration time.Duration `json:"duration"`
}

// File returns the backup's file of that name.
func (m *Manifest) File(name string) (*File, bool) {
	for i := range m.Files {
		if m.Files[i].Name == name {
			return &m.Files[i], true
		}
	}
	return nil, false
}

// Size is the total size of the backup's files.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// objectName is where the manifest is stored.
func (m *Manifest) objectName() string {
	return manifestName(m.Time, m.ID)
}

func manifestName(t time.Time, id string) string {
	return backupsPrefix + t.UTC().Format(manifestTimeFormat) + "-" + id
}

// parseManifestName splits "backups/<time>-<id>".
func parseManifestName(name string) (t time.Time, id string, ok bool) {
	rest, ok := strings.CutPrefix(name, backupsPrefix)
	if !ok {
		return time.Time{}, "", false
	}
	ts, id, ok := strings.Cut(rest, "-")
	if !ok || len(id) != backupIDLen {
		return time.Time{}, "", false
	}
	t, err := time.Parse(manifestTimeFormat, ts)
	if err != nil {
		return time.Time{}, "", false
	}
	return t, id, true
}

func (r *Repo) putManifest(ctx context.Context, m *Manifest) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	name := m.objectName()
	sealed, _, err := r.seal.seal(nil, nil, data, []byte(name), true)
	if err != nil {
		return err
	}
	return r.st.Put(ctx, name, sealed)
}

// readManifest reads and checks the manifest stored under name.
func (r *Repo) readManifest(ctx context.Context, name string) (Manifest, error) {
	t, id, ok := parseManifestName(name)
	if !ok {
		return Manifest{}, fmt.Errorf("%w: %q is not a manifest name", ErrInvalid, name)
	}
	sealed, err := r.st.Get(ctx, name)
	if err != nil {
		return Manifest{}, err
	}
	plain, _, err := r.seal.open(nil, nil, sealed, []byte(name))
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s: manifest: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(plain, &m); err != nil {
		return Manifest{}, fmt.Errorf("backup %s: manifest: %w: %w", id, ErrCorrupt, err)
	}
	if m.Format != FormatVersion {
		return Manifest{}, fmt.Errorf("backup %s: manifest format %d: %w (this strata reads %d)", id, m.Format, ErrUnsupportedFormat, FormatVersion)
	}
	if m.ID != id || !m.Time.Equal(t) {
		return Manifest{}, fmt.Errorf("backup %s: %w: manifest says ID %s, time %s", id, ErrCorrupt, m.ID, m.Time)
	}
	return m, nil
}

// manifestNames lists the names of the stored manifests, sorted by time.
func (r *Repo) manifestNames(ctx context.Context) ([]string, error) {
	var names []string
	err := r.st.List(ctx, backupsPrefix, func(oi ObjectInfo) error {
		if _, _, ok := parseManifestName(oi.Name); ok {
			names = append(names, oi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// List returns the manifests of all committed backups, oldest first.
func (r *Repo) List(ctx context.Context) ([]Manifest, error) {
	names, err := r.manifestNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	ms := make([]Manifest, 0, len(names))
	for _, name := range names {
		m, err := r.readManifest(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("list backups in %s: %w", r.URL(), err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// findManifest returns the object name of the backup with this ID.
func (r *Repo) findManifest(ctx context.Context, id string) (string, error) {
	if len(id) != backupIDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: backup ID %q: want %d lower-case hexadecimal digits", ErrInvalid, id, backupIDLen)
	}
	names, err := r.manifestNames(ctx)
	if err != nil {
		return "", err
	}
	for _, name := range names {
		if strings.HasSuffix(name, "-"+id) {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w: no backup %s in %s", ErrNotFound, id, r.URL())
}

// Get returns the manifest of the backup with this ID.
func (r *Repo) Get(ctx context.Context, id string) (Manifest, error) {
	name, err := r.findManifest(ctx, id)
	if err != nil {
		return Manifest{}, fmt.Errorf("get backup: %w", err)
	}
	m, err := r.readManifest(ctx, name)
	if err != nil {
		return Manifest{}, fmt.Errorf("get backup: %w", err)
	}
	return m, nil
}

// Delete removes the backup's manifest. Its chunks stay until GC (run by
// Prune) finds them unreferenced. Like GC it waits for this process's
// Writers and readers and takes an exclusive lock, so it fails with
// ErrLocked while another process backs up or restores.
func (r *Repo) Delete(ctx context.Context, id string) error {
	name, err := r.findManifest(ctx, id)
	if err != nil {
		return fmt.Errorf("delete backup: %w", err)
	}
	ctx, done, err := r.exclusiveOp(ctx, "delete")
	if err != nil {
		return fmt.Errorf("delete backup %s: %w", id, err)
	}
	defer done()
	if err := r.st.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete backup %s: %w", id, lockCause(ctx, err))
	}
	return nil
}
