/* main.c - parse the subcommand name and dispatch; nothing else. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *what;
} cmds[] = {
	{ "load", cmd_load, "read graph files, write a snapshot" },
	{ "serve", cmd_serve, "the online service (HTTP, Kafka ingest, state)" },
	{ "stats", cmd_stats, "size and degree summary of a snapshot" },
	{ "recommend", cmd_recommend, "one recommendation answer, offline" },
	{ "train", cmd_train, "fit the ranking model on an event file" },
	{ "eval", cmd_eval, "temporal hold-out evaluation" },
	{ "replay", cmd_replay, "stream an event file into Kafka" },
	{ "kafka-mock", cmd_kafka_mock, "a mock Kafka cluster on loopback" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: triad COMMAND [ARGS...]   (triad COMMAND --help)\n\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].what);
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		fprintf(stderr, "triad: missing command (try 'triad --help')\n");
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "triad: unknown command \"%s\" (try 'triad --help')\n",
		argv[1]);
	return 2;
}
