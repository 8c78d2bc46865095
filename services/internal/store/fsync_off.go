//go:build loteria_nofsync

package store

// noFsync: this binary was built with -tags loteria_nofsync, for
// measuring what durability costs and for proving that the power-loss
// test catches a missing fsync. The store then never syncs anything: an
// acknowledged bet may be lost in a power cut. Open logs a warning.
const noFsync = true
