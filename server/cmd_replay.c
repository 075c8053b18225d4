/* cmd_replay.c - `triad replay`: stream an event file into Kafka. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "kafka.h"
#include "load.h"
#include "mem.h"
#include "mono.h"
#include "ratelog.h"

/* --rate: sleep once the send is this far ahead of its schedule (then
 * until it is on it again): a wakeup every few ms, not every 64 events */
#define REPLAY_AHEAD_S 0.005

static void usage(FILE *f)
{
	fprintf(f,
"usage: triad replay EVENTS --brokers LIST --topic T [--rate N] [--format F]\n"
"                    [-q|--quiet]\n"
"\n"
"Streams the events of EVENTS (any format triad load reads) into Kafka topic\n"
"T in time order (stable by ts), one JSON event per message keyed by the\n"
"decimal src. --rate N sends at most N events per second (default: as fast as\n"
"the broker takes them). --format F reads EVENTS as F (default: from the\n"
"extension, as triad load does). Prints the count and rate on stderr at the\n"
"end.\n");
}

/* librdkafka's error events (the brokers unreachable...), through the
 * rate-limited log: the messages are retried until they time out. */
/* SIGINT or SIGTERM while replaying: the signal, else 0 */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	if (stop_sig) { /* a second one: at once */
		signal(sig, SIG_DFL);
		raise(sig);
	}
	stop_sig = sig;
}

static void log_kafka(void *ctx, const char *why)
{
	char line[600];

	snprintf(line, sizeof(line), "kafka: %s; retrying (a message not "
		 "delivered in 30 s fails the replay)", why);
	ratelog_report(ctx, line, NULL);
}

