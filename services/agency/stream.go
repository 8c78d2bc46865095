package agency

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/loteria/loteria/services/internal/betfile"
	"github.com/loteria/loteria/services/internal/datagen"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// Source yields bets one at a time and io.EOF after the last. A Source
// that is also an io.Closer is closed by the client when it is done with it.
// Next should return promptly: the client packs the next batch while the
// ones before it may still wait to be written with it, so a Next that
// blocks longer than the ack timeout fails the connection (the client
// then reconnects and resumes; nothing is lost).
type Source interface {
	Next() (lottery.Bet, error)
}

// Stream is an agency's bets as the central numbers them: one sequence
// over the store's whole life, made of one chunk per round, which the
// client can reopen at any index (to resume where the central's mark says).
//
// Chunk i holds the stream indexes [i·Len, (i+1)·Len). Open(from) yields the
// bets from index from to the end of from's chunk, then io.EOF.
type Stream interface {
	// Fingerprint identifies the stream: 1 to wire.MaxFingerprintLen
	// lowercase hex digits. The central refuses a later HELLO of the same
	// agency with another fingerprint, so a different file under the same
	// id is an error rather than a silent skip.
	Fingerprint() string
	// Len is the number of bets in each round's chunk; -1 when not known
	// in advance (then the stream has one chunk, which ends when its Source
	// does).
	Len() int64
	// Open returns the bets from stream index from to the end of its chunk.
	Open(from int64) (Source, error)
}

// Fingerprint scheme tags: hashed in front of what each kind of stream
// hashes, so that a file and a generator never share a fingerprint.
const (
	fpTagFile      = "loteria-stream-file-v1\n"
	fpTagGenerated = "loteria-stream-datagen-v1\n"
	fpTagBets      = "loteria-stream-bets-v1\n"
)

// fingerprintLen is how many hex digits of the SHA-256 a fingerprint keeps
// (128 bits: no accidental collision between two agencies' files).
const fingerprintLen = 32

func fingerprintOf(sum []byte) string { return hex.EncodeToString(sum)[:fingerprintLen] }

// FileStream is an agency's bets file sent once per round: every chunk is
// the whole file. Its fingerprint is the SHA-256 of the file's bytes.
type FileStream struct {
	path   string
	agency int
	fp     string
	n      int64
}

// OpenFileStream reads the bets file at path once, to count its bets and
// hash it, and returns the stream of agency over it.
func OpenFileStream(path string, agency int) (*FileStream, error) {
	h := sha256.New()
	h.Write([]byte(fpTagFile))
	n, err := betfile.CountLinesTee(path, h) // one pass: count and hash
	if err != nil {
		return nil, err
	}
	return &FileStream{path: path, agency: agency, fp: fingerprintOf(h.Sum(nil)), n: int64(n)}, nil
}

// Fingerprint is the hash of the file's bytes.
func (s *FileStream) Fingerprint() string { return s.fp }

// Len is the number of bets in the file.
func (s *FileStream) Len() int64 { return s.n }

// Open opens the file and skips to from's place in its chunk.
func (s *FileStream) Open(from int64) (Source, error) {
	if from < 0 {
		return nil, fmt.Errorf("stream index %d: must be 0 or more", from)
	}
	if s.n == 0 {
		return emptySource{}, nil
	}
	f, err := betfile.Open(s.path, s.agency)
	if err != nil {
		return nil, err
	}
	skip := from % s.n
	for i := int64(0); i < skip; i++ {
		if _, err := f.Next(); err != nil {
			f.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("bets file %s has fewer than the %d bets it had at start: it changed while the agency ran", s.path, s.n)
			}
			return nil, err
		}
	}
	return &limitedSource{src: f, left: s.n - skip, closer: f}, nil
}

// GeneratedStream is fresh deterministic data every round
// (services/internal/datagen): chunk i is the first Len bets of the
// generator for the agency with seed ChunkSeed(seed, i). Its fingerprint
// hashes those parameters.
type GeneratedStream struct {
	agency int
	seed   uint64
	n      int64
	fp     string
}

