package main

import (
	"errors"

	"github.com/loteria/loteria/services/central"
)

// configureTLS loads the TLS listener's certificates into cfg.
func configureTLS(cfg *central.ProgramConfig) error {
	return errors.New("TLS is not wired yet")
}
