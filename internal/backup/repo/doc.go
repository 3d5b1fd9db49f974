// Package repo is strata's backup repository: a content-addressed chunk
// store that keeps workload backups (VM disks, container volumes, writable
// layers, strata's own store file) deduplicated, compressed and encrypted,
// in a local directory or an S3 bucket.
//
// # Terms
//
//   - A repository is one location (file:///abs/path or
//     s3://bucket/prefix?endpoint=host:port, see ParseURL) holding a config
//     object, a key-check object, chunks, manifests and locks. Init creates
//     one; Open opens it with its key. Nothing in a repository is ever
//     changed in place: objects are written whole under their final name
//     (Storage.Put is atomic) and later only deleted. Only a lock is
//     written again, whole, by the process that holds it (see Locks).
//   - The key is 32 random bytes made by Init and handed to the caller, who
//     keeps it in a key file (WriteKeyFile, ReadKeyFile). Every chunk and
//     manifest is encrypted and authenticated with keys derived from it. The
//     repository does not hold the key: lose the key file and the backups
//     are lost; anyone with the key file and the storage can read them.
//   - A chunk is a piece of a file's content, cut by content-defined
//     chunking (a Rabin fingerprint over a sliding window; 512 KiB to 8 MiB,
//     about 1 MiB on average), so an edit in the middle of a file changes
//     only the chunks around it. A chunk's ID is the hex HMAC-SHA256 of its
//     plaintext under a key derived from the repository key: equal content
//     has equal IDs, which is the deduplication, and the storage cannot
//     learn content from IDs. A chunk is stored once, at chunks/<first two
//     hex digits>/<ID>, compressed with zstd and sealed with AES-256-GCM.
//   - A backup is a set of named files (a disk image, a tar stream of a
//     volume, a database file) taken together at one time, with the
//     caller's Meta (workloads, group, kind, labels, the workload's spec).
//     A Writer builds a backup file by file; Commit makes it exist. AddParts
//     builds a file from new data and from chunks of an earlier backup taken
//     without reading them; such a file has no SHA-256 in the manifest.
//   - A manifest records one backup: its ID, time, Meta, each file's name,
//     mode, size, SHA-256 and ordered chunk list, and upload statistics. It
//     is stored encrypted at backups/<time>-<ID>. The manifest is written
//     last, after every chunk it names is durable, so a backup is listed if
//     and only if it is complete. A Writer killed midway leaves only
//     unreferenced chunks, which the next backup reuses or GC removes.
//
// # Integrity
//
// Reading a chunk checks the GCM tag (the chunk's ID is the additional data,
// so a chunk copied under another chunk's name fails) and recomputes the ID
// from the plaintext. Reading a file checks its size and SHA-256 at the
// end. Failures wrap ErrCorrupt and name the chunk, the backup and the file.
// Verify reads a whole backup and reports every bad chunk with the files
// that use it.
//
// # Memory
//
// A Writer chunks and hashes one file at a time on the caller's goroutine
// and hands each chunk to Workers upload goroutines (default 4). At most
// Workers+2 chunks are in flight, each at most 8 MiB, and each worker holds
// a compressed and a sealed copy of its chunk: the worst case is about
// 8 MiB × (3×Workers + 2), 112 MiB with the default; with chunks of the
// usual 1 MiB it is a tenth of that. A Writer also holds the set of chunk
// IDs already stored, listed once when its first file starts: 32 bytes per
// chunk plus map overhead, about 60 MiB per million chunks (a terabyte of
// unique data). Readers fetch up to Workers chunks ahead of the one they
// return and hold at most Workers+2 chunks, plus a sealed copy of each
// chunk being fetched.
//
// # Locks
//
// Operations that add or read take a shared lock on the repository: a
// Writer from its first file until Commit or Abort, RestoreTo and Restore
// while they run, an OpenFile reader until Close, VerifyManifest and
// Verify. Operations that delete take an exclusive lock: Prune, GC and
// Delete. A lock is an object locks/<random ID>, sealed with the
// repository key like a manifest, saying which host and process holds it
// (host name, pid, a random per-process nonce, boot ID, process start
// time, Options.Holder), for which operation, whether it is exclusive,
// and when it was taken and last refreshed. To take one, a process writes
// its lock, then lists the locks; if a live one conflicts (any other lock
// for an exclusive lock, an exclusive one for a shared lock) it removes
// its own and fails with a *LockedError wrapping ErrLocked, which names
// the holder. Two processes that race may both fail, but neither proceeds
// while the other holds a conflicting lock.
//
// A held lock is rewritten every Options.LockRefresh (default 5 minutes)
// with a new refresh time. A lock not refreshed for Options.LockStaleAge
// (default 30 minutes) is stale; a lock of this host (same host name) is
// stale at once when its process has exited (its pid is gone, or now
// belongs to a later process) or the host has booted since. Stale locks
// do not count, and the next operation that takes a lock removes them, so
// a process killed with SIGKILL blocks others on its host not at all and
// on other hosts for at most the stale age. RemoveStaleLocks removes them
// on demand; RemoveLock removes one lock whatever its state (for a host
// that is gone for good). An operation whose lock cannot be refreshed, or
// was removed by another process, fails at once rather than go on without
// it: a Writer's next AddFile and its Commit return the reason.
//
// Within one process the locks never conflict with each other: an
// exclusive operation first waits for the process's Writers and readers
// (and holds new Writers back), and a Writer waits for the process's
// running or waiting exclusive operation, so GC never deletes a chunk a
// Writer of the same process is reusing. Readers wait only while one
// runs, so a reader never waits on a GC that waits for another reader.
// Hosts that share a repository must have distinct host names.
package repo
