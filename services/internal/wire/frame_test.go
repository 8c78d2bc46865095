package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// readerKinds wrap a stream so every test also runs over short reads.
var readerKinds = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one-byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data-err", iotest.DataErrReader},
}

// hdr is the header the seed's client writes: "%08d".
func hdr(n int) string { return fmt.Sprintf("%08d", n) }

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"00000000", 0, false},
		{"00000034", 34, false},
		{"00008192", 8192, false},
		{"99999999", MaxHeaderValue, false},
		{"12345678", 12345678, false},
		{"0000003a", 0, true},
		{" 0000034", 0, true},
		{"0000034 ", 0, true},
		{"-0000001", 0, true},
		{"+0000001", 0, true},
		{"0x000010", 0, true},
		{"0000\x0034", 0, true},
		{"0000034", 0, true},   // 7 bytes
		{"000000034", 0, true}, // 9 bytes
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseHeader([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrBadHeader) {
					t.Fatalf("ParseHeader(%q) = %d, %v; want ErrBadHeader", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseHeader(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPutHeader(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 34, 99, 100, 8192, 65536, 1234567, 12345678, MaxHeaderValue} {
		h := make([]byte, HeaderLen+2)
		h[HeaderLen], h[HeaderLen+1] = 'x', 'y'
		PutHeader(h, n)
		if got, want := string(h), hdr(n)+"xy"; got != want {
			t.Errorf("PutHeader(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReadFrame(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string // payloads read before the error
		wantErr error    // error of the read after them
	}{
		{name: "END", in: "00000003END", max: 64, want: []string{"END"}, wantErr: io.EOF},
		{name: "empty payload", in: "00000000", max: 64, want: []string{""}, wantErr: io.EOF},
		{name: "clean EOF", in: "", max: 64, wantErr: io.EOF},
		{name: "two frames", in: "00000005hello00000003END", max: 64, want: []string{"hello", "END"}, wantErr: io.EOF},
		{name: "utf-8 payload counts bytes", in: hdr(len("1;1\nÑandú;Pérez;1;2000-01-01;1\n")) + "1;1\nÑandú;Pérez;1;2000-01-01;1\n", max: 64,
			want: []string{"1;1\nÑandú;Pérez;1;2000-01-01;1\n"}, wantErr: io.EOF},
		{name: "size equal to max", in: "00000005hello", max: 5, want: []string{"hello"}, wantErr: io.EOF},
		{name: "size one over max", in: "00000006hello!", max: 5, wantErr: ErrFrameTooLarge},
		{name: "max zero, empty frame", in: "00000000", max: 0, want: []string{""}, wantErr: io.EOF},
		{name: "declared far beyond max, no payload", in: "99999999", max: 8192, wantErr: ErrFrameTooLarge},
		{name: "declared beyond max after a good frame", in: "00000003END00100000", max: 8192, want: []string{"END"}, wantErr: ErrFrameTooLarge},
		{name: "truncated header", in: "0000", max: 64, wantErr: ErrTruncatedFrame},
		{name: "truncated header, 7 bytes", in: "0000000", max: 64, wantErr: ErrTruncatedFrame},
		{name: "header, no payload", in: "00000005", max: 64, wantErr: ErrTruncatedFrame},
		{name: "truncated payload", in: "00000005abc", max: 64, wantErr: ErrTruncatedFrame},
		{name: "truncated second frame", in: "00000003END00000003EN", max: 64, want: []string{"END"}, wantErr: ErrTruncatedFrame},
		{name: "non-digit header", in: "0000003aEND", max: 64, wantErr: ErrBadHeader},
		{name: "spaces", in: "       3END", max: 64, wantErr: ErrBadHeader},
		{name: "negative", in: "-0000001x", max: 64, wantErr: ErrBadHeader},
		{name: "plus sign", in: "+0000003END", max: 64, wantErr: ErrBadHeader},
		{name: "binary length", in: "\x00\x00\x00\x00\x00\x00\x00\x03END", max: 64, wantErr: ErrBadHeader},
		{name: "text instead of a frame", in: "GET / HTTP/1.1\r\n\r\n", max: 64, wantErr: ErrBadHeader},
	}
	for _, tt := range tests {
		for _, rk := range readerKinds {
			t.Run(tt.name+"/"+rk.name, func(t *testing.T) {
				br := bufio.NewReaderSize(rk.wrap(strings.NewReader(tt.in)), 16)
				var buf []byte
				for i, want := range tt.want {
					got, err := ReadFrame(br, buf[:0], tt.max)
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if string(got) != want {
						t.Fatalf("frame %d = %q, want %q", i, got, want)
					}
					buf = got
				}
				got, err := ReadFrame(br, buf[:0], tt.max)
				if got != nil {
					t.Errorf("payload %q returned with error %v", got, err)
				}
				if tt.wantErr == io.EOF {
					if err != io.EOF { // exactly io.EOF, as io.Reader users expect
						t.Fatalf("err = %v, want io.EOF itself", err)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}

	t.Run("reader error mid-payload is passed on", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader("00000010abc"), iotest.ErrReader(errBoom))
		_, err := ReadFrame(bufio.NewReader(r), nil, 64)
		if !errors.Is(err, errBoom) || errors.Is(err, ErrTruncatedFrame) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
	t.Run("reader error mid-header is passed on", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader("0000"), iotest.ErrReader(errBoom))
		_, err := ReadFrame(bufio.NewReader(r), nil, 64)
		if !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
	t.Run("reader error before a frame is passed on", func(t *testing.T) {
		_, err := ReadFrame(bufio.NewReader(iotest.ErrReader(errBoom)), nil, 64)
		if !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
	t.Run("timeout reader", func(t *testing.T) {
		// The second Read fails: the header arrived whole, the payload did not.
		r := iotest.TimeoutReader(strings.NewReader("00000004"))
		_, err := ReadFrame(bufio.NewReaderSize(r, 16), nil, 64)
		if !errors.Is(err, iotest.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})
}

// failAfter serves data, then fails the test if asked for more.
type failAfter struct {
	t    *testing.T
	data []byte
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		f.t.Error("read past the header of a frame that is too large")
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadFrameTooLargeReadsAndAllocatesNothing(t *testing.T) {
	for _, rk := range readerKinds[:3] {
		t.Run(rk.name, func(t *testing.T) {
			br := bufio.NewReaderSize(rk.wrap(&failAfter{t: t, data: []byte("99999999")}), 16)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p, err := ReadFrame(br, nil, 1<<16)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrFrameTooLarge) || p != nil {
				t.Fatalf("ReadFrame = %d bytes, %v; want ErrFrameTooLarge", len(p), err)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
				t.Fatalf("allocated %d bytes for a frame refused by its header", d)
			}
		})
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	payload := strings.Repeat("x", 300)
	stream := []byte(hdr(len(payload)) + payload)
	rd := bytes.NewReader(stream)
	br := bufio.NewReaderSize(rd, 4096)
	buf := make([]byte, 0, 512)
	got, err := ReadFrame(br, buf, 1024)
	if err != nil || string(got) != payload {
		t.Fatalf("ReadFrame = %q, %v", got, err)
	}
	if &got[0] != &buf[:1][0] {
		t.Fatal("payload not read into the buffer passed in, though it fits")
	}

	small := make([]byte, 0, 10)
	rd.Reset(stream)
	br.Reset(rd)
	got, err = ReadFrame(br, small, 1024)
	if err != nil || string(got) != payload {
		t.Fatalf("ReadFrame with a small buffer = %q, %v", got, err)
	}

	allocs := testing.AllocsPerRun(200, func() {
		rd.Reset(stream)
		br.Reset(rd)
		p, err := ReadFrame(br, buf[:0], 1024)
		if err != nil || len(p) != len(payload) {
			t.Fatalf("ReadFrame: %d bytes, %v", len(p), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ReadFrame with a reused buffer: %v allocs per frame, want 0", allocs)
	}
}

func TestReadHeaderThenPayload(t *testing.T) {
	for _, rk := range readerKinds {
		t.Run(rk.name, func(t *testing.T) {
			br := bufio.NewReaderSize(rk.wrap(strings.NewReader("00000005hello00000000"+"00000009")), 16)
			size, err := ReadHeader(br, 16)
			if err != nil || size != 5 {
				t.Fatalf("ReadHeader = %d, %v; want 5", size, err)
			}
			p, err := ReadPayload(br, nil, size)
			if err != nil || string(p) != "hello" {
				t.Fatalf("ReadPayload = %q, %v", p, err)
			}
			size, err = ReadHeader(br, 16)
			if err != nil || size != 0 {
				t.Fatalf("ReadHeader = %d, %v; want 0", size, err)
			}
			p, err = ReadPayload(br, nil, size)
			if err != nil || len(p) != 0 {
				t.Fatalf("ReadPayload(0) = %q, %v", p, err)
			}
			size, err = ReadHeader(br, 16)
			if err != nil || size != 9 {
				t.Fatalf("ReadHeader = %d, %v; want 9", size, err)
			}
			_, err = ReadPayload(br, nil, size)
			if !errors.Is(err, ErrTruncatedFrame) {
				t.Fatalf("ReadPayload at EOF: %v, want ErrTruncatedFrame", err)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, payload := range []string{"", "END", "1;1\nJosé;Ñúñez;1;2000-02-29;7574\n", strings.Repeat("é", 5000)} {
		prefix := "prefix"
		got := AppendFrame([]byte(prefix), []byte(payload))
		want := prefix + hdr(len(payload)) + payload
		if string(got) != want {
			t.Fatalf("AppendFrame = %q, want %q", got, want)
		}
		// BeginFrame/FinishFrame build the same frame in place.
		b := BeginFrame([]byte(prefix))
		b = append(b, payload...)
		FinishFrame(b[len(prefix):])
		if string(b) != want {
			t.Fatalf("BeginFrame/FinishFrame = %q, want %q", b, want)
		}
		// And it reads back.
		br := bufio.NewReader(iotest.OneByteReader(bytes.NewReader(got[len(prefix):])))
		p, err := ReadFrame(br, nil, len(payload))
		if err != nil || string(p) != payload {
			t.Fatalf("read back %q, %v", p, err)
		}
	}
}

// shortWriter writes at most n bytes per call.
type shortWriter struct {
	n     int
	buf   bytes.Buffer
	calls int
}

func (w *shortWriter) Write(p []byte) (int, error) {
	w.calls++
	if len(p) > w.n {
		p = p[:w.n]
	}
	return w.buf.Write(p)
}

type zeroWriter struct{}

func (zeroWriter) Write([]byte) (int, error) { return 0, nil }

type errWriter struct {
	after int // bytes accepted before failing
	err   error
}

func (w *errWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, w.err
	}
	n := min(len(p), w.after)
	w.after -= n
	return n, nil
}

func TestWriteFull(t *testing.T) {
	data := []byte("00000034" + strings.Repeat("ñ", 17))
	for _, n := range []int{1, 2, 3, 7, 8, 1000} {
		t.Run(fmt.Sprint("max ", n, " per write"), func(t *testing.T) {
			w := &shortWriter{n: n}
			if err := WriteFull(w, data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.buf.Bytes(), data) {
				t.Fatalf("wrote %q, want %q", w.buf.Bytes(), data)
			}
			if want := (len(data) + n - 1) / n; w.calls != want {
				t.Fatalf("%d writes, want %d", w.calls, want)
			}
		})
	}
	t.Run("nothing to write", func(t *testing.T) {
		w := &shortWriter{n: 1}
		if err := WriteFull(w, nil); err != nil || w.calls != 0 {
			t.Fatalf("WriteFull(nil) = %v after %d writes", err, w.calls)
		}
	})
	t.Run("writer making no progress", func(t *testing.T) {
		if err := WriteFull(zeroWriter{}, data); !errors.Is(err, io.ErrShortWrite) {
			t.Fatalf("err = %v, want io.ErrShortWrite", err)
		}
	})
	t.Run("writer failing midway", func(t *testing.T) {
		boom := errors.New("boom")
		if err := WriteFull(&errWriter{after: 5, err: boom}, data); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
	})
}

func TestWriteFrameRoundTrip(t *testing.T) {
	payloads := []string{"1;2\nA;B;1;2000-01-01;1\nC;D;2;2000-01-02;2\n", "", "END", strings.Repeat("Ñ", 4000)}
	for _, n := range []int{1, 3, 5, 4096} {
		w := &shortWriter{n: n}
		var want bytes.Buffer
		for _, p := range payloads {
			if err := WriteFrame(w, []byte(p)); err != nil {
				t.Fatal(err)
			}
			want.WriteString(hdr(len(p)) + p)
		}
		if !bytes.Equal(w.buf.Bytes(), want.Bytes()) {
			t.Fatalf("short writes of %d: stream differs", n)
		}
		for _, rk := range readerKinds {
			br := bufio.NewReaderSize(rk.wrap(bytes.NewReader(w.buf.Bytes())), 16)
			for i, p := range payloads {
				got, err := ReadFrame(br, nil, 1<<16)
				if err != nil || string(got) != p {
					t.Fatalf("%s: frame %d = %q, %v", rk.name, i, got, err)
				}
			}
			if _, err := ReadFrame(br, nil, 1<<16); err != io.EOF {
				t.Fatalf("%s: after the last frame: %v, want io.EOF", rk.name, err)
			}
		}
	}
}

// FuzzReadFrame reads frames from arbitrary bytes until an error: it must
// never panic, never hand out more than max bytes, fail only with the
// documented errors, and every frame it accepts must re-encode to exactly
// the bytes it was read from.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("00000003END"), uint16(64), false)
	f.Add([]byte("00000003END"), uint16(64), true)
	f.Add([]byte("00000000"), uint16(0), false)
	f.Add([]byte("00000005hello00000003END"), uint16(5), true)
	f.Add([]byte("0000"), uint16(64), false)
	f.Add([]byte("00000005abc"), uint16(64), true)
	f.Add([]byte("99999999"), uint16(8192), false)
	f.Add([]byte("-0000001"), uint16(64), false)
	f.Add([]byte(" 0000003END"), uint16(64), false)
	f.Add([]byte("00000034"+"1;1\nJosé;Ñúñez;12;2000-02-29;7574\n"[:34]), uint16(8192), true)
	f.Add([]byte{}, uint16(1), false)
	f.Fuzz(func(t *testing.T, data []byte, max16 uint16, oneByte bool) {
		max := int(max16)
		var r io.Reader = bytes.NewReader(data)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		br := bufio.NewReaderSize(r, 16)
		var reencoded []byte
		for {
			p, err := ReadFrame(br, nil, max)
			if err != nil {
				if p != nil {
					t.Fatalf("payload returned with error %v", err)
				}
				switch {
				case err == io.EOF:
					if len(reencoded) != len(data) {
						t.Fatalf("io.EOF after %d of %d bytes", len(reencoded), len(data))
					}
				case errors.Is(err, ErrTruncatedFrame):
					rest := len(data) - len(reencoded)
					if rest == 0 {
						t.Fatal("ErrTruncatedFrame at a frame boundary")
					}
					if rest >= HeaderLen {
						n, herr := ParseHeader(data[len(reencoded) : len(reencoded)+HeaderLen])
						if herr != nil || rest >= HeaderLen+n {
							t.Fatalf("ErrTruncatedFrame but the frame is whole (%d bytes left, header %d, %v)", rest, n, herr)
						}
					}
				case errors.Is(err, ErrBadHeader):
					if _, herr := ParseHeader(data[len(reencoded):min(len(data), len(reencoded)+HeaderLen)]); herr == nil {
						t.Fatalf("ErrBadHeader for a good header: %v", err)
					}
				case errors.Is(err, ErrFrameTooLarge):
					n, herr := ParseHeader(data[len(reencoded) : len(reencoded)+HeaderLen])
					if herr != nil || n <= max {
						t.Fatalf("ErrFrameTooLarge for header %d, max %d (%v)", n, max, herr)
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(p) > max || cap(p) > max {
				t.Fatalf("payload of len %d cap %d, max %d", len(p), cap(p), max)
			}
			reencoded = AppendFrame(reencoded, p)
			if !bytes.HasPrefix(data, reencoded) {
				t.Fatalf("accepted frame re-encodes to %q, not a prefix of the input", reencoded)
			}
		}
	})
}
