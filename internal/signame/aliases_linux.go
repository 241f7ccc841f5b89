package signame

import "syscall"

// SIGPOLL is Linux's second name for SIGIO.
func init() { aliases["POLL"] = syscall.SIGPOLL }
