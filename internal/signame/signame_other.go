//go:build !linux

package signame

import "syscall"

var linuxNames = map[string]syscall.Signal{}
