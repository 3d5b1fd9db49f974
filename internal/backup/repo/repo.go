package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/restic/chunker"
)

// FormatVersion is the repository layout this package writes and reads.
const FormatVersion = 1

// Object names and prefixes.
const (
	configName    = "config"
	keyCheckName  = "keycheck"
	chunksPrefix  = "chunks/"
	backupsPrefix = "backups/"
)

// Chunk sizes: Rabin content-defined chunking cuts where the fingerprint's
// low avgBits bits are zero, but never before minChunkSize bytes and always
// at maxChunkSize.
const (
	minChunkSize = 512 << 10
	avgBits      = 20 // 1 MiB
	maxChunkSize = 8 << 20
)

// DefaultWorkers is how many chunks a Writer uploads, and a reader
// fetches, at the same time.
const DefaultWorkers = 4

// config is the repository's "config" object, stored as plain JSON so that
// Open can check the format before it has a usable key. The chunker's
// polynomial is secret (it would let someone who knows a file tell from
// chunk sizes whether it is stored), so it lives in the key-check object.
type config struct {
	Format  int           `json:"format"`
	ID      string        `json:"id"`
	Created time.Time     `json:"created"`
	Chunker chunkerConfig `json:"chunker"`
}

type chunkerConfig struct {
	MinSize uint `json:"minSize"`
	AvgBits int  `json:"avgBits"`
	MaxSize uint `json:"maxSize"`
}

// keyCheck is the plaintext of the "keycheck" object, sealed with the key
// and "keycheck:<repository ID>" as additional data.
type keyCheck struct {
	Repository string      `json:"repository"`
	Polynomial chunker.Pol `json:"polynomial"`
}

// Options tune Init and Open.
type Options struct {
	// KeyFile is where Init writes the new key (mode 0600). Init refuses
	// to overwrite an existing file. Required by Init, unused by Open.
	KeyFile string
	// Workers is how many chunks are uploaded or fetched at once
	// (default DefaultWorkers).
	Workers int
	// Now is the clock for backup times and for the times in locks, and
	// the clock against which other locks' refresh times are judged
	// (default time.Now).
	Now func() time.Time
	// Holder names the holder in the locks this Repo takes, for the
	// messages of other processes that find them: the daemon puts its
	// name for the repository connection here. Optional.
	Holder string
	// LockRefresh is how often a held lock is rewritten with a new
	// refresh time (default DefaultLockRefresh). It must be shorter than
	// LockStaleAge; a sixth of it leaves room for slow storage.
	LockRefresh time.Duration
	// LockStaleAge is how long after its last refresh a lock is stale,
	// that is ignored and removed by other operations (default
	// DefaultLockStaleAge). Every process sharing a repository must use
	// the same value.
	LockStaleAge time.Duration
	// ReadOnly opens the repository for reading only, for storage this
	// process may not write to (read-only S3 credentials, a mounted copy):
	// listing, restoring and verifying work and take no lock; everything
	// that writes fails with ErrReadOnly. Without a lock, a prune elsewhere
	// may delete chunks a read still needs: the read then fails, naming
	// the missing chunk, and is safe to retry.
	ReadOnly bool
}

func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockRefresh <= 0 {
		o.LockRefresh = DefaultLockRefresh
	}
	if o.LockStaleAge <= 0 {
		o.LockStaleAge = DefaultLockStaleAge
	}
	return o
}

func (o Options) validate() error {
	if o.LockRefresh >= o.LockStaleAge {
		return fmt.Errorf("%w: options: LockRefresh %v must be shorter than LockStaleAge %v, or locks go stale while they are held", ErrInvalid, o.LockRefresh, o.LockStaleAge)
	}
	return nil
}

// Repo is an open repository. It is safe for concurrent use.
type Repo struct {
	st      Storage
	id      string
	cfg     config
	pol     chunker.Pol
	seal    *sealer
	opts    Options
	exclude *exclusion
}

// ID returns the repository's random ID (hexadecimal), fixed at Init.
func (r *Repo) ID() string { return r.id }

// URL returns the repository's location, without credentials.
func (r *Repo) URL() string { return r.st.URL() }

// ReadOnly reports whether the Repo was opened read-only (Options.ReadOnly).
func (r *Repo) ReadOnly() bool { return r.opts.ReadOnly }

// Storage returns the storage the repository is kept in.
func (r *Repo) Storage() Storage { return r.st }

// Init creates a repository at url: a config object and a key-check object
// sealed with a new random key, which it writes to opts.KeyFile and
// returns. It refuses a location that already holds objects, and an
// existing key file (both ErrExists). An S3 bucket that does not exist is
// created.
func Init(ctx context.Context, url string, opts Options) (Key, error) {
	st, err := OpenStorage(ctx, url)
	if err != nil {
		return Key{}, fmt.Errorf("init repository: %w", err)
	}
	if s3, ok := st.(*s3Storage); ok {
		loc, _ := ParseURL(url)
		if err := s3.ensureBucket(ctx, loc.Region); err != nil {
			return Key{}, fmt.Errorf("init repository: %w", err)
		}
	}
	return InitStorage(ctx, st, opts)
}

