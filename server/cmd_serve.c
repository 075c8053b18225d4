/* cmd_serve.c - `triad serve`: options, signals, start-up messages. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "http.h"
#include "load.h"
#include "model.h"
#include "serve.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: triad serve [--snapshot SNAP] [--state DIR] [--listen HOST:PORT]\n"
"                   [--threads N] [--brokers LIST --topic T [--group G]]\n"
"                   [--model M] [--events FILE [--format F]]\n"
"                   [--admin-token TOKEN] [--checkpoint-secs N]\n"
"                   [--request-timeout SECS] [--body-budget-mb N]\n"
"\n"
"The online service. With no graph source it serves data/facebook_combined.txt\n"
"on 127.0.0.1:8080 with ingest over HTTP only.\n"
"  --snapshot SNAP      start from an offline snapshot (triad load)\n"
"  --state DIR          durable state (checkpoint, offsets, dismissals, log);\n"
"                       a checkpoint there wins over --snapshot/--events\n"
"  --events FILE        start from an event/edge file instead of a snapshot\n"
"  --format F           the format of --events, as triad load takes it\n"
"                       (default: its extension decides)\n"
"  --listen HOST:PORT   address to serve on (default 127.0.0.1:8080)\n"
"  --threads N          HTTP worker threads (default: number of CPUs)\n"
"  --brokers LIST       Kafka bootstrap servers; consume --topic (default\n"
"                       triad-events) from the checkpointed offsets\n"
"  --group G            Kafka group.id label (no group join is done)\n"
"  --model M            ranking model file (triad train); SIGHUP reloads it\n"
"  --admin-token TOKEN  lets non-loopback clients POST /admin/checkpoint\n"
"  --checkpoint-secs N  checkpoint every N seconds when changed (default 10;\n"
"                       0 = only on demand and at exit)\n"
"  --request-timeout SECS  the most a client may take to send one request,\n"
"                       headers and body, or to take its answer, each from\n"
"                       its first byte (default 60; 0 = no limit); slower\n"
"                       ones are disconnected\n"
"  --body-budget-mb N   the most the requests still arriving may hold in\n"
"                       memory together, headers and bodies (default 128;\n"
"                       0 = no limit; else at least 17): a connection\n"
"                       whose request would go past it is reset, unless\n"
"                       it holds under 16 KiB (the most headers may take)\n"
"Signals: SIGTERM/SIGINT stop (finish requests, checkpoint, exit 0);\n"
"SIGHUP reloads --model.\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	uint64_t v;

	if (cmd_uint(s, max, &v))
		return -1;
	*out = (unsigned long)v;
	return 0;
}

/*
 * While the graph loads (which may take minutes on a big input) the main
 * thread is busy; this watcher takes SIGTERM/SIGINT meanwhile and leaves
 * at once: nothing is in flight and the state is only ever changed by
 * whole LMDB transactions, so an exit here loses nothing. A SIGHUP is
 * remembered and served after loading.
 */
static atomic_int loading = 1, hup_pending;

static void *load_watch(void *arg)
{
	const sigset_t *set = arg;
	struct timespec tick = { 0, 100000000L };

	while (atomic_load(&loading)) {
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig == SIGHUP)
			atomic_store(&hup_pending, 1);
		else if ((sig == SIGTERM || sig == SIGINT) &&
			 !atomic_load(&loading)) {
			/* loaded while we waited: the service may be taking
			 * requests, so the stop is main's (answers, final
			 * checkpoint); it was taken here up to 100 ms after
			 * ready, and requests in flight were cut */
			kill(getpid(), sig);
			break;
		} else if (sig == SIGTERM || sig == SIGINT) {
			fprintf(stderr, "triad serve: stopped while loading\n");
			_exit(0);
		}
	}
	return NULL;
}

