package faultfs

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"

	"github.com/loteria/loteria/services/internal/store/fsys"
)

func create(t *testing.T, f *FS, name string) fsys.File {
	t.Helper()
	h, err := f.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func write(t *testing.T, h fsys.File, s string, off int64) {
	t.Helper()
	if _, err := h.WriteAt([]byte(s), off); err != nil {
		t.Fatal(err)
	}
}

func TestCrashKeepsWhatWasSynced(t *testing.T) {
	f := New()
	if err := f.MkdirAll("/d", 0o700); err != nil {
		t.Fatal(err)
	}
	h := create(t, f, "/d/a")
	write(t, h, "synced", 0)
	h.Sync()
	f.SyncDir("/d")
	write(t, h, " not synced", 6)
	create(t, f, "/d/b") // entry never synced
	c := f.Crash(nil)
	got, err := c.ReadFile("/d/a")
	if err != nil || string(got) != "synced" {
		t.Fatalf("after the crash /d/a = %q, %v; want what was synced", got, err)
	}
	if _, err := c.ReadFile("/d/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file whose directory was never synced survived: %v", err)
	}
	if _, err := h.WriteAt([]byte("x"), 0); !errors.Is(err, ErrPowerLost) {
		t.Fatalf("a write after the crash: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close after the crash: %v", err)
	}
}

func TestCrashTearsUnsyncedBytes(t *testing.T) {
	seen := map[string]bool{}
	for seed := range uint64(200) {
		f := New()
		h := create(t, f, "/a")
		f.SyncDir("/")
		write(t, h, "head", 0)
		h.Sync()
		write(t, h, "TAIL", 4)
		got, _ := f.Crash(rand.New(rand.NewPCG(seed, 0))).ReadFile("/a")
		if !bytes.HasPrefix(got, []byte("head")) {
			t.Fatalf("seed %d: synced bytes lost: %q", seed, got)
		}
		rest := got[4:]
		k := 0
		for k < len(rest) && k < 4 && rest[k] == "TAIL"[k] {
			k++
		}
		seen[string(rest[:k])] = true
		if len(rest) > k && k < 4 && !seen["garbage"] {
			seen["garbage"] = true
		}
	}
	for _, want := range []string{"", "T", "TA", "TAI", "TAIL", "garbage"} {
		if !seen[want] {
			t.Errorf("200 crashes never left the unsynced part as %q", want)
		}
	}
}

func TestCrashOfUnsyncedTruncation(t *testing.T) {
	kept, cut := false, false
	for seed := range uint64(100) {
		f := New()
		h := create(t, f, "/a")
		f.SyncDir("/")
		write(t, h, "0123456789", 0)
		h.Sync()
		h.Truncate(4)
		got, _ := f.Crash(rand.New(rand.NewPCG(seed, 0))).ReadFile("/a")
		switch {
		case string(got) == "0123456789":
			kept = true
		case bytes.HasPrefix(got, []byte("0123")) && len(got) <= 4+16:
			cut = cut || len(got) == 4
		default:
			t.Fatalf("seed %d: after an unsynced truncation the file holds %q", seed, got)
		}
	}
	if !kept || !cut {
		t.Fatalf("an unsynced truncation: kept %v, reached the disk %v; want both to happen", kept, cut)
	}
}

func TestFaults(t *testing.T) {
	f := New()
	h := create(t, f, "/a")
	f.Inject(Fault{Op: OpWrite, Name: "/a", Nth: 2, Err: syscall.ENOSPC, Short: 2})
	write(t, h, "one", 0)
	n, err := h.WriteAt([]byte("two"), 3)
	if n != 2 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second write: %d, %v; want a short write of 2 and ENOSPC", n, err)
	}
	write(t, h, "three", 5) // the fault fired once
	if got, _ := f.ReadFile("/a"); string(got) != "onetwthree" {
		t.Fatalf("file = %q", got)
	}
	f.Inject(Fault{Op: OpSync, Name: "/a", Nth: 1, Sticky: true})
	for range 3 {
		if err := h.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("sticky sync fault: %v", err)
		}
	}
	f.ClearFaults()
	if err := h.Sync(); err != nil {
		t.Fatal(err)
	}
	f.SetFull(true)
	if _, err := h.WriteAt([]byte("more"), 10); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v", err)
	}
	write(t, h, "ON", 0) // overwriting takes no space
	f.SetFull(false)
	write(t, h, "more", 10)
	if c := f.Calls(OpWrite, "/a"); c != 6 {
		t.Fatalf("%d writes counted, want 6", c)
	}
}

func TestCrashAt(t *testing.T) {
	f := New()
	h := create(t, f, "/a")
	f.SyncDir("/")
	ch := f.CrashAt(3, nil)
	write(t, h, "a", 0)
	h.Sync()
	if _, err := h.WriteAt([]byte("b"), 1); !errors.Is(err, ErrPowerLost) {
		t.Fatalf("the third call: %v, want ErrPowerLost", err)
	}
	c := <-ch
	if got, _ := c.ReadFile("/a"); string(got) != "a" {
		t.Fatalf("after the cut: %q", got)
	}
}

func TestLockAndModes(t *testing.T) {
	f := New()
	l, err := f.Lock("/x.lock", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Lock("/x.lock", 0o600); !errors.Is(err, fsys.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	l.Close()
	if _, err := f.Lock("/x.lock", 0o600); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	f.MkdirAll("/p/q", 0o700)
	create(t, f, "/p/q/r")
	if st, _ := f.Stat("/p/q"); st.Mode().Perm() != 0o700 || !st.IsDir() {
		t.Fatalf("dir mode %v", st.Mode())
	}
	if st, _ := f.Stat("/p/q/r"); st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", st.Mode())
	}
	if _, err := f.OpenFile("/p/q/r", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
}
