/*
 * benchutil.h - what every benchmark prints about the machine it ran on,
 * so a figure always comes with its context.
 */
#ifndef TRIAD_BENCHUTIL_H
#define TRIAD_BENCHUTIL_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* "machine: N cores, CPU model, R GiB RAM" on stdout. */
static inline void bench_machine(void)
{
	char line[256], model[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *c = strchr(line, ':');

			snprintf(model, sizeof(model), "%s", c ? c + 2 : line);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	printf("machine: %ld cores, %s, %.1f GiB RAM\n",
	       sysconf(_SC_NPROCESSORS_ONLN), model,
	       (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) /
		       (1 << 30));
}

#endif
