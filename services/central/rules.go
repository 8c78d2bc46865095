package central

import (
	"log/slog"
	"time"

	"github.com/loteria/loteria/observability"
	"github.com/loteria/loteria/services/internal/lottery"
)

// rulesClock gives the validation rules of the moment: a birthdate may not
// be after today, and today moves on while the central runs. Rules are a
// small value, built once per batch.
type rulesClock struct {
	now func() time.Time
}

func newRulesClock(now func() time.Time) *rulesClock { return &rulesClock{now: now} }

func (r *rulesClock) rules() lottery.Rules { return lottery.NewRules(r.now()) }

// warnings rate-limits the central's repeated warnings.
type warnings = observability.Limiter

func newWarnings(log *slog.Logger) *warnings {
	return observability.NewLimiter(log, 10*time.Second, nil)
}