/* serve's options (each takes a value). */
/* The option's number (below 32), or -1 when serve takes no such option. */
static int known_option(const char *a)
{
	static const char *const opts[] = {
		"--snapshot", "--state", "--events", "--format", "--brokers",
		"--topic", "--group", "--model", "--admin-token", "--threads",
		"--checkpoint-secs", "--listen", "--request-timeout",
		"--body-budget-mb",
	};

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strcmp(a, opts[i]))
			return (int)i;
	return -1;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_opts o;
	struct serve *s = NULL;
	struct err e = { "" };
	static char host[256];
	const char *what = "";
	sigset_t set;
	uint64_t members = 0, edges = 0;
	char mname[MODEL_NAME_MAX * 2 + 2];
	char warn[640];
	int builtin;
	pthread_t watcher;
	int i, k, rc = 0, sig, watching;
	unsigned seen = 0;

	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = 8080;
	o.checkpoint_secs = 10;
	o.request_timeout_secs = HTTP_REQUEST_TIMEOUT_MS / 1000;
	o.body_budget_mb = (unsigned)(HTTP_BUDGET_DEFAULT >> 20);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned long n;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (strncmp(a, "--", 2))
			return cmd_usage("serve", "unexpected argument \"%s\"", a);
		if ((k = known_option(a)) < 0)
			return cmd_usage("serve", "unknown option \"%s\"", a);
		if (!v)
			return cmd_usage("serve", "option %s needs a value", a);
		/* the last one silently won (two --state, one ignored) */
		if (seen & (1u << k))
			return cmd_usage("serve", "option %s given twice", a);
		seen |= 1u << k;
		i++;
		if (!strcmp(a, "--snapshot"))
			o.snapshot = v;
		else if (!strcmp(a, "--state"))
			o.state = v;
		else if (!strcmp(a, "--events"))
			o.events = v;
		else if (!strcmp(a, "--format"))
			o.format = v;
		else if (!strcmp(a, "--brokers"))
			o.brokers = v;
		else if (!strcmp(a, "--topic"))
			o.topic = v;
		else if (!strcmp(a, "--group"))
			o.group = v;
		else if (!strcmp(a, "--model"))
			o.model = v;
		else if (!strcmp(a, "--admin-token"))
			o.admin_token = v;
		else if (!strcmp(a, "--threads")) {
			if (parse_uint(v, 1024, &n) || !n)
				return cmd_usage("serve", "--threads \"%s\" is not 1..1024",
						 v);
			o.threads = (unsigned)n;
		} else if (!strcmp(a, "--checkpoint-secs")) {
			if (parse_uint(v, 86400, &n))
				return cmd_usage("serve", "--checkpoint-secs \"%s\" is "
						 "not 0..86400", v);
			o.checkpoint_secs = (unsigned)n;
		} else if (!strcmp(a, "--request-timeout")) {
			if (parse_uint(v, 86400, &n))
				return cmd_usage("serve", "--request-timeout \"%s\" is "
						 "not 0..86400", v);
			o.request_timeout_secs = (unsigned)n;
		} else if (!strcmp(a, "--body-budget-mb")) {
			if (parse_uint(v, 1u << 20, &n) || (n && n < 17))
				return cmd_usage("serve", "--body-budget-mb \"%s\" is "
						 "not 0 or 17..1048576", v);
			o.body_budget_mb = (unsigned)n;
		} else if (!strcmp(a, "--listen")) {
			const char *colon = strrchr(v, ':');

			if (!colon || colon == v ||
			    (size_t)(colon - v) >= sizeof(host) ||
			    parse_uint(colon + 1, 65535, &n) || !n)
				return cmd_usage("serve", "--listen \"%s\" is not "
						 "HOST:PORT", v);
			memcpy(host, v, (size_t)(colon - v));
			host[colon - v] = 0;
			/* [::1]:8080: an IPv6 address in brackets */
			if (host[0] == '[' && colon - v >= 2 &&
			    host[colon - v - 1] == ']') {
				memmove(host, host + 1, (size_t)(colon - v) - 2);
				host[colon - v - 2] = 0;
			}
			o.host = host;
			o.port = (uint16_t)n;
		}
	}
	if (o.topic && !o.brokers)
		return cmd_usage("serve", "%s needs --brokers", "--topic");
	if (o.group && !o.brokers)
		return cmd_usage("serve", "%s needs --brokers", "--group");
	if (o.format && !o.events)
		return cmd_usage("serve", "%s needs --events", "--format");
	if (o.format && !load_format_valid(o.format))
		return cmd_usage("serve", "--format \"%s\" is not a format triad load "
				 "reads", o.format);
	if (o.snapshot && o.events)
		return cmd_usage("serve", "%s: give --snapshot or --events, not both",
				 "--events");
	if (cmd_kafka_name("serve", "--brokers", o.brokers) ||
	    cmd_kafka_name("serve", "--topic", o.topic) ||
	    cmd_kafka_name("serve", "--group", o.group) ||
	    cmd_format_known("serve", o.events, o.format))
		return 2;

	/* every thread inherits this mask; the main thread takes signals
	 * with sigwait, so handlers never run inside library code */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	s = serve_new(&o, &e);
	if (!s) {
		fprintf(stderr, "triad serve: %s\n", e.msg);
		return 1;
	}
	if (serve_model_check(s, warn, sizeof(warn)))
		fprintf(stderr, "triad serve: warning: %s\n", warn);
	if (serve_listen(s, &e)) {
		fprintf(stderr, "triad serve: %s\n", e.msg);
		serve_free(s);
		return 1;
	}
	fprintf(stderr, "triad serve: listening on http://%s%s%s:%u (loading)\n",
		strchr(o.host, ':') ? "[" : "", o.host,
		strchr(o.host, ':') ? "]" : "", (unsigned)o.port);
	watching = !pthread_create(&watcher, NULL, load_watch, &set);
	rc = serve_load(s, &what, &e);
	atomic_store(&loading, 0);
	if (watching)
		pthread_join(watcher, NULL);
	if (rc) {
		fprintf(stderr, "triad serve: %s\n", e.msg);
		serve_stop(s, &e);
		serve_free(s);
		return 1;
	}
	if (atomic_load(&hup_pending))
		raise(SIGHUP); /* pending until the sigwait below */
	serve_counts(s, &members, &edges);
	builtin = serve_model_name(s, mname, sizeof(mname));
	fprintf(stderr, "triad serve: ready: %llu members, %llu edges from "
		"%s; model %s%s\n", (unsigned long long)members,
		(unsigned long long)edges, what, mname,
		builtin & 4 ? (builtin & 2 ?
			" (built-in for graphs without times, as this state "
			"recorded at its first start; --model gives another)"
			: " (built-in for graphs with times, as this state "
			  "recorded at its first start; --model gives another)")
		: builtin == 2 ? " (built-in for graphs without times, fitted on "
			       "facebook's sample: most edges here carry one "
			       "timestamp; fit your own with triad train "
			       "--random-order and give it with --model)"
		: builtin ? " (built-in for graphs with times, fitted on CollegeMsg: "
			    "for another graph, fit one with triad train and give "
			    "it with --model)"
			  : "");
	if (serve_start_ingest(s, &e)) {
		fprintf(stderr, "triad serve: %s\n", e.msg);
		serve_stop(s, &e);
		serve_free(s);
		return 1;
	}
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (sig == SIGHUP) {
			if (serve_reload_model(s, &e))
				fprintf(stderr, "triad serve: reload: %s\n",
					e.msg);
			else {
				serve_model_name(s, mname, sizeof(mname));
				fprintf(stderr, "triad serve: model "
					"reloaded: %s\n", mname);
				if (serve_model_check(s, warn, sizeof(warn)))
					fprintf(stderr, "triad serve: warning: %s\n",
						warn);
			}
			continue;
		}
		break;
	}
	fprintf(stderr, "triad serve: stopping\n");
	if (serve_stop(s, &e)) {
		fprintf(stderr, "triad serve: final checkpoint: %s\n", e.msg);
		rc = 1;
	}
	serve_free(s);
	return rc;
}