// NewGeneratedStream is agency's generated stream of betsPerRound bets per
// round.
func NewGeneratedStream(agency int, seed uint64, betsPerRound int64) (*GeneratedStream, error) {
	if betsPerRound < 0 {
		return nil, fmt.Errorf("bets per round %d: must be 0 or more", betsPerRound)
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%sagency=%d;seed=%d;bets=%d;ratio=%g", fpTagGenerated, agency, seed, betsPerRound, datagen.DefaultWinnerRatio))
	return &GeneratedStream{agency: agency, seed: seed, n: betsPerRound, fp: fingerprintOf(sum[:])}, nil
}

// chunkSeedStep spreads the rounds' seeds (the 64-bit golden ratio, an odd
// constant, so seed+i·step never repeats within 2^64 rounds).
const chunkSeedStep = 0x9e3779b97f4a7c15

// ChunkSeed is the generator seed of round chunk i: seed itself for the
// first, so round 1 is what `gendata --seed <seed>` writes for the agency.
func ChunkSeed(seed uint64, chunk int64) uint64 { return seed + uint64(chunk)*chunkSeedStep }

// Fingerprint hashes the generator's parameters.
func (s *GeneratedStream) Fingerprint() string { return s.fp }

// Len is the number of bets per round.
func (s *GeneratedStream) Len() int64 { return s.n }

// Open starts from's chunk's generator and skips to from.
func (s *GeneratedStream) Open(from int64) (Source, error) {
	if from < 0 {
		return nil, fmt.Errorf("stream index %d: must be 0 or more", from)
	}
	if s.n == 0 {
		return emptySource{}, nil
	}
	g := datagen.New(datagen.Options{Seed: ChunkSeed(s.seed, from/s.n), Agency: s.agency})
	skip := from % s.n
	for i := int64(0); i < skip; i++ {
		g.Next()
	}
	return &limitedSource{src: genSource{g}, left: s.n - skip}, nil
}

type genSource struct{ g *datagen.Generator }

func (s genSource) Next() (lottery.Bet, error) { return s.g.Next(), nil }

// BetsStream is a fixed list of bets sent once per round, for tests and
// tools that hold their bets in memory. Its fingerprint hashes the bets.
type BetsStream struct {
	bets []lottery.Bet
	fp   string
}

// NewBetsStream is the stream of bets (not copied: do not change them).
func NewBetsStream(bets []lottery.Bet) *BetsStream {
	h := sha256.New()
	h.Write([]byte(fpTagBets))
	var line []byte
	for _, b := range bets {
		line = wire.AppendBetLine(line[:0], b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
		h.Write(line)
	}
	return &BetsStream{bets: bets, fp: fingerprintOf(h.Sum(nil))}
}

// Fingerprint hashes the bets' lines.
func (s *BetsStream) Fingerprint() string { return s.fp }

// Len is the number of bets.
func (s *BetsStream) Len() int64 { return int64(len(s.bets)) }

// Open yields the bets from from's place in its chunk.
func (s *BetsStream) Open(from int64) (Source, error) {
	if from < 0 {
		return nil, fmt.Errorf("stream index %d: must be 0 or more", from)
	}
	if len(s.bets) == 0 {
		return emptySource{}, nil
	}
	return &betSlice{bets: s.bets[from%int64(len(s.bets)):]}, nil
}

type betSlice struct{ bets []lottery.Bet }

func (s *betSlice) Next() (lottery.Bet, error) {
	if len(s.bets) == 0 {
		return lottery.Bet{}, io.EOF
	}
	b := s.bets[0]
	s.bets = s.bets[1:]
	return b, nil
}

// OneShot is a stream over src that can be opened once, at index 0: for
// callers whose bets cannot be read again (the load tool's timed runs). A
// run over it cannot resume after a failure. fingerprint must be lowercase
// hex (see Stream); n is its length, -1 when not known.
func OneShot(src Source, fingerprint string, n int64) Stream {
	return &oneShot{src: src, fp: fingerprint, n: n}
}

type oneShot struct {
	src    Source
	fp     string
	n      int64
	opened bool
}

func (s *oneShot) Fingerprint() string { return s.fp }
func (s *oneShot) Len() int64          { return s.n }

func (s *oneShot) Open(from int64) (Source, error) {
	if s.opened || from != 0 {
		return nil, fmt.Errorf("this stream cannot be reopened (at bet %d): it is read once, so the agency cannot resume", from)
	}
	s.opened = true
	return s.src, nil
}

type emptySource struct{}

func (emptySource) Next() (lottery.Bet, error) { return lottery.Bet{}, io.EOF }

// limitedSource ends src after left bets: a chunk never runs into the next.
type limitedSource struct {
	src    Source
	left   int64
	closer io.Closer
}

func (s *limitedSource) Next() (lottery.Bet, error) {
	if s.left <= 0 {
		return lottery.Bet{}, io.EOF
	}
	b, err := s.src.Next()
	if err != nil {
		return b, err
	}
	s.left--
	return b, nil
}

func (s *limitedSource) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}

// validFingerprint checks what the wire accepts.
func validFingerprint(fp string) error {
	if len(fp) == 0 || len(fp) > wire.MaxFingerprintLen {
		return fmt.Errorf("stream fingerprint of %d characters: want 1 to %d", len(fp), wire.MaxFingerprintLen)
	}
	for i := 0; i < len(fp); i++ {
		if c := fp[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errors.New("stream fingerprint: want lowercase hex digits only")
		}
	}
	return nil
}
