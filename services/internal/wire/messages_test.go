package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestAppendErrorAck(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		{"Invalid batch format: line 2: bad date", "error;Invalid batch format: line 2: bad date"},
		{"", "error;"},
		{"two\nlines", "error;two lines"},
		{"crlf\r\nend", "error;crlf  end"},
		{"Ñandú; inválido", "error;Ñandú; inválido"},
	}
	for _, tt := range tests {
		got := AppendErrorAck([]byte("x"), tt.msg)
		if string(got) != "x"+tt.want {
			t.Errorf("AppendErrorAck(%q) = %q, want %q", tt.msg, got[1:], tt.want)
		}
		err := ParseAck(got[1:])
		if !errors.Is(err, ErrAckRejected) {
			t.Errorf("ParseAck of our own error ack %q = %v, want ErrAckRejected", got[1:], err)
		} else if ae, ok := err.(*AckError); !ok || ae.Msg != tt.want[len("error;"):] {
			t.Errorf("ParseAck error %#v lost the message %q", err, tt.want[len("error;"):])
		}
	}
}

func TestParseAck(t *testing.T) {
	tests := []struct {
		in       string
		ok       bool
		rejected bool
	}{
		{"success;Batch stored successfully.", true, false},
		{AckSuccess, true, false},
		{"success;", true, false},
		{"success;otra redacción", true, false},
		{"error;Invalid batch format: line 1", false, true},
		{"error;", false, true},
		{"success", false, false},
		{"error", false, false},
		{"SUCCESS;Batch stored successfully.", false, false},
		{"", false, false},
		{"NO_WINNERS", false, false},
		{"12345678", false, false},
	}
	for _, tt := range tests {
		err := ParseAck([]byte(tt.in))
		switch {
		case tt.ok && err != nil:
			t.Errorf("ParseAck(%q) = %v, want success", tt.in, err)
		case !tt.ok && err == nil:
			t.Errorf("ParseAck(%q) = success, want an error", tt.in)
		case !tt.ok && errors.Is(err, ErrAckRejected) != tt.rejected:
			t.Errorf("ParseAck(%q) = %v; ErrAckRejected %v, want %v", tt.in, err, !tt.rejected, tt.rejected)
		}
	}
}

func TestWinners(t *testing.T) {
	tests := []struct {
		dnis []string
		want string
	}{
		{nil, "NO_WINNERS"},
		{[]string{}, "NO_WINNERS"},
		{[]string{"30904465"}, "30904465"},
		{[]string{"30904465", "1", "123456789012345678"}, "30904465;1;123456789012345678"},
		{[]string{"0"}, "0"},
	}
	for _, tt := range tests {
		got := AppendWinners([]byte("x"), tt.dnis)
		if string(got) != "x"+tt.want {
			t.Errorf("AppendWinners(%q) = %q, want %q", tt.dnis, got[1:], tt.want)
			continue
		}
		back, err := ParseWinners(got[1:])
		if err != nil {
			t.Errorf("ParseWinners(%q): %v", got[1:], err)
			continue
		}
		want := tt.dnis
		if want == nil {
			want = []string{}
		}
		if back == nil || !reflect.DeepEqual(back, want) {
			t.Errorf("ParseWinners(%q) = %#v, want %#v", got[1:], back, want)
		}
	}
}

func TestParseWinnersErrors(t *testing.T) {
	tests := []struct {
		in      string
		mention string // the error must say this
	}{
		{"", "empty"},
		{"error;the draw failed", "15-byte message"},
		{"error;", "error"},
		{"1;;2", "empty DNI"},
		{"1;", "empty DNI"},
		{";1", "empty DNI"},
		{"12a", "not decimal"},
		{"1;-2", "not decimal"},
		{"1 ;2", "not decimal"},
		{"NO_WINNERS;1", "not decimal"},
		{"no_winners", "not decimal"},
		{"30904465\n", "not decimal"},
		{"success;Batch stored successfully.", "not decimal"},
	}
	for _, tt := range tests {
		got, err := ParseWinners([]byte(tt.in))
		if err == nil {
			t.Errorf("ParseWinners(%q) = %q, want an error", tt.in, got)
			continue
		}
		if got != nil {
			t.Errorf("ParseWinners(%q) returned %q with its error", tt.in, got)
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("ParseWinners(%q) error %q does not mention %q", tt.in, err, tt.mention)
		}
	}
}
