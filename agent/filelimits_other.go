//go:build !linux

package agent

import (
	"log/slog"

	"github.com/orphand/orphand/policy"
)

func fitFileLimits(cfg Config, _ *slog.Logger) policy.Limits { return cfg.Limits }
