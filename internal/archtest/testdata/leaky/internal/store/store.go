// Package store keeps records in the storage module.
package store

import "example.com/kvstore"

// Open opens the store.
func Open() { kvstore.Open() }
