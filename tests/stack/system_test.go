package stack

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// TestAgencyPrintsWinnersWhileLingering: an agency's result is its winners
// line on stdout; --linger only keeps /metrics up afterwards, so the line
// must not wait for the linger to end. One agency, three bets.
func TestAgencyPrintsWinnersWhileLingering(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the system")
	}
	dir := t.TempDir()
	bets := "Ana,Pérez,30904465,1999-03-17,7574\n" +
		"Luis,Gómez,21689196,2000-05-10,9325\n" +
		"Eva,Ruiz,34407251,2001-08-29,7574\n"
	if err := os.WriteFile(testenv.AgencyFile(dir, 1), []byte(bets), 0o644); err != nil {
		t.Fatal(err)
	}
	sys := RunSystem(t, SystemOptions{Agencies: 1, DataDir: dir, Linger: time.Minute})
	a := sys.Agencies[0]
	if a.WinnersCount != 2 {
		t.Errorf("agency logged %d winners, want 2", a.WinnersCount)
	}
	// WaitWinners returned on the consulta_ganadores log record; the stdout
	// line should follow at once, not a minute later.
	Poll(t, 5*time.Second, "the winners line on stdout while the agency lingers", func() error {
		ok, err := a.PrintedWinners()
		if err != nil || ok {
			return err
		}
		return errNotYet
	})
	if want := []string{"30904465", "34407251"}; !slices.Equal(a.Winners, want) {
		t.Errorf("agency printed winners %v, want %v", a.Winners, want)
	}
}
