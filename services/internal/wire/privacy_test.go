package wire_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// Markers that no message of ours contains by itself, one per field.
const (
	firstMark = "Qzxfirst" // 8 bytes, the size of a frame header
	lastMark  = "Qzxlast"
	docMark   = "31415926"
	dateMark  = "87-06-0" // inside 1987-06-05
	numMark   = "Qzxnum"
)

var markers = []string{firstMark, lastMark, docMark, dateMark, numMark}

func checkNoMarker(t *testing.T, what string, err error) {
	t.Helper()
	for _, m := range markers {
		if strings.Contains(err.Error(), m) {
			t.Errorf("%s: error %q quotes %q", what, err, m)
		}
	}
}

// badFields lists, per field, values that break it while carrying that
// field's marker; the separators among them break the line's structure.
func badFields() [wire.NumFields][]string {
	name := func(m string) []string {
		return []string{
			m + ";", m + ",", m + "\x00", m + "\t", m + "\x1b", m + "\x7f", m + "\r", m + "\n" + m,
			m + "\u0085", m + "\u2028", m + "\u2029", m + "\xff", m + "\xed\xa0\x80",
			strings.Repeat(m, 60000/len(m)), strings.Repeat(m, lottery.MaxNameBytes/len(m)+1), "",
		}
	}
	return [wire.NumFields][]string{
		name(firstMark),
		name(lastMark),
		{docMark + "00", "0" + docMark, docMark + "a", "-" + docMark, docMark + " ", docMark + ";1",
			strings.Repeat(docMark, 100), ""},
		{"1887-06-05", "2987-06-05", "1987-06-05T00", " 1987-06-05", "1987-06-05\x00", "1987/06/05",
			"87-06-05", "1987-06-0x", ""},
		{numMark, "7574" + numMark, "-" + numMark, "00007574", "10000", "7574;" + numMark, ""},
	}
}