// InitStorage is Init on a Storage already opened.
func InitStorage(ctx context.Context, st Storage, opts Options) (Key, error) {
	fail := func(err error) (Key, error) {
		return Key{}, fmt.Errorf("init repository %s: %w", st.URL(), err)
	}
	if opts.KeyFile == "" {
		return fail(fmt.Errorf("%w: no key file named: the key is the only way to read the backups, so Init writes it to a file you choose", ErrInvalid))
	}
	empty, err := isEmpty(ctx, st)
	if err != nil {
		return fail(err)
	}
	if !empty {
		return fail(fmt.Errorf("%w: the location is not empty; Init needs an empty directory, bucket or prefix (to use an existing repository, Open it)", ErrExists))
	}
	key, err := newKey()
	if err != nil {
		return fail(err)
	}
	var idb [16]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return fail(err)
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return fail(err)
	}
	cfg := config{
		Format:  FormatVersion,
		ID:      hex.EncodeToString(idb[:]),
		Created: opts.withDefaults().Now().UTC(),
		Chunker: chunkerConfig{MinSize: minChunkSize, AvgBits: avgBits, MaxSize: maxChunkSize},
	}
	// The key file comes first: a repository must never exist without it.
	if err := WriteKeyFile(opts.KeyFile, key, fmt.Sprintf("strata backup repository %s\nat %s", cfg.ID, st.URL())); err != nil {
		return fail(err)
	}
	if err := writeRepoObjects(ctx, st, key, cfg, pol); err != nil {
		os.Remove(opts.KeyFile)
		return fail(err)
	}
	return key, nil
}

// writeRepoObjects stores the key-check, then the config: a location with
// a config is a repository, so the config goes last.
func writeRepoObjects(ctx context.Context, st Storage, key Key, cfg config, pol chunker.Pol) error {
	s, err := newSealer(key)
	if err != nil {
		return err
	}
	kc, err := json.Marshal(keyCheck{Repository: cfg.ID, Polynomial: pol})
	if err != nil {
		return err
	}
	sealed, _, err := s.seal(nil, nil, kc, keyCheckAD(cfg.ID), false)
	if err != nil {
		return err
	}
	if err := st.Put(ctx, keyCheckName, sealed); err != nil {
		return err
	}
	cb, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return st.Put(ctx, configName, append(cb, '\n'))
}

func keyCheckAD(id string) []byte { return []byte(keyCheckName + ":" + id) }

// isEmpty reports whether the storage holds no object at all.
func isEmpty(ctx context.Context, st Storage) (bool, error) {
	errFound := errors.New("found")
	err := st.List(ctx, "", func(ObjectInfo) error { return errFound })
	if errors.Is(err, errFound) {
		return false, nil
	}
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	return err == nil, err
}

// Open opens the repository at url with its key. A location without a
// repository is ErrNotFound, a key that is not the repository's
// ErrWrongKey, a repository of a newer strata ErrUnsupportedFormat.
func Open(ctx context.Context, url string, key Key) (*Repo, error) {
	st, err := OpenStorage(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	return OpenStorageRepo(ctx, st, key, Options{})
}

// OpenStorageRepo is Open on a Storage already opened, with options.
func OpenStorageRepo(ctx context.Context, st Storage, key Key, opts Options) (*Repo, error) {
	fail := func(err error) (*Repo, error) {
		return nil, fmt.Errorf("open repository %s: %w", st.URL(), err)
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return fail(err)
	}
	raw, err := st.Get(ctx, configName)
	if errors.Is(err, ErrNotFound) {
		return fail(fmt.Errorf("%w: no repository here (no config object); create one with Init", ErrNotFound))
	}
	if err != nil {
		return fail(err)
	}
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fail(fmt.Errorf("%w: config object: %w", ErrCorrupt, err))
	}
	if cfg.Format != FormatVersion {
		return fail(fmt.Errorf("%w: format %d; this strata reads format %d, upgrade strata to open it", ErrUnsupportedFormat, cfg.Format, FormatVersion))
	}
	if cfg.Chunker.MinSize == 0 || cfg.Chunker.MaxSize < cfg.Chunker.MinSize || cfg.Chunker.AvgBits < 10 || cfg.Chunker.AvgBits > 30 {
		return fail(fmt.Errorf("%w: config object: chunker sizes %+v", ErrCorrupt, cfg.Chunker))
	}
	s, err := newSealer(key)
	if err != nil {
		return fail(err)
	}
	sealed, err := st.Get(ctx, keyCheckName)
	if err != nil {
		return fail(err)
	}
	plain, _, err := s.open(nil, nil, sealed, keyCheckAD(cfg.ID))
	if errors.Is(err, ErrCorrupt) {
		return fail(fmt.Errorf("%w: the key does not open repository %s; use the key file Init wrote for it", ErrWrongKey, cfg.ID))
	}
	if err != nil {
		return fail(err)
	}
	var kc keyCheck
	if err := json.Unmarshal(plain, &kc); err != nil || kc.Repository != cfg.ID {
		return fail(fmt.Errorf("%w: key-check object does not belong to repository %s", ErrCorrupt, cfg.ID))
	}
	if kc.Polynomial == 0 || !kc.Polynomial.Irreducible() {
		return fail(fmt.Errorf("%w: key-check object: chunker polynomial %v is not irreducible", ErrCorrupt, kc.Polynomial))
	}
	return &Repo{
		st:      st,
		id:      cfg.ID,
		cfg:     cfg,
		pol:     kc.Polynomial,
		seal:    s,
		opts:    opts,
		exclude: exclusionFor(cfg.ID),
	}, nil
}
