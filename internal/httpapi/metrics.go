package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// metrics serves the Prometheus series to the scrape token or an admin.
// An operator who wants them unauthenticated serves them on a separate
// address instead (grappe master --metrics-listen), one a firewall keeps
// to the monitoring network.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	if err := s.metricsAllowed(r); err != nil {
		writeError(w, s.Logger, r, err)
		return
	}
	s.Metrics.ServeHTTP(w, r)
}

func (s *server) metricsAllowed(r *http.Request) error {
	token, _ := credentials(r)
	if token == "" {
		return ErrNoAuth
	}
	if s.MetricsToken != "" && sameSecret(token, s.MetricsToken) {
		return nil
	}
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if !p.IsAdmin() {
		return ErrNotAdmin
	}
	return nil
}

// sameSecret compares two secrets in constant time; hashing first makes
// the time independent of their lengths too.
func sameSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
