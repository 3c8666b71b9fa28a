// Command qtool turns float ONNX models into fast, accurate int8 models and
// runs them. See `qtool --help` and README.md.
package main

import (
	"errors"
	"fmt"
	"os"
)

// Exit codes are a contract with scripts (DESIGN.md): 0 success, 1 the work
// failed, 2 bad usage or bad input.
const (
	exitOK    = 0
	exitWork  = 1
	exitInput = 2
)

// exitError carries an exit code with a one-line message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// badInput marks an error as caused by the user's files or flags (exit 2).
func badInput(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitInput, err: err}
}

// badInputf formats a bad-input error.
func badInputf(format string, a ...any) error { return badInput(fmt.Errorf(format, a...)) }

// workFailed marks an error as a failure of the work itself (exit 1).
func workFailed(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitWork, err: err}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "qtool: %v\n", oneLine(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Errors cobra raises itself (unknown flag, wrong arg count) are usage errors.
	return exitInput
}

// oneLine keeps error output to the single line DESIGN.md promises.
func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
