package httpapi

import (
	"net/http"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
)

func (s *server) submitBatch(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req api.BatchRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 128 {
		return Errorf(http.StatusBadRequest, api.CodeBadRequest, "Idempotency-Key is over 128 bytes")
	}
	if len(req.Jobs) > s.MaxBatch {
		// Refused before any job is looked at.
		return Errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "jobs: %d jobs: a batch takes at most %d", len(req.Jobs), s.MaxBatch)
	}
	subs := make([]Submission, len(req.Jobs))
	for i := range req.Jobs {
		subs[i] = Submission{Request: &req.Jobs[i]}
	}
	b, err := s.Service.SubmitBatch(r.Context(), p, subs, req.CallbackURL, key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, b)
	return nil
}

func (s *server) getBatch(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	b, err := s.Service.Batch(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *server) cancelBatch(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	b, err := s.Service.CancelBatch(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *server) callbackSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	sec, err := s.Service.CallbackSecret(r.Context(), p)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sec)
	return nil
}

func (s *server) rotateCallbackSecret(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	sec, err := s.Service.RotateCallbackSecret(r.Context(), p)
	if err != nil {
		return err
	}
	s.audit(r, p.User, "callback-secret.rotate", p.User, "")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sec)
	return nil
}
