package testenv

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddrsDistinctAndBelowEphemeral: the addresses of one draw are
// distinct, bindable, and outside the range the kernel gives outgoing
// connections (where a client of another test could take one first).
func TestFreeAddrsDistinctAndBelowEphemeral(t *testing.T) {
	lo, hi := portsBelowEphemeral()
	if hi <= lo {
		t.Skip("the ephemeral range leaves no ports below it on this machine")
	}
	addrs := FreeAddrs(t, 200)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s drawn twice in one draw", a)
		}
		seen[a] = true
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port < lo || port >= hi {
			t.Errorf("%s is outside [%d, %d), below the ephemeral range", a, lo, hi)
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is not free after the draw: %v", a, err)
			continue
		}
		ln.Close()
	}
}

// TestFreeAddrsNeverTwice: a port handed out once is not handed out again,
// though it is free (nothing bound it yet): the program it was drawn for
// may bind it later.
func TestFreeAddrsNeverTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 300 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
}
