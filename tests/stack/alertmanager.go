package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/loteria/loteria/internal/testenv"
)

// Alertmanager is a running Alertmanager on loopback.
type Alertmanager struct {
	// Addr is its host:port (the UI and API, /api/v2/...).
	Addr       string
	ConfigFile string
	Process    *Process
}

// alertmanagerConfig routes every alert to one webhook, with waits short enough for a test.
const alertmanagerConfig = `route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`

// StartAlertmanager starts $LOTERIA_ALERTMANAGER (make alertmanager builds bin/alertmanager, the
// version the stack deploys; make test sets it), else alertmanager on PATH, sending every alert
// to webhookURL, and waits until it is ready.
func StartAlertmanager(tb testing.TB, webhookURL string) *Alertmanager {
	tb.Helper()
	bin := testenv.Tool(tb, "LOTERIA_ALERTMANAGER", "alertmanager")
	if bin == "" {
		testenv.Unavailable(tb, "alertmanager not found (make alertmanager builds bin/alertmanager; make test sets LOTERIA_ALERTMANAGER)")
	}
	dir := tb.TempDir()
	a := &Alertmanager{Addr: testenv.FreeAddr(tb), ConfigFile: filepath.Join(dir, "alertmanager.yml")}
	if err := os.WriteFile(a.ConfigFile, []byte(fmt.Sprintf(alertmanagerConfig, webhookURL)), 0o644); err != nil {
		tb.Fatal(err)
	}
	a.Process = StartProcess(tb, ProcessSpec{
		Name: "alertmanager",
		Path: bin,
		Args: []string{
			"--config.file=" + a.ConfigFile,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + a.Addr,
			"--cluster.listen-address=",
			"--log.level=warn",
		},
		Dir: dir,
	})
	Poll(tb, 30*time.Second, "alertmanager to be ready", func() error {
		if !a.Process.Running() {
			return fmt.Errorf("alertmanager exited: %v\n%s", a.Process.ExitErr(), tail(a.Process.Stderr(), 4096))
		}
		return httpOK(context.Background(), "http://"+a.Addr+"/-/ready")
	})
	return a
}

// Alertlog is the stack's alert receiver (deploy/cmd/alertlog) running as a process.
type Alertlog struct {
	Addr    string
	Process *Process
}

// WebhookURL is where Alertmanager posts.
func (a *Alertlog) WebhookURL() string { return "http://" + a.Addr + "/alerts" }

// ReceivedAlert is an alert as alertlog lists it (GET /api/alerts).
type ReceivedAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Receiver    string            `json:"receiver"`
}

// Received lists the alerts alertlog received so far.
func (a *Alertlog) Received(ctx context.Context) ([]ReceivedAlert, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Addr+"/api/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []ReceivedAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("alertlog /api/alerts: %w", err)
	}
	return out, nil
}

// StartAlertlog builds deploy/cmd/alertlog and runs it on loopback with JSON logs.
func StartAlertlog(tb testing.TB) *Alertlog {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "alertlog")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./deploy/cmd/alertlog")
	cmd.Dir = testenv.RepoRoot(tb)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build alertlog: %v\n%s", err, out)
	}
	a := &Alertlog{Addr: testenv.FreeAddr(tb)}
	a.Process = StartProcess(tb, ProcessSpec{Name: "alertlog", Path: bin, Args: []string{"--addr", a.Addr}, Env: []string{"LOG_FORMAT=json"}})
	Poll(tb, 30*time.Second, "alertlog to be ready", func() error {
		if !a.Process.Running() {
			return fmt.Errorf("alertlog exited: %v\n%s", a.Process.ExitErr(), a.Process.Stderr())
		}
		return httpOK(context.Background(), "http://"+a.Addr+"/healthz")
	})
	return a
}
