// Package store is strata's embedded object store: the daemon's record of
// what users asked for (spec) and what controllers observed (status), kept in
// one bbolt file, with optimistic concurrency and a watch that streams
// changes.
//
// The store is generic: it knows nothing of Workloads or Segments. Callers
// marshal their spec and status to JSON and the store keeps the bytes, so
// every kind (Workload, Segment, and later Snapshot or Backup) uses the same
// code.
//
// # Terms
//
//   - Kind names a type of object ("Workload", "Segment"). Name identifies an
//     object within its kind. The pair (kind, name) is the object's key; no
//     two live objects share a key. Kinds and names are 1 to 253 bytes of
//     printable ASCII other than space and '/'; stricter rules (DNS labels)
//     belong to the API layer.
//   - A write is a successful Create, Update, UpdateStatus or Delete that
//     changes something. An Update or UpdateStatus whose result equals the
//     stored object is not a write: it returns the stored object unchanged,
//     takes no revision and emits no event, so controllers may write the same
//     status over and over without churn.
//   - The revision is a store-wide counter. Every write adds exactly one to it
//     and is identified by the revision it produced. A new store is at
//     revision 0. The revision is kept in the file, so it never goes back,
//     not even across restarts.
//   - An object's ResourceVersion is the revision of the last write to it.
//     Update, UpdateStatus and Delete take the ResourceVersion the caller
//     read; if the object was written since, they fail with ErrConflict and
//     change nothing (optimistic concurrency: get, change, write, and retry on
//     conflict).
//   - An object's Generation counts changes to its spec. It is 1 after
//     Create, and Update adds one only when the spec bytes change. Status,
//     label and annotation changes leave it alone, so a controller compares
//     Generation with the generation it last acted on to know whether there
//     is new desired state.
//   - An Event reports one write: Added (Create), Modified (Update,
//     UpdateStatus) or Deleted. The event carries the object as that write
//     left it, with the write's revision as ResourceVersion (for Deleted,
//     the object as it was, stamped with the deleting revision).
//   - The history holds the events of the most recent writes, in memory and
//     in revision order; Options.WatchHistory bounds their number and
//     Options.WatchHistoryBytes the memory they hold. It starts empty
//     when the store opens: watch history does not survive a restart.
//
// # JSON
//
// Spec and Status must be valid JSON. The store compacts them (drops
// insignificant white space) before storing and comparing, and treats
// empty and "null" alike as absent. Changes are detected by comparing the
// compacted bytes, so callers should marshal deterministically (encoding/json
// does).
//
// # Watching
//
// Watch(ctx, kind, rv) delivers, in revision order, every event of that
// kind (or of every kind, for "") with a revision greater than rv: first the
// ones still in the history, then new ones as they happen. The usual pattern
// is List, then Watch from the revision List returned; nothing is missed
// and nothing is seen twice. If the history no longer reaches back to rv
// (the store restarted, or more than the history holds was written since), or
// rv is newer than the store (the file was replaced by an older copy), Watch
// fails with ErrTooOld and the caller lists again, like a Kubernetes client
// after 410 Gone.
//
// Writers never wait for watchers. Each watcher reads the shared history at
// its own pace; one that falls so far behind that the events it still needs
// have left the history receives a final event of type Error whose Err
// wraps ErrTooOld, and then its channel is closed. The channel is also
// closed, without an Error event, when ctx ends or the store is closed.
//
// # Durability
//
// A write is acknowledged when its method returns nil. By then the bbolt
// transaction has been committed and fsynced, so the write survives the
// process being killed at any moment, and the file opens cleanly
// afterwards. A new store file is built under a temporary name and linked
// into place, so even a crash during the very first Open leaves either no
// store or a complete one. One process uses a store at a time: Open takes
// an exclusive lock on the file and fails with ErrInUse if another process
// holds it.
package store
