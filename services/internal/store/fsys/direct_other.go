//go:build !linux

package fsys

// direct is nothing where O_DIRECT is not: WriteDirectAt is WriteAt.
type direct struct{}

// WriteDirectAt implements DirectWriter: a plain write here.
func (o *osFile) WriteDirectAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }

// DirectOff implements DirectWriter: nothing is refused where nothing is
// tried.
func (o *osFile) DirectOff() error { return nil }

func (direct) close() error { return nil }

func (direct) on() bool { return false }
