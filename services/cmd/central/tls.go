package main

import (
	"github.com/loteria/loteria/services/central"
	"github.com/loteria/loteria/services/internal/tlsconf"
)

// configureTLS loads the TLS listener's certificates into cfg: a bad or
// missing file fails the start before any port or store file is touched.
func configureTLS(cfg *central.ProgramConfig) error {
	tc, err := tlsconf.ServerConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA)
	if err != nil {
		return err
	}
	cfg.Server.TLS = tc
	cfg.Server.AgencyID = tlsconf.PeerAgency
	cfg.Server.HandshakeReason = tlsconf.HandshakeReason
	cfg.Server.HandshakeReasons = tlsconf.Reasons()
	return nil
}
