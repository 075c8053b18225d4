/*
 * eval.h - the temporal hold-out protocol of CONTRACT.md ("Evaluation
 * protocol"), shared by `triad eval` and `triad train`.
 *
 * What always holds:
 * - Events are taken in file order, self-loops and removes dropped, then
 *   stable-sorted by ts. Pairs are undirected {min, max}; repeats are one
 *   edge. The split time T is the ts of event floor(F * n) (0-based; the
 *   last event when that index is n) or given directly.
 * - The training graph holds every pair whose first event has ts <= T (with
 *   its newest ts <= T). Test pairs first appear after T, both ends already
 *   have an edge in the training graph; each is judged from both ends.
 * - Every method ranks candidates with a positive score that are not the
 *   member nor a neighbour, ties to the smaller member id, top k.
 * - Deterministic: members are judged in ascending id order.
 * A graph without times (every edge stamped alike, as a file loaded
 * without a ts column) has no "after": EVAL_SPLIT_RANDOM orders its pairs
 * at random first, which makes the split a random hold-out.
 */
#ifndef TRIAD_EVAL_H
#define TRIAD_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "graph.h"
#include "model.h"

enum eval_method {
	EVAL_CN, EVAL_AA, EVAL_JACCARD, EVAL_RA, EVAL_PPR, EVAL_MODEL,
	EVAL_NMETHODS
};

/*
 * The ppr method's push threshold: personalised PageRank (alpha 0.15)
 * from each judged member, scored p + alpha r (ppr.h), at most
 * 1 / (alpha * eps) = 222,223 entries read per member. Recall@10 at eps
 * 1e-4 / 3e-5 / 1e-5 / 1e-6: CollegeMsg 0.0421 / 0.0509 / 0.0498 /
 * 0.0502; a dense 1,000-member stream 0.0692 / 0.0829 / 0.0906 / 0.0909
 * (the textbook p alone at 1e-4: 0.0027); msgstream streams of 100,000
 * and 500,000 members within 0.0002 of each other. 3e-5 rather than 1e-5
 * for the time: the method on the 500,000-member stream took 40 s there
 * against 134 s (16 s at 1e-4 with p alone).
 * Serving's PPR is another thing: a cheap generator for members with few
 * connections (recommend.h).
 */
#define EVAL_PPR_EPS 3e-5f

/* "cn", "aa", "jaccard", "ra", "ppr", "model". */
const char *eval_method_name(enum eval_method m);

/* Parse a comma-separated list of method names into a bit set
 * (1u << method). 0, or -1 with e naming the unknown name. */
int eval_methods_parse(const char *list, unsigned *set, struct err *e);

struct eval_pair {
	uint64_t member, target; /* member ids */
};

/* How the split time T is found (the `how` of the calls below). */
enum eval_split_how {
	EVAL_SPLIT_FRACTION, /* T is the ts of event floor(frac * n) */
	EVAL_SPLIT_TIME,     /* T is split_time */
	/* the events' times replaced first by a random order of their pairs
	 * (eval_random_order), then split as EVAL_SPLIT_FRACTION: a random
	 * hold-out of 1 - frac of the pairs. The trend table and the time
	 * features mean nothing then, and eval and train leave them out. */
	EVAL_SPLIT_RANDOM
};

/* A fixed 64-bit hash of (a, b) (splitmix64's finaliser): the random
 * order's, and train's choice of negatives. O(1). */
uint64_t eval_pair_hash(uint64_t a, uint64_t b);

/* The first time eval_random_order gives (the next pair gets one second
 * more). */
#define EVAL_RANDOM_T0 1000000000u

/*
 * Restamp ev[0..n) in place, reordered: the pairs {min, max} in an order
 * drawn from a fixed hash of the pair (the same for any file order and on
 * any machine), a pair's events together in their file order, the i-th
 * event of the result stamped EVAL_RANDOM_T0 + i. Returns 0, or -1 with e
 * (out of memory, or more than 2^32 - EVAL_RANDOM_T0 events).
 * O(n log n) time, O(n) memory.
 */
