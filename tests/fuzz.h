/*
 * fuzz.h - shared pieces of the libFuzzer targets (tests/fuzz_*.c).
 *
 * Each target defines FUZZ_ONE(data, size), which is
 * LLVMFuzzerTestOneInput unless the includer renamed it: `make fuzz` links
 * each target alone against libFuzzer, and tests/test_fuzz_regress.c
 * includes every target under its own name and replays tests/corpus/ through
 * them without libFuzzer. FUZZ_REQUIRE aborts (so libFuzzer records the
 * input) unless the includer maps it to a Check assertion.
 */
#ifndef TRIAD_FUZZ_H
#define TRIAD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef FUZZ_REQUIRE
#define FUZZ_REQUIRE(c)                                                      \
	do {                                                                 \
		if (!(c)) {                                                  \
			fprintf(stderr, "%s:%d: '%s' failed\n", __FILE__,    \
				__LINE__, #c);                               \
			abort();                                             \
		}                                                            \
	} while (0)
#endif

/*
 * Write data to the scratch file $TMPDIR/triad-fuzz-PID-TAG (one per
 * process and tag, so parallel fuzzers never share one), path in
 * path[0..psz). Returns path, or NULL when the file cannot be written.
 * The caller unlinks it.
 */
static inline const char *fuzz_file(const char *tag, const uint8_t *data,
				    size_t size, char *path, size_t psz)
{
	const char *dir = getenv("TMPDIR");
	FILE *f;

	snprintf(path, psz, "%s/triad-fuzz-%ld-%s", dir && *dir ? dir : "/tmp",
		 (long)getpid(), tag);
	f = fopen(path, "wb");
	if (!f)
		return NULL;
	if (size && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return NULL;
	}
	if (fclose(f))
		return NULL;
	return path;
}

#endif
