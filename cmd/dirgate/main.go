// Command dirgate is the dirgate gateway and its tools, one binary with subcommands.
//
// main only parses arguments, builds the pieces and starts them; the logic lives in the
// packages it imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of the dirgate binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order --help shows them.
func commands() []command {
	return []command{
		{name: "serve", summary: "run the gateway (production; configured by DIRGATE_* variables)", run: runServe},
		{name: "dev", summary: "run gateway, Podio simulator and an embedded Redis in one process", run: runDev},
		{name: "token", summary: "mint a tenant token (JWT)", run: runToken},
		{name: "sync", summary: "make a workspace's members match a CSV file, through the gateway", run: runSync},
		{name: "rotate-keys", summary: "re-encrypt stored credentials with the active key", run: runRotateKeys},
		{name: "podio-sim", summary: "run the in-memory Podio API simulator", run: runPodioSim},
		{name: "bench", summary: "measure the gateway against its baselines and print a Markdown table", run: runBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the subcommand named by args[0] and returns the process exit code:
// 0 on success, 2 on a usage error, a subcommand's own code (exitError), 1 on any other failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		return exitCode(c.name, c.run(ctx, args[1:], stdout, stderr), stderr)
	}
	fmt.Fprintf(stderr, "dirgate: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// exitCode reports err of the subcommand name on stderr and returns the process exit code for it:
// 0 for nil or --help, 2 for a usageError, the code of an exitError, 1 otherwise.
func exitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "dirgate %s: %v\n", name, err)
	if ee, ok := errors.AsType[exitError](err); ok {
		return ee.code
	}
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "dirgate: a unified user-directory gateway for Podio.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: dirgate <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "dirgate <command> --help" for the flags of a command.`)
}

// usageError marks a bad invocation (exit code 2) as opposed to a runtime failure.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit code other than the usual 1 and 2 (sync's 3 for gateway errors).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// newFlagSet returns a flag set that reports errors instead of exiting, writing help to w.
func newFlagSet(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("dirgate "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: dirgate %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs, turning parse failures into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	return nil
}
