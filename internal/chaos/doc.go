// Package chaos holds the chaos tests: masters and workers as real
// processes of the grappe binary, jobs of mixed languages and lengths, and
// kill -9 of random workers and of the masters while they run. They prove
// the durability promises: no accepted job is lost, none has two results,
// none runs more often than its attempts say.
//
// TestChaos runs one master on SQLite; TestChaosMasters three masters on
// one PostgreSQL database (a throwaway server, see pgtest), killed in
// turn, with a restart of PostgreSQL itself, and measures how long the
// workers of a killed master take to run jobs on another.
//
//	go test ./internal/chaos                       # short versions (make test)
//	go test ./internal/chaos -run 'TestChaos$' -chaos.jobs 1000 -timeout 30m -v   # make chaos
//	go test ./internal/chaos -run TestChaosMasters -chaos.masters-jobs 2000 -chaos.master-kill-every 10s -timeout 40m -v   # make chaos-masters
package chaos
