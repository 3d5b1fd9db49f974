package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"strata.dev/strata/api/v1alpha1"
	"strata.dev/strata/internal/backup/repo"
	"strata.dev/strata/internal/objects"
	"strata.dev/strata/internal/runtime"
	"strata.dev/strata/internal/snapshot"
	"strata.dev/strata/internal/store"
)

// Recorder records events.
type Recorder interface {
	Record(ctx context.Context, e objects.Event)
}

// Options configure a Manager.
type Options struct {
	Store     *store.Store
	Drivers   *runtime.Registry
	Snapshots *snapshot.Manager
	// DataDir is the daemon's data directory; the manager keeps its files in
	// DataDir/backup.
	DataDir string
	Events  Recorder
	Clock   func() time.Time
	Logger  *slog.Logger
	// ObserveBackup, when set, is told each finished backup's workloads, duration and
	// whether it succeeded (the daemon's metrics).
	ObserveBackup func(workloads []string, d time.Duration, ok bool)
}

// Manager keeps the daemon's repositories and runs backups, restores and drills. See
// the package documentation.
type Manager struct {
	o Options

	mu    sync.Mutex // guards the repository list file and open
	open  map[string]*repo.Repo
	drill sync.Mutex // one drill at a time
}

// New returns a Manager.
func New(o Options) *Manager {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, open: map[string]*repo.Repo{}}
}

// kindError gives err the kind of a sentinel (for errors.Is) without adding its text.
type kindError struct {
	kind error
	err  error
}

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

// invalid marks err as the caller's mistake (the API answers 422, the CLI exits 2).
func invalid(err error) error { return kindError{runtime.ErrInvalid, err} }

// classify maps the repository's error kinds to the daemon's: bad URLs, wrong keys and
// unknown backups are the caller's mistakes; a location already in use is a clash.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, repo.ErrInvalid), errors.Is(err, repo.ErrWrongKey), errors.Is(err, repo.ErrNotFound), errors.Is(err, repo.ErrReadOnly):
		return invalid(err)
	case errors.Is(err, repo.ErrExists):
		return kindError{store.ErrAlreadyExists, err}
	case errors.Is(err, repo.ErrLocked):
		// Another operation holds the repository: try again later (the API answers 409).
		return kindError{store.ErrConflict, err}
	}
	return err
}

// openRepo opens a repository as this daemon's connection name (its locks say so), for
// reading only when readOnly.
func openRepo(ctx context.Context, url string, key repo.Key, name string, readOnly bool) (*repo.Repo, error) {
	st, err := repo.OpenStorage(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	return repo.OpenStorageRepo(ctx, st, key, repo.Options{Holder: "strata daemon, repository " + name, ReadOnly: readOnly})
}

func (m *Manager) dir() string             { return filepath.Join(m.o.DataDir, "backup") }
func (m *Manager) listFile() string        { return filepath.Join(m.dir(), "repositories.json") }
func (m *Manager) keyFile(n string) string { return filepath.Join(m.dir(), "keys", n+".key") }

// readRepos reads the repository list; m.mu is held.
func (m *Manager) readRepos() ([]v1alpha1.BackupRepository, error) {
	data, err := os.ReadFile(m.listFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []v1alpha1.BackupRepository
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w (fix or remove the file, then connect the repositories again)", m.listFile(), err)
	}
	return list, nil
}

// writeRepos replaces the repository list through a synced temporary file; m.mu is held.
func (m *Manager) writeRepos(list []v1alpha1.BackupRepository) error {
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := m.listFile() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, m.listFile())
}

// Repos lists the repositories the daemon knows, by name.
func (m *Manager) Repos(context.Context) ([]v1alpha1.BackupRepository, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list, err := m.readRepos()
	slices.SortFunc(list, func(a, b v1alpha1.BackupRepository) int { return strings.Compare(a.Name, b.Name) })
	return list, err
}

// prepareAdd checks a new repository's name and URL; m.mu is held.
func (m *Manager) prepareAdd(req *v1alpha1.BackupRepositoryRequest) ([]v1alpha1.BackupRepository, error) {
	if req.Name == "" {
		req.Name = v1alpha1.DefaultBackupRepository
	}
	if msgs := validation.IsDNS1123Label(req.Name); len(msgs) > 0 {
		return nil, invalid(fmt.Errorf("repository name %q: use a DNS label (lower case letters, digits and '-', such as offsite)", req.Name))
	}
	if _, err := repo.ParseURL(req.URL); err != nil {
		return nil, classify(err)
	}
	if err := os.MkdirAll(filepath.Join(m.dir(), "keys"), 0o700); err != nil {
		return nil, err
	}
	list, err := m.readRepos()
	if err != nil {
		return nil, err
	}
	for _, r := range list {
		if r.Name == req.Name {
			return nil, kindError{store.ErrAlreadyExists, fmt.Errorf("repository %s is already known (at %s): choose another --name", r.Name, r.URL)}
		}
	}
	return list, nil
}

