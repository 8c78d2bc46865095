package wire_test

import (
	"testing"
	"time"

	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/store"
	"github.com/loteria/loteria/services/internal/wire"
)

// fullBatch is a batch payload of realistic bets filling one agency frame
// (8 KiB, header included), as the agency sends them.
func fullBatch(tb testing.TB) (payload []byte, bets int) {
	tb.Helper()
	g := datagen.New(datagen.Options{Seed: 1, Agency: 1})
	var body []byte
	n := 0
	for {
		b := g.Next()
		line := wire.AppendBetLine(nil, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
		h := wire.BatchHeader{Agency: 1, Count: n + 1, Seq: 1234}
		if wire.HeaderLen+wire.HeaderLineLen(h)+len(body)+len(line) > wire.MaxAgencyFrame {
			break
		}
		body = append(body, line...)
		n++
	}
	payload = wire.AppendBatchHeader(nil, wire.BatchHeader{Agency: 1, Count: n, Seq: 1234})
	payload = append(payload, body...)
	if len(payload)+wire.HeaderLen > wire.MaxAgencyFrame || len(payload)+wire.HeaderLen < wire.MaxAgencyFrame-100 {
		tb.Fatalf("batch of %d bytes does not fill a frame", len(payload))
	}
	return payload, n
}

func BenchmarkParseBatch(b *testing.B) {
	payload, n := fullBatch(b)
	dst := make([]wire.BetFields, 0, n)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		_, bets, err := wire.ParseBatch(payload, dst)
		if err != nil || len(bets) != n {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "bets/s")
}

// validate is what the central does per bet (services/central/conn.go).
func validate(rules lottery.Rules, f wire.BetFields) (int, error) {
	return rules.ValidateFields(f[wire.FieldFirstName], f[wire.FieldLastName],
		f[wire.FieldDocument], f[wire.FieldBirthdate], f[wire.FieldNumber])
}

func parseAndValidate(tb testing.TB, payload []byte, dst []wire.BetFields, rows []byte) ([]wire.BetFields, []byte) {
	h, bets, err := wire.ParseBatch(payload, dst)
	if err != nil {
		tb.Fatal(err)
	}
	rules := lottery.NewRules(time.Now()) // once per batch, as the central should
	rows = rows[:0]
	for _, f := range bets {
		n, err := validate(rules, f)
		if err != nil {
			tb.Fatal(err)
		}
		rows = store.AppendRow(rows, h.Agency, f[wire.FieldFirstName], f[wire.FieldLastName],
			f[wire.FieldDocument], f[wire.FieldBirthdate], n)
	}
	return bets, rows
}

func TestParseAndValidateAllocatesNothing(t *testing.T) {
	payload, n := fullBatch(t)
	dst := make([]wire.BetFields, 0, n)
	rows := make([]byte, 0, 16<<10)
	allocs := testing.AllocsPerRun(50, func() {
		var bets []wire.BetFields
		bets, rows = parseAndValidate(t, payload, dst, rows)
		if len(bets) != n {
			t.Fatalf("%d bets, want %d", len(bets), n)
		}
	})
	if allocs != 0 {
		t.Fatalf("parse + validate + AppendRow of a full batch: %v allocs, want 0", allocs)
	}
}

func BenchmarkParseAndValidate(b *testing.B) {
	payload, n := fullBatch(b)
	dst := make([]wire.BetFields, 0, n)
	rows := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		_, rows = parseAndValidate(b, payload, dst, rows)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "bets/s")
}

// BenchmarkAppendBetLine is what an agency does per bet to pack a batch.
func BenchmarkAppendBetLine(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendBetLine(buf[:0], "María José", "Ibáñez Güemes", "30904465", "1999-03-17", 7574)
	}
}
