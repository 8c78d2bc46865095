package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// certsTimeout bounds the certificate command (a `go run` builds it first).
const certsTimeout = 5 * time.Minute

// writeCerts has CertsCommand write the certificates the stack mounts when any is missing. The
// certificates come from services/internal/certs through its command: the generator cannot
// import that package (Go's internal rule keeps it to code under services/).
//
// Every file is bind-mounted on its own into containers that run as uid 65532, which could not
// read a key the host user owns with mode 0600. So the keys are made readable (0644) and the
// directory that holds them is closed instead (0700): other users of the host cannot reach the
// keys, the containers see only the files mounted into them, each agency its own key.
func (p *Plan) writeCerts() error {
	var missing []string
	for _, f := range p.Certs {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, filepath.Base(f))
		} else if err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
	}
	dir := p.CertsHostDir()
	if len(missing) > 0 {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		args := append(append([]string(nil), p.Options.CertsCommand[1:]...),
			"--agencies", strconv.Itoa(p.Options.Agencies), "--out", dir, "--hosts", strings.Join(CertHosts(), ","))
		ctx, cancel := context.WithTimeout(context.Background(), certsTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, p.Options.CertsCommand[0], args...)
		cmd.Dir = p.Options.Root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("certificates: %s %s (for %s): %w\n%s", p.Options.CertsCommand[0], strings.Join(args, " "), strings.Join(missing, ", "), err, strings.TrimSpace(out.String()))
		}
		for _, f := range p.Certs {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("certificates: %s did not write %s: %w", p.Options.CertsCommand[0], filepath.Base(f), err)
			}
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	for _, f := range p.Certs {
		if err := os.Chmod(f, 0o644); err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
	}
	return nil
}