// TestErrorsNeverQuoteBetFields sends bets whose every field carries a
// marker through every way a batch can be refused, by the parser (both
// ParseBatch and ReadBatch) or by the lottery's rules, and checks that no
// error repeats a marker.
func TestErrorsNeverQuoteBetFields(t *testing.T) {
	rules := lottery.NewRules(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	good := [wire.NumFields]string{firstMark, lastMark, docMark, "1987-06-05", "7574"}
	refused := 0
	bad := badFields()
	for field := range bad {
		for _, v := range bad[field] {
			f := good
			f[field] = v
			line := strings.Join(f[:], ";")
			for _, payload := range []string{
				"1;1\n" + line + "\n",
				"3;2;seq=9\n" + strings.Join(good[:], ";") + "\n" + line,
				line + "\n", // no header: the bet line is taken for one
			} {
				why := func() error {
					_, bets, err := wire.ParseBatch([]byte(payload), nil)
					if err != nil {
						return err
					}
					for _, b := range bets {
						if _, err := rules.ValidateFields(b[0], b[1], b[2], b[3], b[4]); err != nil {
							return err
						}
					}
					return nil
				}()
				if why == nil {
					t.Errorf("field %d = %q: batch %q accepted", field, v, payload)
					continue
				}
				refused++
				checkNoMarker(t, "ParseBatch + ValidateFields", why)

				// The line-by-line reader says the same things.
				_, r, err := wire.ReadBatch([]byte(payload))
				for err == nil {
					var bf wire.BetFields
					var more bool
					if more, err = r.Next(&bf); !more {
						break
					}
					_, err = rules.ValidateFields(bf[0], bf[1], bf[2], bf[3], bf[4])
				}
				if err == nil {
					t.Errorf("ReadBatch: batch %q accepted", payload)
					continue
				}
				checkNoMarker(t, "ReadBatch", err)
			}
		}
	}
	if refused < 100 {
		t.Fatalf("only %d refusals exercised", refused)
	}
}

// TestHeaderAndMessageErrorsNeverQuote covers the errors about bytes out
// of step with the frames: a header that is part of a bet line, acks and
// winners lists that are not what was expected.
func TestHeaderAndMessageErrorsNeverQuote(t *testing.T) {
	cases := []struct {
		name string
		err  func() error
	}{
		{"frame header that is a name", func() error { _, err := wire.ParseHeader([]byte(firstMark)); return err }},
		{"batch header that is a bet", func() error {
			_, _, err := wire.ParseBatch([]byte(firstMark+";"+lastMark+"\n"), nil)
			return err
		}},
		{"batch header without separator", func() error { _, _, err := wire.ParseBatch([]byte(firstMark+"\n"), nil); return err }},
		{"agency that is a DNI", func() error { _, _, err := wire.ParseBatch([]byte(docMark+"0000;1\n"), nil); return err }},
		{"count that is a name", func() error { _, _, err := wire.ParseBatch([]byte("1;"+lastMark+"\n"), nil); return err }},
		{"seq that is a name", func() error { _, _, err := wire.ParseBatch([]byte("1;0;seq="+firstMark+"\n"), nil); return err }},
		{"from that is a DNI", func() error { _, _, err := wire.ParseBatch([]byte("1;0;from="+docMark+"x\n"), nil); return err }},
		{"round that is a date", func() error { _, _, err := wire.ParseBatch([]byte("1;0;round=1987-06-05\n"), nil); return err }},
		{"ack that is a winners list", func() error { return wire.ParseAck([]byte(docMark + ";" + docMark)) }},
		{"winners with a bad DNI", func() error { _, err := wire.ParseWinners([]byte("1;" + docMark + "x")); return err }},
		{"winners with an empty DNI", func() error { _, err := wire.ParseWinners([]byte(docMark + ";;1")); return err }},
		{"winners that is a name", func() error { _, err := wire.ParseWinners([]byte(firstMark)); return err }},
		{"HELLO answered with DNIs", func() error { _, err := wire.ParseWelcome([]byte(docMark)); return err }},
		// A peer's HELLO, or a central's WELCOME and WINNERS, whose values
		// are bet fields (a buggy or hostile peer): described, not quoted.
		{"HELLO v that is a name", func() error {
			_, err := wire.ParseHello([]byte("HELLO;v=" + firstMark + ";agency=1;fp=ab"))
			return err
		}},
		{"HELLO agency that is a DNI", func() error {
			_, err := wire.ParseHello([]byte("HELLO;v=1;agency=" + docMark + "0000;fp=ab"))
			return err
		}},
		{"HELLO round that is a date", func() error {
			_, err := wire.ParseHello([]byte("HELLO;v=1;agency=1;fp=ab;round=1987-06-05"))
			return err
		}},
		{"HELLO total that is a bet", func() error {
			_, err := wire.ParseHello([]byte("HELLO;v=1;agency=1;fp=ab;total=" + firstMark + " " + lastMark + " " + docMark + " 1987-06-05"))
			return err
		}},
		{"HELLO fp that is a name", func() error { _, err := wire.ParseHello([]byte("HELLO;v=1;agency=1;fp=" + lastMark)); return err }},
		{"WELCOME mark that is a DNI", func() error {
			_, err := wire.ParseWelcome([]byte("WELCOME;v=1;agency=1;round=1;state=open;mark=" + docMark + "x"))
			return err
		}},
		{"WELCOME fields that are a bet", func() error { _, err := wire.ParseWelcome([]byte("WELCOME" + firstMark + ";" + docMark)); return err }},
		{"WINNERS round that is a name", func() error {
			_, err := wire.ParseWinnersMessage([]byte("WINNERS;round=" + firstMark + ";number=7574\n1"))
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			if err == nil {
				t.Fatal("accepted")
			}
			checkNoMarker(t, c.name, err)
		})
	}
}

// TestAckErrorNeverRepeatsThePeer: an error ack's text is the peer's and
// may quote anything; its Error says the code, the line it names and its
// size, never the text.
func TestAckErrorNeverRepeatsThePeer(t *testing.T) {
	tests := []struct {
		ack      string
		code     string
		line     int // 0: none
		wantText string
	}{
		{"error;invalid: line 3: document " + docMark + " of " + firstMark, "invalid", 3, "(code invalid, line 3, a "},
		{"error;malformed: line 12: " + lastMark + " has a ';'", "malformed", 12, "(code malformed, line 12, a "},
		{"error;busy: at the connection limit " + numMark, "busy", 0, "(code busy, a "},
		{"error;" + firstMark + " " + docMark, "", 0, "(no code, a "},
		{"error;line 7: " + dateMark, "", 7, "(no code, line 7, a "},
		{"error;invalid: line 1234567890123: x", "invalid", 0, "(code invalid, a "},
		{"error;invalid: line 0: x", "invalid", 0, "(code invalid, a "},
		{"error;invalid: line 5", "invalid", 0, "(code invalid, a "},
		{"error;qzxfirst_qzxlast: line 2: x", "qzxfirst_qzxlast", 2, "(a code this agency does not know, 16 bytes, line 2, a "},
		{"error;" + strings.Repeat("x", 5000) + ": x", strings.Repeat("x", 5000), 0, "(a code this agency does not know, 5000 bytes, a 5003-byte"},
	}
	for _, tt := range tests {
		err := wire.ParseAck([]byte(tt.ack))
		ae, ok := err.(*wire.AckError)
		if !ok {
			t.Fatalf("%q: ParseAck = %v, want an *AckError", tt.ack, err)
		}
		checkNoMarker(t, tt.ack, err)
		if strings.Contains(strings.ToLower(err.Error()), "qzx") || len(err.Error()) > 200 {
			t.Errorf("%q: error %q repeats the peer's words", tt.ack[:min(len(tt.ack), 40)], err.Error()[:min(len(err.Error()), 200)])
		}
		if tt.code != "" && !wire.KnownCode(tt.code) && ae.ShownCode() != "unknown" {
			t.Errorf("%q: ShownCode() = %q, want unknown", tt.ack[:min(len(tt.ack), 40)], ae.ShownCode())
		}
		if ae.Code != tt.code || !strings.Contains(err.Error(), tt.wantText) {
			t.Errorf("%.40q: code %.40q, error %q; want code %.40q and %q", tt.ack, ae.Code, err, tt.code, tt.wantText)
		}
		if n, ok := ae.Line(); (tt.line != 0) != ok || n != tt.line {
			t.Errorf("%q: Line() = %d, %v; want %d", tt.ack, n, ok, tt.line)
		}
	}
}

// TestAckErrorDoesNotSayWhatItAnswered: an error ack answers a batch, a
// HELLO or an END, and only the caller knows which, so its text claims
// none of them ("central rejected the batch" was what a refused HELLO
// printed).
func TestAckErrorDoesNotSayWhatItAnswered(t *testing.T) {
	for _, ack := range []string{"error;agency: not this connection's", "error;version: 9", "error;round: none", "error;closed: drawn"} {
		err := wire.ParseAck([]byte(ack))
		if !errors.Is(err, wire.ErrAckRejected) {
			t.Fatalf("%q: ParseAck = %v, want it to wrap ErrAckRejected", ack, err)
		}
		for _, word := range []string{"batch", "HELLO", "END"} {
			if strings.Contains(err.Error(), word) {
				t.Errorf("%q: %q says %q: the caller says what was answered", ack, err, word)
			}
		}
	}
}
