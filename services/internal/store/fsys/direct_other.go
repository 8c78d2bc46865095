//go:build !linux

package fsys

// direct is nothing where O_DIRECT is not: WriteDirectAt is WriteAt.
type direct struct{}

// WriteDirectAt implements DirectWriter: a plain write here.
func (o *osFile) WriteDirectAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }

func (direct) close() error { return nil }

func (direct) on() bool { return false }
