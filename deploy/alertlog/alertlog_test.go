package alertlog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/loteria/loteria/deploy/alertlog"
)

// notification is what Alertmanager 0.35 posts for one firing alert (webhook version 4).
const notification = `{
  "version": "4", "groupKey": "{}:{alertname=\"LoteriaBarrierStuck\"}", "truncatedAlerts": 0,
  "status": "firing", "receiver": "alertlog",
  "groupLabels": {"alertname": "LoteriaBarrierStuck"},
  "commonLabels": {"alertname": "LoteriaBarrierStuck", "severity": "warning"},
  "commonAnnotations": {"summary": "The barrier is stuck"},
  "externalURL": "http://localhost:9093",
  "alerts": [{
    "status": "firing",
    "labels": {"alertname": "LoteriaBarrierStuck", "severity": "warning", "job": "central"},
    "annotations": {"summary": "The barrier is stuck", "description": "2 agencies wait"},
    "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph", "fingerprint": "1a2b3c"
  }]
}`

func TestReceiver(t *testing.T) {
	tests := []struct {
		name, method, body string
		code               int
		kept               int
		logged             string
	}{
		{"firing alert", http.MethodPost, notification, http.StatusOK, 1, `"msg":"alert firing"`},
		{"resolved alert", http.MethodPost, strings.ReplaceAll(notification, `"firing"`, `"resolved"`), http.StatusOK, 1, `"msg":"alert resolved"`},
		{"not JSON", http.MethodPost, "alert!", http.StatusBadRequest, 0, ""},
		{"no alerts", http.MethodPost, `{"version":"4","alerts":[]}`, http.StatusBadRequest, 0, ""},
		{"GET", http.MethodGet, "", http.StatusMethodNotAllowed, 0, ""},
		{"too large", http.MethodPost, `{"x":"` + strings.Repeat("a", alertlog.MaxBody) + `"}`, http.StatusRequestEntityTooLarge, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := alertlog.New(slog.New(slog.NewJSONHandler(&logs, nil)))
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(tt.method, "/alerts", strings.NewReader(tt.body)))
			if rec.Code != tt.code {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.code, rec.Body)
			}
			got := r.Recent()
			if len(got) != tt.kept {
				t.Fatalf("%d alerts kept, want %d", len(got), tt.kept)
			}
			if tt.logged != "" && !strings.Contains(logs.String(), tt.logged) {
				t.Errorf("log %q lacks %s", logs.String(), tt.logged)
			}
			if tt.kept == 1 {
				a := got[0]
				if a.Labels["alertname"] != "LoteriaBarrierStuck" || a.Receiver != "alertlog" || a.Annotations["summary"] != "The barrier is stuck" {
					t.Errorf("kept %+v", a)
				}
				if !strings.Contains(logs.String(), `"alertname":"LoteriaBarrierStuck"`) {
					t.Errorf("log does not name the alert: %s", logs.String())
				}
			}
		})
	}
}

func TestReceiverKeepsTheLatest(t *testing.T) {
	r := alertlog.New(nil)
	for i := 0; i < alertlog.Keep+5; i++ {
		body := strings.Replace(notification, `"fingerprint": "1a2b3c"`, `"fingerprint": "f`+string(rune('a'+i%26))+`"`, 1)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/alerts", strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			t.Fatalf("notification %d: %d", i, rec.Code)
		}
	}
	if n := len(r.Recent()); n != alertlog.Keep {
		t.Errorf("%d alerts kept, want the last %d", n, alertlog.Keep)
	}
	rec := httptest.NewRecorder()
	r.ListHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/alerts", nil))
	var list []alertlog.Received
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != alertlog.Keep {
		t.Errorf("GET /api/alerts: %d alerts, %v", len(list), err)
	}
}
