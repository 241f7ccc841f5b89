/*
 * orphand-forkwait.so, rewritten for orphand's tests from the original
 * daemon's wire format (orphand.h): an LD_PRELOAD library that makes any
 * unmodified program register every child it forks, and unregister it
 * once it has waited for it.
 *
 * Records are 12 bytes: parent, child and action, unsigned 32-bit integers
 * in host byte order; action 1 is REGISTER, 2 UNREGISTER. Each record goes
 * on a connection of its own, opened, written and closed from inside
 * fork() and wait()/waitpid(), to $ORPHAND_SOCKET (default
 * /tmp/orphand.sock). A failure to reach the daemon is silent: the program
 * must run on as it would without the library.
 *
 * Build: cc -shared -fPIC -O2 -o orphand-forkwait.so forkwait.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

enum { REGISTER = 1, UNREGISTER = 2 };

static void send_record(uint32_t parent, uint32_t child, uint32_t action)
{
	int saved = errno;
	const char *path = getenv("ORPHAND_SOCKET");
	struct sockaddr_un sa;
	uint32_t rec[3] = { parent, child, action };
	int fd;

	if (path == NULL || *path == '\0')
		path = "/tmp/orphand.sock";
	if (strlen(path) >= sizeof sa.sun_path)
		goto out;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		ssize_t n;
		do
			n = write(fd, rec, sizeof rec);
		while (n < 0 && errno == EINTR);
	}
	close(fd);
out:
	errno = saved;
}

static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

pid_t fork(void)
{
	static pid_t (*real)(void);
	pid_t pid;

	if (real == NULL)
		real = (pid_t (*)(void))next("fork");
	pid = real();
	if (pid > 0)
		send_record((uint32_t)getpid(), (uint32_t)pid, REGISTER);
	return pid;
}

/* reaped: the status says the child is gone (not stopped or continued). */
static int reaped(int status)
{
	return WIFEXITED(status) || WIFSIGNALED(status);
}

pid_t waitpid(pid_t which, int *status, int options)
{
	static pid_t (*real)(pid_t, int *, int);
	int st = 0;
	pid_t pid;

	if (real == NULL)
		real = (pid_t (*)(pid_t, int *, int))next("waitpid");
	pid = real(which, &st, options);
	if (pid > 0 && reaped(st))
		send_record((uint32_t)getpid(), (uint32_t)pid, UNREGISTER);
	if (status != NULL)
		*status = st;
	return pid;
}

pid_t wait(int *status)
{
	return waitpid(-1, status, 0);
}
