package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// TestServe runs the program on a real port: a notification posted to /alerts is logged and
// listed, /healthz answers, and the healthcheck subcommand agrees.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stderr testenv.Buffer
	ready := make(chan string, 1)
	done := make(chan int, 1)
	env := map[string]string{"LOG_FORMAT": "json"}
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, &stderr, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not listening after 10s")
	}
	body := `{"version":"4","status":"firing","receiver":"alertlog","alerts":[{"status":"firing","labels":{"alertname":"LoteriaCentralDown","severity":"critical"},"annotations":{"summary":"The central server is down"}}]}`
	resp, err := http.Post("http://"+addr+"/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /alerts: %s", resp.Status)
	}
	resp, err = http.Get("http://" + addr + "/api/alerts")
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Labels map[string]string `json:"labels"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list) != 1 || list[0].Labels["alertname"] != "LoteriaCentralDown" {
		t.Errorf("GET /api/alerts: %+v, %v", list, err)
	}
	if !strings.Contains(stderr.String(), `"alertname":"LoteriaCentralDown"`) {
		t.Errorf("the alert was not logged:\n%s", stderr.String())
	}
	var hc bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck", "--url", "http://" + addr + "/healthz"}, func(string) string { return "" }, &hc, nil); code != 0 {
		t.Errorf("healthcheck exited %d: %s", code, hc.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel: %s", code, stderr.String())
	}
	if code := run(context.Background(), []string{"healthcheck", "--url", "http://" + addr + "/healthz"}, func(string) string { return "" }, &hc, nil); code == 0 {
		t.Error("healthcheck of a stopped receiver passed")
	}
}
