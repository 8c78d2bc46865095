//go:build !loteria_nofsync

package store

// noFsync is true only in binaries built with -tags loteria_nofsync.
const noFsync = false
