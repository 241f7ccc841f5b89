//go:build !linux

package nspawn

import "context"

// Run needs Linux; elsewhere it returns ErrUnsupported.
func Run(context.Context, Options) (int, error) { return -1, ErrUnsupported }

// Rootfs needs Linux; elsewhere it returns ErrUnsupported.
func Rootfs(context.Context) (string, error) { return "", ErrUnsupported }

func preflight() error { return ErrUnsupported }
