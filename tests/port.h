/*
 * port.h - a loopback port for a server a test or bench starts.
 *
 * The port comes from below the kernel's ephemeral range
 * (ip_local_port_range): a port the kernel may hand out by itself (bind(0),
 * the local end of a connect) can be taken between this call and the
 * server's bind, by the mock broker's listeners or any client's connection,
 * and was ("cannot listen: Address already in use"). Falls back to bind(0)
 * when the range leaves no room below it.
 */
#ifndef TRIAD_TESTS_PORT_H
#define TRIAD_TESTS_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bind 127.0.0.1:port (0: any) and release it; the port bound, 0 if none. */
static inline unsigned port_try(unsigned port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned got = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		got = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return got;
}

/* A 127.0.0.1 port nobody listens on right now (0 on failure). */
static inline unsigned port_unclaimed(void)
{
	static unsigned next;
	unsigned lo = 32768, hi = 60999, span, n, got;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	span = lo > 12000 ? lo - 10000 : 0; /* ports 10000 .. lo-1 */
	if (!next)
		next = (unsigned)getpid() * 7919u + (unsigned)time(NULL);
	for (n = 0; n < span && n < 2000; n++)
		if ((got = port_try(10000 + next++ % span)))
			return got;
	return port_try(0);
}

#endif
