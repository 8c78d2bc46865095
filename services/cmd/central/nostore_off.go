//go:build !loteria_nostore

package main

// nostore is set only in a measurement-only build (-tags loteria_nostore)
// whose store acknowledges batches without writing them: the load tool and
// scripts/bench-compare.sh use it to price storage. A central built
// normally can never run so: no setting turns it on.
const nostore = false
