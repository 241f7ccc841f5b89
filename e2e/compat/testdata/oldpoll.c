/*
 * The original orphand's mechanism, rewritten for orphand's benchmark
 * from its documentation (seed 000): a daemon that keeps a table of
 * (parent, child) pairs sent over a Unix socket in the 12-byte protocol,
 * and sweeps it every 2 seconds: a pair whose parent no longer exists has
 * its child sent SIGINT, and is forgotten. Only the child's pid is
 * signalled (not its children), and "no longer exists" is kill(pid, 0)
 * failing with ESRCH — a zombie parent still exists.
 *
 *   oldpoll SOCKET
 *
 * It prints "ready" once it listens, and a line "swept PARENT CHILD" for
 * each child it signals. The benchmark compares the time from a parent's
 * death to its children's with the agent's compatibility socket.
 *
 * Build: cc -O2 -o oldpoll oldpoll.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { REGISTER = 1, UNREGISTER = 2, PING = 3, SWEEP_SECONDS = 2, MAXPAIRS = 65536 };

struct pair {
	uint32_t parent, child;
};

static struct pair pairs[MAXPAIRS];
static int npairs;

static void handle(int fd, const uint32_t rec[3])
{
	int i;

	switch (rec[2]) {
	case REGISTER:
		if (npairs < MAXPAIRS)
			pairs[npairs++] = (struct pair){ rec[0], rec[1] };
		break;
	case UNREGISTER:
		for (i = 0; i < npairs; i++)
			if (pairs[i].parent == rec[0] && pairs[i].child == rec[1]) {
				pairs[i] = pairs[--npairs];
				break;
			}
		break;
	case PING:
		if (write(fd, rec, 12) != 12)
			perror("ping");
		break;
	}
}

static void sweep(void)
{
	int i = 0;

	while (i < npairs) {
		if (kill((pid_t)pairs[i].parent, 0) < 0 && errno == ESRCH) {
			kill((pid_t)pairs[i].child, SIGINT);
			printf("swept %u %u\n", pairs[i].parent, pairs[i].child);
			pairs[i] = pairs[--npairs];
			continue;
		}
		i++;
	}
	fflush(stdout);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	int ln, conns[FD_SETSIZE], nconns = 0, i;
	double next;

	if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: oldpoll SOCKET\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	ln = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ln < 0 || bind(ln, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ln, 128) < 0) {
		perror("listen");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	next = now() + SWEEP_SECONDS;
	for (;;) {
		fd_set rd;
		struct timeval tv;
		double left = next - now();
		int max = ln;

		if (left <= 0) {
			sweep();
			next += SWEEP_SECONDS;
			continue;
		}
		FD_ZERO(&rd);
		FD_SET(ln, &rd);
		for (i = 0; i < nconns; i++) {
			FD_SET(conns[i], &rd);
			if (conns[i] > max)
				max = conns[i];
		}
		tv.tv_sec = (time_t)left;
		tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
		if (select(max + 1, &rd, NULL, NULL, &tv) < 0) {
			if (errno == EINTR)
				continue;
			perror("select");
			return 1;
		}
		if (FD_ISSET(ln, &rd)) {
			int c = accept(ln, NULL, NULL);
			if (c >= 0 && c < FD_SETSIZE && nconns < FD_SETSIZE)
				conns[nconns++] = c;
			else if (c >= 0)
				close(c);
		}
		for (i = 0; i < nconns; i++) {
			uint32_t rec[3];
			ssize_t n;

			if (!FD_ISSET(conns[i], &rd))
				continue;
			/* Records are read whole, as the original's clients write them. */
			n = recv(conns[i], rec, sizeof rec, MSG_WAITALL);
			if (n == (ssize_t)sizeof rec) {
				handle(conns[i], rec);
				continue;
			}
			close(conns[i]);
			conns[i--] = conns[--nconns];
		}
	}
}
