package signame

import "syscall"

// linuxNames are the signals only Linux defines.
var linuxNames = map[string]syscall.Signal{
	"STKFLT": syscall.SIGSTKFLT, "POLL": syscall.SIGPOLL, "PWR": syscall.SIGPWR,
}