// InitRepo creates a repository at req.URL and keeps its new key in
// DataDir/backup/keys/NAME.key.
func (m *Manager) InitRepo(ctx context.Context, req v1alpha1.BackupRepositoryRequest) (*v1alpha1.BackupRepository, error) {
	if req.ReadOnly {
		return nil, invalid(errors.New("a repository is created with write access: readOnly is for connecting to an existing one"))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	list, err := m.prepareAdd(&req)
	if err != nil {
		return nil, err
	}
	keyFile := m.keyFile(req.Name)
	key, err := repo.Init(ctx, req.URL, repo.Options{KeyFile: keyFile})
	if err != nil {
		return nil, classify(err)
	}
	r, err := openRepo(ctx, req.URL, key, req.Name, false)
	if err != nil {
		return nil, classify(err)
	}
	return m.add(list, req, r, keyFile, true)
}

// ConnectRepo opens an existing repository with its key (hexadecimal) and keeps the key
// in DataDir/backup/keys/NAME.key: this daemon can then list and restore its backups.
func (m *Manager) ConnectRepo(ctx context.Context, req v1alpha1.BackupRepositoryRequest) (*v1alpha1.BackupRepository, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list, err := m.prepareAdd(&req)
	if err != nil {
		return nil, err
	}
	key, err := repo.ParseKey(req.Key)
	if err != nil {
		return nil, classify(fmt.Errorf("the key file: %w", err))
	}
	r, err := openRepo(ctx, req.URL, key, req.Name, req.ReadOnly)
	if err != nil {
		return nil, classify(err)
	}
	keyFile := m.keyFile(req.Name)
	if err := repo.WriteKeyFile(keyFile, key, fmt.Sprintf("strata backup repository %s\nat %s\nconnected as %s", r.ID(), r.URL(), req.Name)); err != nil {
		return nil, classify(err)
	}
	return m.add(list, req, r, keyFile, false)
}

// add records a repository; m.mu is held.
func (m *Manager) add(list []v1alpha1.BackupRepository, req v1alpha1.BackupRepositoryRequest, r *repo.Repo, keyFile string, created bool) (*v1alpha1.BackupRepository, error) {
	info := v1alpha1.BackupRepository{Name: req.Name, URL: r.URL(), ID: r.ID(), KeyFile: keyFile, Created: created, Added: m.o.Clock().UTC(),
		ReadOnly: req.ReadOnly}
	if err := m.writeRepos(append(list, info)); err != nil {
		return nil, fmt.Errorf("record repository %s: %w (its key is in %s)", req.Name, err, keyFile)
	}
	m.open[req.Name] = r
	m.o.Logger.Info("backup repository added", "name", req.Name, "url", info.URL, "id", info.ID, "created", created)
	return &info, nil
}

// writableRepo is repo for an operation that writes: a repository connected read-only is
// refused before anything starts.
func (m *Manager) writableRepo(ctx context.Context, name, what string) (*repo.Repo, string, error) {
	r, name, err := m.repo(ctx, name)
	if err == nil && r.ReadOnly() {
		err = invalid(fmt.Errorf("%s: repository %s is connected read-only (strata repo connect --read-only): "+
			"connect it with write access under another name, or use another repository", what, name))
	}
	return r, name, err
}

// repo opens (once) the repository called name ("" for the default one).
func (m *Manager) repo(ctx context.Context, name string) (*repo.Repo, string, error) {
	if name == "" {
		name = v1alpha1.DefaultBackupRepository
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.open[name]; ok {
		return r, name, nil
	}
	list, err := m.readRepos()
	if err != nil {
		return nil, name, err
	}
	for _, info := range list {
		if info.Name != name {
			continue
		}
		key, err := repo.ReadKeyFile(info.KeyFile)
		if err != nil {
			return nil, name, fmt.Errorf("repository %s: %w", name, err)
		}
		r, err := openRepo(ctx, info.URL, key, name, info.ReadOnly)
		if err != nil {
			return nil, name, fmt.Errorf("repository %s: %w", name, err)
		}
		m.open[name] = r
		return r, name, nil
	}
	return nil, name, invalid(fmt.Errorf("no backup repository named %s: create one with `strata repo init URL --name %s` or connect one with `strata repo connect`", name, name))
}
