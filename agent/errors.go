package agent

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// reqErr makes a protocol error. Handlers return *ipc.Error for every
// failure whose code they know; wireError classifies the rest.
func reqErr(code, format string, args ...any) *ipc.Error {
	return &ipc.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// wireError turns any error from a handler into the protocol's error.
func wireError(err error) *ipc.Error {
	var (
		ie  *ipc.Error
		den *policy.Denied
		lim *policy.LimitError
	)
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.As(err, &den):
		return &ipc.Error{Code: ipc.CodePermissionDenied, Message: den.Reason}
	case errors.As(err, &lim):
		return &ipc.Error{Code: ipc.CodeLimitExceeded, Message: lim.Error(), Limit: lim.Limit}
	case errors.Is(err, os.ErrProcessDone):
		return &ipc.Error{Code: ipc.CodeNoSuchProcess, Message: err.Error()}
	case errors.Is(err, cgroup.ErrNotFound):
		return &ipc.Error{Code: ipc.CodeNotFound, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &ipc.Error{Code: ipc.CodeInternal, Message: "the agent is stopping: " + err.Error()}
	}
	return &ipc.Error{Code: ipc.CodeInternal, Message: err.Error()}
}
