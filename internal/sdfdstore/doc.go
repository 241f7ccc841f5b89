// Package sdfdstore keeps file descriptors in systemd's file descriptor
// store and takes them back after a restart: the client side of
// sd_pid_notify_with_fds(3) ("FDSTORE=1", "FDNAME=", "FDPOLL=0",
// "FDSTOREREMOVE=1") and of sd_listen_fds_with_names(3) ($LISTEN_PID,
// $LISTEN_FDS, $LISTEN_FDNAMES).
//
// go-systemd's daemon.SdNotify sends text only; handing a descriptor to
// systemd needs a sendmsg(2) with SCM_RIGHTS to $NOTIFY_SOCKET, which
// [Notifier.Store] does. systemd keeps what it was given (up to the unit's
// FileDescriptorStoreMax=) while the service restarts, and passes it back
// after the socket-activation descriptors, named as they were stored.
// [Take] removes the descriptors it wants from that list and leaves the rest
// (the listening socket) where go-systemd's activation package finds them.
//
// Nothing here needs systemd to be tested: the tests point $NOTIFY_SOCKET
// at a datagram socket in a temporary directory, and re-execute the test
// binary with $LISTEN_FDS and inherited descriptors.
package sdfdstore
