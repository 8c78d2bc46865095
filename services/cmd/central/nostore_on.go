//go:build loteria_nostore

package main

// nostore: this build's store acknowledges batches without writing them,
// for measuring what storage costs. Never for real use.
const nostore = true
