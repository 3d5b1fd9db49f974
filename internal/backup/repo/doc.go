// Package repo is strata's backup repository: a content-addressed chunk
// store that keeps workload backups (VM disks, container volumes, writable
// layers, strata's own store file) deduplicated, compressed and encrypted,
// in a local directory or an S3 bucket.
//
// # Terms
//
//   - A repository is one location (file:///abs/path or
//     s3://bucket/prefix?endpoint=host:port, see ParseURL) holding a config
//     object, a key-check object, chunks and manifests. Init creates one;
//     Open opens it with its key. Nothing in a repository is ever changed in
//     place: objects are written whole under their final name (Storage.Put
//     is atomic) and later only deleted.
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
//     A Writer builds a backup file by file; Commit makes it exist.
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
// # Memory and concurrency
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
// Writers and garbage collection exclude each other within one process: GC
// waits for running Writers and new Writers wait for GC, so a Writer never
// reuses a chunk that GC is deleting. Two processes must not back up to and
// prune the same repository at the same time; strata runs one daemon per
// host and each host has its own repository or prefix.
package repo
