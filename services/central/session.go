package central

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/loteria/loteria/services/internal/ledger"
	"github.com/loteria/loteria/services/internal/wire"
)

// hello answers a HELLO: it binds the connection to its agency (checked
// against the certificate under TLS), records the stream's fingerprint,
// and tells the agency its durable mark and round, so it resumes where
// the ledger stands. A non-empty reason ends the connection.
func (c *conn) hello(ctx context.Context, payload []byte) (string, error) {
	s := c.s
	if c.frames != 1 {
		s.m.protoErrors.WithLabelValues(protoHelloLate).Inc()
		c.drainAcks()
		c.writeError(wire.CodeProtocol, "HELLO must be the connection's first frame")
		return closeProtocolError, errors.New("HELLO after other frames")
	}
	h, err := wire.ParseHello(payload)
	if err != nil {
		s.m.protoErrors.WithLabelValues(protoBadHello).Inc()
		c.writeError(wire.CodeProtocol, err.Error())
		return closeProtocolError, err
	}
	_, span := s.tracer.Start(ctx, "central.hello", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Int("loteria.agency.id", h.Agency), attribute.Int("loteria.round", h.Round)))
	defer span.End()
	switch {
	case h.Agency < 1 || h.Agency > s.cfg.Agencies:
		c.writeError(wire.CodeAgency, fmt.Sprintf("agency %d is not one of the %d agencies (1..%d)", h.Agency, s.cfg.Agencies, s.cfg.Agencies))
		return closeRefused, nil
	case c.agency != 0 && h.Agency != c.agency:
		s.m.batches.WithLabelValues(resultWrongAgency).Inc()
		c.writeError(wire.CodeAgency, fmt.Sprintf("this connection is agency %d (its certificate), not agency %d", c.agency, h.Agency))
		return closeRefused, nil
	}
	if c.agency == 0 {
		switch _, out := s.claim(c, h.Agency); out {
		case claimEvicted:
			return closeEvicted, errEvicted // closed to make room: not a second connection of the agency
		case claimTaken:
			s.m.rejected.WithLabelValues(rejectConnected).Inc()
			c.writeError(wire.CodeConnected, fmt.Sprintf("agency %d is already connected: try again later", h.Agency))
			return closeRefused, nil
		}
		c.nameAgency(h.Agency)
	}
	c.v1 = true
	c.round = h.Round
	rec, err := s.led.Claim(h.Agency, h.Fingerprint)
	if err == nil {
		err = rec.Wait()
	}
	if err != nil {
		if errors.Is(err, ledger.ErrFingerprint) {
			s.m.fingerprints.Inc()
			c.writeError(wire.CodeFingerprint, fmt.Sprintf("agency %d sent bets of another stream to this store before (its file or generated data differ): use the same data, or a new store", h.Agency))
			return closeRefused, nil
		}
		c.writeError(wire.CodeStoreFailed, "central could not record the agency's stream: "+err.Error())
		return closeRefused, err
	}
	w, err := s.rounds.welcome(h.Agency, h.Round, h.Total)
	if err != nil {
		var re *roundError
		if errors.As(err, &re) {
			c.writeError(re.code, re.msg)
			return closeRefused, nil
		}
		return closeRefused, err
	}
	w.Version = min(h.Version, wire.Version)
	if err := c.writeFrame(wire.AppendWelcome(nil, w)); err != nil {
		return closeWriteError, err
	}
	s.log.Debug("agency resumed", "agency", h.Agency, "round", w.Round, "mark", w.Mark, "ended", w.Ended)
	return "", nil
}