static int cmp_ts(const void *a, const void *b)
{
	const struct graph_event *x = a, *y = b;

	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Stable sort by ts: qsort on (ts, index) would need a copy; merge sort
 * keeps equal ts in file order. */
static int sort_by_ts(struct graph_event *ev, size_t n)
{
	struct graph_event *tmp;
	size_t w, i;

	tmp = mem_alloc(n, sizeof(*ev));
	if (!tmp)
		return -1;
	for (w = 1; w < n; w *= 2) {
		for (i = 0; i < n; i += 2 * w) {
			size_t a = i, am = i + w < n ? i + w : n, b = am,
			       bm = i + 2 * w < n ? i + 2 * w : n, k = i;

			while (a < am && b < bm)
				tmp[k++] = cmp_ts(&ev[b], &ev[a]) < 0 ? ev[b++]
								      : ev[a++];
			while (a < am)
				tmp[k++] = ev[a++];
			while (b < bm)
				tmp[k++] = ev[b++];
		}
		memcpy(ev, tmp, n * sizeof(*ev));
	}
	free(tmp);
	return 0;
}

int cmd_replay(int argc, char **argv)
{
	static const char *const once[] = { "--brokers", "--topic",
					    "--format", "--rate", NULL };
	const char *path = NULL, *brokers = NULL, *topic = NULL, *format = NULL;
	double rate = 0, t0, t, shown;
	int quiet = 0, tty = isatty(2);
	struct load_opts lo = { NULL, 0, 0, 1 };
	struct event_list l = { 0 };
	struct kafka_producer *p = NULL;
	struct err e = { "" };
	struct ratelog klog;
	size_t i;
	int a, rc = 1;
	unsigned seen = 0;

	for (a = 1; a < argc; a++) {
		const char *s = argv[a];

		if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) {
			quiet = 1;
		} else if (s[0] == '-' && s[1] && s[1] != '-') {
			/* "-x" is no file name ("-" could be) */
			return cmd_usage("replay", "unknown option \"%s\"", s);
		} else if (!strncmp(s, "--", 2)) {
			const char *v = a + 1 < argc ? argv[++a] : NULL;

			if (strcmp(s, "--brokers") && strcmp(s, "--topic") &&
			    strcmp(s, "--format") && strcmp(s, "--rate")) {
				return cmd_usage("replay", "unknown option "
					"\"%s\"", s);
			}
			if (!v) {
				return cmd_usage("replay", "option %s needs "
					"a value", s);
			}
			if (cmd_once("replay", s, once, &seen))
				return 2;
			if (!strcmp(s, "--brokers"))
				brokers = v;
			else if (!strcmp(s, "--topic"))
				topic = v;
			else if (!strcmp(s, "--format"))
				format = v;
			else if (!strcmp(s, "--rate")) {
				if (cmd_real(v, &rate) || !(rate >= 0)) {
					return cmd_usage("replay", "--rate "
						"\"%s\" is not a rate", v);
				}
			}
		} else if (!path) {
			path = s;
		} else {
			return cmd_usage("replay", "unexpected argument "
				"\"%s\"", s);
		}
	}
	if (!path || !brokers || !topic) {
		return cmd_usage("replay", "needs EVENTS, --brokers and "
			"--topic");
	}
	if (format && !load_format_valid(format)) {
		return cmd_usage("replay", "unknown format \"%s\"", format);
	}
	if (cmd_kafka_name("replay", "--brokers", brokers) ||
	    cmd_kafka_name("replay", "--topic", topic) ||
	    cmd_format_known("replay", path, format))
		return 2;
	lo.format = format;
	ratelog_init(&klog, "triad replay");
	if (load_events(path, &lo, &l, &e)) {
		fprintf(stderr, "triad replay: %s\n", e.msg);
		goto out;
	}
	if (sort_by_ts(l.ev, l.n)) {
		fprintf(stderr, "triad replay: out of memory\n");
		goto out;
	}
	p = kafka_producer_new(brokers, topic, &e);
	if (!p) {
		fprintf(stderr, "triad replay: %s\n", e.msg);
		goto out;
	}
	kafka_producer_set_log(p, log_kafka, &klog);
	/* Ctrl-C or SIGTERM: what was sent is delivered and counted, then
	 * the signal takes the process as it would have (it died at once,
	 * saying nothing of how far it got) */
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stop;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	t0 = shown = mono_s();
	for (i = 0; i < l.n && !stop_sig; i++) {
		const struct graph_event *ev = &l.ev[i];
		char key[24], val[128];
		int kl, vl;

		if (rate > 0) {
			double due = t0 + (double)i / rate;

			/* every event has its time: once REPLAY_AHEAD_S
			 * ahead, wait until on schedule (checked every 64
			 * events, --rate 1 sent 64 at once, then waited
			 * 64 s). Waiting in the producer's poll, so its
			 * error events are logged as they come, not after
			 * the wait; the wait is cut in steps of 100 ms in
			 * doubles (a wait past INT_MAX ms made its int
			 * negative: at --rate 1e-5 the loop spun a core) */
			if (mono_s() < due - REPLAY_AHEAD_S)
				while (!stop_sig && (t = mono_s()) < due) {
					double left = due - t;

					if (left >= 1e-3)
						kafka_producer_poll(p, left < 0.1 ?
							(int)(left * 1e3) : 100);
					else {
						struct timespec ts = {
							0, (long)(left * 1e9)
						};

						nanosleep(&ts, NULL);
					}
				}
			if (stop_sig)
				break;
		}
		kl = snprintf(key, sizeof(key), "%llu",
			      (unsigned long long)ev->src);
		vl = snprintf(val, sizeof(val),
			      "{\"op\":\"%s\",\"src\":%llu,\"dst\":%llu,"
			      "\"ts\":%u}",
			      ev->op == GRAPH_REMOVE ? "remove" : "add",
			      (unsigned long long)ev->src,
			      (unsigned long long)ev->dst, ev->ts);
		if (kafka_produce(p, key, (size_t)kl, val, (size_t)vl, &e)) {
			fprintf(stderr, "triad replay: event %zu: %s\n", i + 1,
				e.msg);
			goto out;
		}
		/* once a second: every 100,000 events, it was, so a
		 * --rate 1000 replay said nothing for 100 s */
		if (tty && !quiet && (t = mono_s()) - shown >= 1.0) {
			fprintf(stderr, "\rtriad replay: %zu/%zu", i, l.n);
			shown = t;
		}
	}
	if (kafka_producer_flush(p, stop_sig ? 10000 : 60000, &e)) {
		fprintf(stderr, "%striad replay: %s\n", tty ? "\r" : "", e.msg);
		if (stop_sig)
			fprintf(stderr, "triad replay: stopped by %s after %zu of "
				"%zu events\n", strsignal(stop_sig), i, l.n);
		goto out;
	}
	t = mono_s() - t0;
	if (stop_sig) /* said even with --quiet: the replay is not whole */
		fprintf(stderr, "%striad replay: stopped by %s: %zu of %zu "
			"events to \"%s\" in %.2f s, delivered; the rest not "
			"sent\n", tty ? "\r" : "", strsignal(stop_sig), i, l.n,
			topic, t);
	else if (!quiet)
		fprintf(stderr, "%striad replay: %zu events to \"%s\" in %.2f s "
			"(%.0f/s)\n", tty ? "\r" : "", l.n, topic, t,
			t > 0 ? (double)l.n / t : 0.0);
	/* they are not events (load drops them too), but the file's lines
	 * and the count above differ by them */
	if (!quiet && l.self_loops)
		fprintf(stderr, "triad replay: %llu self-loop%s in the file "
			"dropped\n", (unsigned long long)l.self_loops,
			l.self_loops == 1 ? "" : "s");
	rc = stop_sig ? 1 : 0;
out:
	kafka_producer_free(p);
	ratelog_destroy(&klog);
	event_list_release(&l);
	if (stop_sig) { /* die of it, as the caller expects */
		signal(stop_sig, SIG_DFL);
		raise(stop_sig);
	}
	return rc;
}
