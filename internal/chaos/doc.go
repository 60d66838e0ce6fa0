// Package chaos holds the chaos test: a master and several workers as real
// processes of the grappe binary, jobs of mixed languages and lengths, and
// kill -9 of random workers and of the master while they run. It proves the
// durability promises: no accepted job is lost, none has two results, none
// runs more often than its attempts say.
//
//	go test ./internal/chaos                       # short version (make test)
//	go test ./internal/chaos -run Chaos -chaos.jobs 1000 -timeout 30m -v   # make chaos
package chaos
