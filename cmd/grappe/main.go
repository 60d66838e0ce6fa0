// Command grappe is the whole cluster in one binary: master, worker and
// client. See internal/cli for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/grappe/grappe/internal/cli"
	"github.com/grappe/grappe/internal/sandbox"
)

func main() {
	// The Linux sandbox re-executes this binary as each sandbox's init;
	// in that role InitMain runs the init and never returns.
	sandbox.InitMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