int eval_random_order(struct graph_event *ev, size_t n, struct err *e);

/* A split of an event list. */
struct eval_split {
	uint32_t split_time;       /* T, seconds */
	struct graph_event *train; /* events with ts <= T (adds), sorted by ts */
	size_t ntrain;
	struct eval_pair *judge;   /* test pairs from both ends, sorted by (member, target) */
	size_t njudge;             /* = 2 * test pairs */
	uint64_t test_pairs;
	uint64_t members;          /* distinct judge[].member */
};

/*
 * Split n events, T found as `how` says (frac: 0 < frac <= 1). Returns
 * 0, or -1 with e filled (no events, bad fraction, out of memory).
 * Release with eval_split_release.
 * O(n log n) time, O(n) memory.
 */
int eval_split_make(const struct graph_event *ev, size_t n, double frac,
		    enum eval_split_how how, uint32_t split_time, struct eval_split *s,
		    struct err *e);
void eval_split_release(struct eval_split *s);

/* The judged members of s, one group of test pairs each: start[0..members]
 * (members + 1 entries, the caller's) gets the judge index of each
 * member's first pair and, last, njudge; member g's pairs are
 * judge[start[g] .. start[g + 1]). Returns the size of the largest group.
 * O(njudge). */
size_t eval_split_groups(const struct eval_split *s, size_t *start);

/* Accumulated figures of one method. */
struct eval_acc {
	uint64_t hits;     /* answers that are test pairs */
	uint64_t relevant; /* test pairs judged (from both ends) */
	uint64_t members;  /* members judged */
	double rr;         /* sum of reciprocal ranks */
	double ndcg;       /* sum of per-member NDCG@k */
};

/*
 * Judge one member's answer: ranked[0..nr) (best first, nr <= k) against
 * its sorted, duplicate-free targets[0..nt) (nt >= 1). Adds to acc.
 * O(nr log nt + min(k, nt)).
 */
void eval_judge(const uint64_t *ranked, size_t nr, const uint64_t *targets,
		size_t nt, uint32_t k, struct eval_acc *acc);

struct eval_metrics {
	double recall, precision, mrr, ndcg;
};

/* recall = hits / relevant; precision = hits / (k * members); MRR and
 * NDCG are means over members. All 0 when nothing was judged. */
void eval_metrics(const struct eval_acc *acc, uint32_t k,
		  struct eval_metrics *m);

struct eval_report {
	uint32_t split_time;
	uint64_t members, test_pairs, train_edges;
	uint32_t k;
	unsigned methods; /* bit set of enum eval_method */
	struct eval_metrics m[EVAL_NMETHODS];
	struct eval_acc acc[EVAL_NMETHODS];
};

/* Called every so often with members done / members total (may be NULL). */
typedef void (*eval_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/*
 * The whole protocol: split, build the training graph, rank for every
 * judged member with each method in `methods` (model: m, which must not be
 * NULL when EVAL_MODEL is asked for), judge. Returns 0, or -1 with e.
 * Members are ranked on `threads` threads (0: one per online core, at most
 * 16), in blocks of 16 whose figures are summed in member order, so the
 * report is the same bit for bit whatever the thread count. progress is
 * called from the calling thread only.
 */
int eval_run_threads(const struct graph_event *ev, size_t n, double frac,
		     enum eval_split_how how, uint32_t split_time, uint32_t k,
		     unsigned methods, const struct model *m, unsigned threads,
		     eval_progress_fn progress, void *pctx,
		     struct eval_report *r, struct err *e);

/* eval_run_threads with one thread per online core. */
int eval_run(const struct graph_event *ev, size_t n, double frac,
	     enum eval_split_how how, uint32_t split_time, uint32_t k, unsigned methods,
	     const struct model *m, eval_progress_fn progress, void *pctx,
	     struct eval_report *r, struct err *e);

/*
 * Build the training graph of a split into g (new, empty). 0 or -1.
 */
int eval_build_graph(struct graph *g, const struct eval_split *s,
		     struct err *e);

#endif
