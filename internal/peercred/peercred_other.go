//go:build !linux

package peercred

// PidfdSupported reports false: SO_PEERPIDFD is Linux's.
func PidfdSupported() bool { return false }
