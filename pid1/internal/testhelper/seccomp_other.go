//go:build !linux

package main

import "errors"

func noSubreaper([]string) error { return errors.New("seccomp: Linux only") }
