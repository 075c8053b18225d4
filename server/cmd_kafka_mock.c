/* cmd_kafka_mock.c - `triad kafka-mock`: librdkafka's mock cluster. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "kafka.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: triad kafka-mock [--partitions N] [--topic T]\n"
"\n"
"Runs librdkafka's mock Kafka cluster (one broker on loopback) with topic T\n"
"(default triad-events, N partitions, default 4). Prints the bootstrap\n"
"address as the first line of stdout and runs until SIGTERM or SIGINT.\n"
"Messages live in memory only. For tests, demos and trying triad without a\n"
"Kafka cluster. SIGUSR1 takes the broker down (connections refused, address\n"
"and messages kept), SIGUSR2 brings it up again: a broker outage on demand.\n");
}

int cmd_kafka_mock(int argc, char **argv)
{
	const char *topic = "triad-events";
	unsigned long parts = 4;
	struct kafka_mock *m;
	struct err e = { "" };
	sigset_t set;
	static const char *const once[] = { "--topic", "--partitions", NULL };
	unsigned seen = 0;
	int i, sig;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--topic") &&
		    strcmp(argv[i], "--partitions")) {
			return cmd_usage("kafka-mock", "%s \"%s\"",
				argv[i][0] == '-' ? "unknown option"
				: "unexpected argument", argv[i]);
		}
		if (i + 1 >= argc) {
			return cmd_usage("kafka-mock", "option %s needs a "
				"value", argv[i]);
		}
		if (cmd_once("kafka-mock", argv[i], once, &seen))
			return 2;
		if (!strcmp(argv[i], "--topic")) {
			topic = argv[++i];
			if (!*topic) {
				return cmd_usage("kafka-mock", "empty "
					"--topic");
			}
		} else if (!strcmp(argv[i], "--partitions")) {
			uint64_t p;

			if (cmd_uint(argv[++i], 1000, &p) || !p) {
				return cmd_usage("kafka-mock", "--partitions "
					"\"%s\" is not 1..1000", argv[i]);
			}
			parts = (unsigned long)p;
		} else {
			return cmd_usage("kafka-mock", "unknown option "
				"\"%s\"", argv[i]);
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	m = kafka_mock_start(topic, (unsigned)parts, &e);
	if (!m) {
		fprintf(stderr, "triad kafka-mock: %s\n", e.msg);
		return 1;
	}
	printf("%s\n", kafka_mock_bootstraps(m));
	fflush(stdout);
	fprintf(stderr, "triad kafka-mock: topic \"%s\" with %lu partitions; "
		"SIGTERM stops\n", topic, parts);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig != SIGUSR1 && sig != SIGUSR2)
			break;
		if (kafka_mock_set_down(m, sig == SIGUSR1, &e))
			fprintf(stderr, "triad kafka-mock: %s\n", e.msg);
		else
			fprintf(stderr, "triad kafka-mock: broker %s\n",
				sig == SIGUSR1 ? "down" : "up");
	}
	kafka_mock_stop(m);
	return 0;
}
