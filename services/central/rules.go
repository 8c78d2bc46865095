package central

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/lottery"
	"github.com/loteria/loteria/services/internal/wire"
)

// rulesClock validates bets with the rules of the day: a birthdate may not
// be after today, and today moves on while the central runs.
type rulesClock struct {
	now func() time.Time
	day atomic.Int64 // unix day the rules were built for
}

func newRulesClock(now func() time.Time) *rulesClock {
	return &rulesClock{now: now}
}

// validate checks one bet's fields and returns the number it plays.
func (r *rulesClock) validate(f wire.BetFields) (int, error) {
	return lottery.ValidateFields(f[wire.FieldFirstName], f[wire.FieldLastName],
		f[wire.FieldDocument], f[wire.FieldBirthdate], f[wire.FieldNumber])
}

// warnings rate-limits the central's repeated warnings.
type warnings = observability.Limiter

func newWarnings(log *slog.Logger) *warnings {
	return observability.NewLimiter(log, 10*time.Second, nil)
}
