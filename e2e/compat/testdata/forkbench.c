/*
 * What fork() and waitpid() cost a program, measured from inside it: with
 * the preload library (forkwait.c) each fork() also sends a REGISTER and
 * each waitpid() an UNREGISTER, on a connection of its own; without it,
 * they are the plain calls.
 *
 *   forkbench N
 *
 * Forks N children one after the other; each exits at once and is waited
 * for. Prints one line per child, the nanoseconds the parent spent in
 * fork() and in waitpid(): "fork NS wait NS". The child's exit is not in
 * the wait figure: the parent waits for it before timing the waitpid.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int n, i;

	if (argc != 2 || (n = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: forkbench N\n");
		return 2;
	}
	for (i = 0; i < n; i++) {
		long long t0, t1, t2, t3;
		siginfo_t si;
		pid_t pid;
		int st;

		t0 = ns();
		pid = fork();
		t1 = ns();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0)
			_exit(0);
		/* Until the child has exited, without reaping it. */
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0) {
			perror("waitid");
			return 1;
		}
		t2 = ns();
		if (waitpid(pid, &st, 0) != pid) {
			perror("waitpid");
			return 1;
		}
		t3 = ns();
		printf("fork %lld wait %lld\n", t1 - t0, t3 - t2);
	}
	return 0;
}
