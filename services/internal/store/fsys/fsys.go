// Package fsys is the file layer under the store: the few operations it
// needs, so that tests can run the store over an in-memory file system
// that injects faults and simulates power loss (package faultfs), and the
// real implementation (OS) over the operating system.
package fsys

import (
	"errors"
	"io/fs"
	"os"
)

// ErrLocked is what Lock returns (wrapped) when another holder has the lock.
var ErrLocked = errors.New("locked by another holder")

// FS is a file system. Paths are as the caller gives them.
type FS interface {
	// OpenFile opens name with os.O_* flags, creating it with perm.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename moves oldname to newname, replacing it.
	Rename(oldname, newname string) error
	// Remove removes a file.
	Remove(name string) error
	// Stat describes a file; a missing one gives an error wrapping
	// fs.ErrNotExist.
	Stat(name string) (fs.FileInfo, error)
	// MkdirAll creates dir and its parents with perm.
	MkdirAll(dir string, perm fs.FileMode) error
	// SyncDir makes dir's entries (created, renamed, removed files) durable.
	SyncDir(dir string) error
	// Lock opens (creating with perm) and exclusively locks name without
	// waiting: an error wrapping ErrLocked when someone holds it. Closing
	// the returned file releases the lock.
	Lock(name string, perm fs.FileMode) (File, error)
}

// File is an open file. Writes go at explicit offsets, so that a rollback
// (Truncate) never leaves a file offset pointing past the end.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	// Sync makes the file's data and size durable (fdatasync).
	Sync() error
	// Size is the file's current size.
	Size() (int64, error)
	Close() error
}

// OS is the real file system.
type OS struct{}

var _ FS = OS{}

// OpenFile implements FS.
func (OS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

// Rename implements FS.
func (OS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// Remove implements FS.
func (OS) Remove(name string) error { return os.Remove(name) }

// Stat implements FS.
func (OS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// MkdirAll implements FS.
func (OS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

// SyncDir implements FS.
func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock implements FS with flock(LOCK_EX|LOCK_NB): the lock belongs to the
// open file, so a second Lock in the same process fails too, and the
// kernel releases it when the process dies.
func (OS) Lock(name string, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, err
	}
	return &osFile{f: f}, nil
}

// DirectWriter is a File that can write a large span without copying it
// into the page cache. OS's files are DirectWriters; faultfs's are too,
// as plain writes (what a power cut keeps is the same); a caller uses
// WriteAt for a File that is not.
type DirectWriter interface {
	// WriteDirectAt is WriteAt, with the same result in the file and the
	// same durability (none before Sync), for a write worth sending to the
	// device from the caller's memory: the whole file-system blocks it
	// covers bypass the page cache where the file system allows it (the
	// partial blocks at its two ends are written as WriteAt writes them),
	// and it is WriteAt where it does not. It is meant for large writes
	// (tens of KiB and more) that nothing reads back soon.
	WriteDirectAt(p []byte, off int64) (int, error)
	// DirectOff says why WriteDirectAt now writes through the page cache:
	// the file system refused to bypass it (at the open of the second
	// descriptor or at a write). It is nil while no refusal is known,
	// and where bypassing is never tried.
	DirectOff() error
}

var _ DirectWriter = (*osFile)(nil)

type osFile struct {
	f   *os.File
	dio direct // the state of WriteDirectAt (direct_*.go)
}

func (o *osFile) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, off) }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o *osFile) Sync() error                              { return datasync(o.f) }
func (o *osFile) Close() error {
	err := o.f.Close()
	if derr := o.dio.close(); err == nil {
		err = derr
	}
	return err
}

func (o *osFile) Size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
