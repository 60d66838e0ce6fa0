package master

import (
	"encoding/base64"
	"errors"
	"unicode/utf8"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/jobspec"
)

// validate checks a submission once, with the canonical job spec's rules
// (jobspec.Validate), and turns a refusal into the domain error the API
// answers.
func (m *Master) validate(req *api.JobRequest) (*jobspec.Job, error) {
	v, err := jobspec.Validate(req, m.catalogue, jobspec.Limits{Default: m.cfg.DefaultLimits, Max: m.cfg.MaxLimits})
	if err != nil {
		return nil, domainError(err)
	}
	return v, nil
}

// domainError maps jobspec's refusals to the core's errors.
func domainError(err error) error {
	var je *jobspec.Error
	switch {
	case errors.Is(err, jobspec.ErrUnknownLanguage):
		return &jobs.Error{Code: jobs.CodeUnknownLanguage, Message: err.Error()}
	case errors.As(err, &je):
		return &jobs.Error{Code: jobs.CodeInvalid, Field: je.Field, Message: je.Message}
	}
	return err
}

// encodeOutput returns output as a JSON-safe string: as is when it is valid
// UTF-8, else base64 with the encoding to say so.
func encodeOutput(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), api.EncodingBase64
}
