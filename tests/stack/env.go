package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// OfficialBets is the number of bets in the official data set (the five
// agency-N.csv files of ../shared/datasets/tp0).
const OfficialBets = 78697

// PollInterval is how often Poll tries again.
const PollInterval = 100 * time.Millisecond

// Poll calls check until it returns nil, every PollInterval, and fails the
// test with check's last error when timeout passes first.
func Poll(tb testing.TB, timeout time.Duration, what string, check func() error) {
	tb.Helper()
	if err := PollErr(timeout, check); err != nil {
		tb.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

// PollErr is Poll returning the last error instead of failing the test.
func PollErr(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(min(PollInterval, max(time.Until(deadline), time.Millisecond)))
	}
}

// httpClient is used for every request to a backend; each request also
// carries its own context deadline.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// httpOK GETs url and returns nil on a 2xx answer.
func httpOK(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// dialOK reports whether a TCP connection to addr succeeds.
func dialOK(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// baseEnv is the environment every started process gets before its own
// variables: only what a program needs to run, so a developer's OTEL_*,
// SERVER_* or METRICS_ADDR never leaks into a test.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL":
			env = append(env, kv)
		}
	}
	return env
}

// errNotYet is a Poll check's answer while nothing is wrong but the awaited
// thing has not happened.
var errNotYet = errors.New("not yet")
