package master

import "fmt"

// infrastructureGaveUp is the error a job fails with when every attempt
// was given back because a worker's own machinery failed
// (Release.infrastructure): a plain sentence for the job's owner, who
// must not see the workers' internals (those are in the workers' health,
// for operators).
func infrastructureGaveUp(attempts int) string {
	return fmt.Sprintf("grappe could not run this job: the workers' sandbox failed on %d attempts", attempts)
}
