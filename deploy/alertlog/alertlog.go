// Package alertlog is the stack's visible alert receiver: Alertmanager posts its webhook
// notifications to it, and it logs one line per alert (`make logs SERVICE=alertlog`) and keeps
// the last ones for GET /api/alerts. It is what "the alert reached someone" means in the stack
// and in the stack tests.
//
// The payload is Alertmanager's webhook format, version 4:
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
package alertlog

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
)

// MaxBody bounds a notification's size; Alertmanager's are a few KiB.
const MaxBody = 1 << 20

// Keep is how many alerts GET /api/alerts returns at most (the most recent).
const Keep = 200

// Notification is one webhook call of Alertmanager.
type Notification struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing or resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Notification.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Received is an alert as this receiver keeps it.
type Received struct {
	Alert
	Receiver   string    `json:"receiver"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Receiver handles Alertmanager's notifications. The zero value is not usable: use New.
type Receiver struct {
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	recent []Received
}

// New returns a receiver logging to log (nil discards).
func New(log *slog.Logger) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Receiver{log: log, now: time.Now}
}

// ServeHTTP accepts one notification (POST). It logs each alert at WARN while firing and at INFO
// once resolved, with its name, severity, summary and labels: alerts carry no personal data
// (names and DNIs never reach a metric label).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an Alertmanager webhook notification", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxBody+1))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > MaxBody {
		http.Error(w, fmt.Sprintf("notification larger than %d bytes", MaxBody), http.StatusRequestEntityTooLarge)
		return
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		http.Error(w, "not an Alertmanager webhook notification (JSON): "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(n.Alerts) == 0 {
		http.Error(w, "the notification has no alerts", http.StatusBadRequest)
		return
	}
	now := r.now()
	r.mu.Lock()
	for _, a := range n.Alerts {
		r.recent = append(r.recent, Received{Alert: a, Receiver: n.Receiver, ReceivedAt: now})
	}
	if over := len(r.recent) - Keep; over > 0 {
		r.recent = slices.Delete(r.recent, 0, over)
	}
	r.mu.Unlock()
	for _, a := range n.Alerts {
		level := slog.LevelWarn
		if a.Status == "resolved" {
			level = slog.LevelInfo
		}
		r.log.Log(req.Context(), level, "alert "+a.Status,
			"alertname", a.Labels["alertname"],
			"severity", a.Labels["severity"],
			"summary", a.Annotations["summary"],
			"description", a.Annotations["description"],
			"labels", a.Labels,
			"starts_at", a.StartsAt.Format(time.RFC3339),
			"receiver", n.Receiver,
		)
	}
	if n.TruncatedAlerts > 0 {
		r.log.Warn("alerts truncated by Alertmanager", "truncated", n.TruncatedAlerts, "receiver", n.Receiver)
	}
	w.WriteHeader(http.StatusOK)
}

// Recent returns the alerts received, oldest first (at most Keep).
func (r *Receiver) Recent() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recent)
}

// ListHandler serves Recent as JSON.
func (r *Receiver) ListHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Recent())
	})
}
