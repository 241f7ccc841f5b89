/*
 * A parent for orphand's compatibility tests, run under the preload
 * library (forkwait.c): it forks children the way any program does, so
 * that the library registers each one.
 *
 *   spawner KEPT WAITED
 *
 * KEPT children each start a grandchild (posix_spawn, which does not go
 * through fork(): the library never registers it) and then sleep; only
 * the agent's cgroup can find that grandchild. WAITED children each start
 * a daemon of their own (a new session) and exit; the parent waits for
 * them, so the library unregisters them: their daemons must outlive the
 * parent. Every child reports on stdout, one line each:
 *
 *   kept CHILD GRANDCHILD
 *   waited CHILD DAEMON
 *
 * then the parent prints "ready PID" and sleeps until it is killed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pid_t spawn_sleep(short flags)
{
	char *argv[] = { "sleep", "1000", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid;

	/* Its stdout is not the test's pipe: only the reports go there. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, flags);
	if (posix_spawnp(&pid, "sleep", &fa, &attr, argv, environ) != 0) {
		perror("posix_spawnp sleep");
		_exit(3);
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static void report(const char *what, pid_t a, pid_t b)
{
	char line[64];
	int n = snprintf(line, sizeof line, "%s %d %d\n", what, (int)a, (int)b);
	if (write(1, line, n) != n) /* one write: lines do not mix */
		_exit(3);
}

int main(int argc, char **argv)
{
	int kept, waited, i;

	if (argc != 3) {
		fprintf(stderr, "usage: spawner KEPT WAITED\n");
		return 2;
	}
	kept = atoi(argv[1]);
	waited = atoi(argv[2]);
	for (i = 0; i < kept; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			report("kept", getpid(), spawn_sleep(0));
			for (;;)
				pause();
		}
	}
	for (i = 0; i < waited; i++) {
		int st;
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			report("waited", getpid(), spawn_sleep(POSIX_SPAWN_SETSID));
			_exit(0);
		}
		if (waitpid(pid, &st, 0) != pid) {
			perror("waitpid");
			return 1;
		}
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}
