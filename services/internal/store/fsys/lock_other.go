//go:build !unix

package fsys

import (
	"errors"
	"fmt"
	"os"
)

func flock(f *os.File) error {
	return fmt.Errorf("lock %s: %w", f.Name(), errors.ErrUnsupported)
}
