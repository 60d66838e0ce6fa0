package httpapi

import (
	"net/http"

	"github.com/grappe/grappe/internal/auth"
)

// Read-only links to a job: its owner makes, reads and revokes the link
// with their session; anyone with the link reads that one job, without a
// session, and can do nothing else with it.

func (s *server) shareJob(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	sh, err := s.Service.ShareJob(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.audit(r, p.User, "job.share", r.PathValue("id"), "a read-only link made (an earlier one revoked)")
	writeJSON(w, http.StatusCreated, sh)
	return nil
}

func (s *server) jobShare(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	sh, err := s.Service.JobShare(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sh)
	return nil
}

func (s *server) unshareJob(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.Service.UnshareJob(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	s.audit(r, p.User, "job.unshare", r.PathValue("id"), "its read-only link revoked")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sharedJob needs no session: the token is the credential (256 random
// bits, so guessing is hopeless; the per-address rate limit keeps a
// crawler from loading the master).
func (s *server) sharedJob(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.sharedByAddr.allow(clientIP(r)); !ok {
		writeError(w, s.Logger, r, tooMany("requests for shared jobs", wait))
		return
	}
	j, err := s.Service.SharedJob(r.Context(), r.PathValue("token"))
	if err != nil {
		writeError(w, s.Logger, r, err)
		return
	}
	// The page is public to whoever has the link: no cache between.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, j)
}
