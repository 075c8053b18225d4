/* import.c - igraph's file readers, turned into add events. */
#include "import.h"

#include <igraph.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "load.h"
#include "mem.h"

/* The message of the last igraph error on this thread. */
static _Thread_local char ig_msg[ERR_MSG_MAX];

static void on_igraph_error(const char *reason, const char *file, int line,
			    igraph_error_t code)
{
	(void)file;
	(void)line;
	if (reason && *reason)
		snprintf(ig_msg, sizeof(ig_msg), "%s (%s)", reason,
			 igraph_strerror(code));
	else
		snprintf(ig_msg, sizeof(ig_msg), "%s", igraph_strerror(code));
	IGRAPH_FINALLY_FREE();
}

/* igraph warned that a GraphML node attribute named "id" took the place
 * of the node ids (it keeps both under that name): distinct nodes with
 * equal data would become one member. */
static _Thread_local int ig_id_hidden;

static void on_igraph_warning(const char *reason, const char *file, int line)
{
	(void)file;
	(void)line;
	if (reason && strstr(reason, "already an 'id' vertex attribute"))
		ig_id_hidden = 1;
}

/* Strict decimal u64. 0 or -1. */
static int dec_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!s || !*s)
		return -1;
	for (i = 0; s[i]; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || i >= 20 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Type of the vertex (want_edge 0) or edge attribute `name`, or -1. */
static int attr_type(const igraph_t *g, int want_edge, const char *name)
{
	igraph_strvector_t gn, vn, en;
	igraph_vector_int_t gt, vt, et;
	igraph_integer_t i;
	int type = -1;

	if (igraph_strvector_init(&gn, 0) || igraph_strvector_init(&vn, 0) ||
	    igraph_strvector_init(&en, 0))
		return -1; /* leaks nothing igraph would not free at exit */
	igraph_vector_int_init(&gt, 0);
	igraph_vector_int_init(&vt, 0);
	igraph_vector_int_init(&et, 0);
	if (igraph_cattribute_list(g, &gn, &gt, &vn, &vt, &en, &et) ==
	    IGRAPH_SUCCESS) {
		igraph_strvector_t *names = want_edge ? &en : &vn;
		igraph_vector_int_t *types = want_edge ? &et : &vt;

		for (i = 0; i < igraph_strvector_size(names); i++)
			if (!strcmp(igraph_strvector_get(names, i), name))
				type = (int)VECTOR(*types)[i];
	}
	igraph_strvector_destroy(&gn);
	igraph_strvector_destroy(&vn);
	igraph_strvector_destroy(&en);
	igraph_vector_int_destroy(&gt);
	igraph_vector_int_destroy(&vt);
	igraph_vector_int_destroy(&et);
	return type;
}

/*
 * Member ids for every vertex into ids[] (n entries): from the attribute
 * `name` when every vertex has a usable one (0), else base + index (1).
 */
static int member_ids(const igraph_t *g, const char *name, uint64_t base,
		      uint64_t *ids, igraph_integer_t n)
{
	int type = name ? attr_type(g, 0, name) : -1;
	igraph_integer_t v;
	int ok = type == IGRAPH_ATTRIBUTE_NUMERIC ||
		 type == IGRAPH_ATTRIBUTE_STRING;

	for (v = 0; ok && v < n; v++) {
		if (type == IGRAPH_ATTRIBUTE_NUMERIC) {
			igraph_real_t x = VAN(g, name, v);

			/* doubles are exact up to 2^53 only */
			ok = x >= 0 && x <= 9007199254740992.0 && x == floor(x);
			ids[v] = ok ? (uint64_t)x : 0;
		} else {
			ok = dec_u64(VAS(g, name, v), &ids[v]) == 0;
		}
	}
	if (ok)
		return 0;
	for (v = 0; v < n; v++)
		ids[v] = base + (uint64_t)v;
	return 1;
}

/* The edge-ts attribute name and type, or NULL. */
static const char *ts_attr(const igraph_t *g, int *type)
{
	static const char *const names[] = { "ts", "time", "timestamp" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		*type = attr_type(g, 1, names[i]);
		if (*type == IGRAPH_ATTRIBUTE_NUMERIC ||
		    *type == IGRAPH_ATTRIBUTE_STRING)
			return names[i];
	}
	return NULL;
}

/*
 * The file as a FILE * igraph can read. It is opened once: a FIFO's
 * first bytes, once zlib has looked at them, are not there for a second
 * open (which waited for another writer for ever). A plain regular file
 * is read as it is; gzip and anything not regular (pipes) are copied
 * through zlib into a temporary file. A directory is refused (load_open):
 * igraph's lexers abort the process on a read error.
 */
static FILE *open_plain(const char *path, struct err *e)
{
	enum load_kind kind;
	struct stat st;
	struct load_in *in;
	FILE *f = NULL;
	char buf[1 << 16];
	ssize_t r;
	int fd;

	if (load_open(path, &fd, &st, &kind, e))
		return NULL;
	if (kind == LOAD_PLAIN) {
		f = fdopen(fd, "rb");
		if (!f) {
			err_set(e, "%s: cannot open: %m", path);
			close(fd);
		}
		return f;
	}
	in = load_in_open(fd, path, kind, e); /* owns fd */
	if (!in)
		return NULL;
	f = tmpfile();
	if (!f) {
		err_set(e, "%s: cannot create a temporary file: %m", path);
		goto out;
	}
	while ((r = load_in_read(in, buf, sizeof(buf), e)) > 0)
		if (fwrite(buf, 1, (size_t)r, f) != (size_t)r) {
			err_set(e, "%s: cannot write a temporary file: %m",
				path);
			goto fail;
		}
	if (r < 0)
		goto fail;
	rewind(f);
	goto out;
fail:
	fclose(f);
	f = NULL;
out:
	load_in_close(in);
	return f;
}

/*
 * igraph's line-based lexers (NCOL, LGL, Pajek) count a line when they
 * read its newline, and Pajek's reads the blank lines after it too, so a
 * line that ends too early ("unexpected end of line") is reported one or
 * more lines late. The line at fault is the last non-blank one before the
 * reported line, or the reported line itself when it is the file's last
 * and has no newline (end of file stood for one). The lexers count only
 * \n, so a line holding a lone \r after text (a line end to them) may be
 * the one at fault: its number is left as it is. Rewrites the number in
 * ig_msg ("..., line N (...") from f's text; anything else is left.
 */
static void fix_eol_line(FILE *f)
{
	char *p = strstr(ig_msg, ", line "), *end, rest[ERR_MSG_MAX];
	unsigned long n, line = 1, last = 0;
	int c, nonblank = 0, any = 0;

	if (!p || !strstr(ig_msg, "unexpected end of line"))
		return;
	n = strtoul(p + 7, &end, 10);
	if (end == p + 7 || *end != ' ' || fseek(f, 0, SEEK_SET))
		return;
	while ((c = getc(f)) != EOF) {
		if (c == '\n') {
			if (nonblank && line < n)
				last = line;
			line++;
			nonblank = any = 0;
			continue;
		}
		if (c == '\r' && any && nonblank && line == n) {
			int d = getc(f);

			/* a lone \r ends a line for the lexer but not for its
			 * count: the line at fault may be this one */
			if (d != '\n')
				return;
			ungetc(d, f);
		}
		any = 1;
		if (c != ' ' && c != '\t' && c != '\r')
			nonblank = 1;
	}
	if (any && nonblank && line == n)
		last = n; /* the last line, no newline after it */
	if (!last || last == n)
		return;
	snprintf(rest, sizeof(rest), "%s", end);
	snprintf(p + 7, sizeof(ig_msg) - (size_t)(p + 7 - ig_msg), "%lu%s",
		 last, rest);
}

/*
 * A Pajek file with both arc (*Arcs, *Arcslist) and edge (*Edges,
 * *Edgeslist) sections: igraph 0.10 reads it as all one kind, so loaded
 * --directed its arcs came out both ways (arcs first) or its edges one
 * way (edges first). A *Matrix section is of the arc kind (igraph makes
 * the graph directed for it) unless *Vertices gave a two-mode count.
 * Undirected, every pair is right either way. Sections are found as
 * igraph's lexer finds them: after blanks, on a line ended by \n, \r\n or
 * a lone \r; a %-comment runs to its \n. 0, or -1 with e naming the line
 * of the first section of the second kind; f is rewound.
 */
static int pajek_mixed(FILE *f, const char *path, struct err *e)
{
	char w[16], rest[64], name[2][16];
	unsigned long n = 1, first[2] = { 0, 0 };
	long v1, v2;
	int c, start = 1, two_mode = 0, rc = 0;
	size_t i;

	while ((c = getc(f)) != EOF) {
		int k = -1;

		if (c == '\r' || c == '\n') {
			if (c == '\r' && (c = getc(f)) != '\n' && c != EOF)
				ungetc(c, f);
			n++;
			start = 1;
			continue;
		}
		if (!start || c == ' ' || c == '\t')
			continue;
		start = 0;
		if (c == '%') { /* a comment, to its newline */
			while ((c = getc(f)) != EOF && c != '\n')
				;
			n++;
			start = 1;
			continue;
		}
		if (c != '*')
			continue;
		for (i = 0; i < sizeof(w) - 1 && (c = getc(f)) != EOF &&
			    ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
		     i++)
			w[i] = (char)c;
		w[i] = '\0';
		if (c != EOF)
			ungetc(c, f);
		if (!strncasecmp(w, "vertices", 8)) {
			for (i = 0; i < sizeof(rest) - 1 &&
				    (c = getc(f)) != EOF && c != '\n' &&
				    c != '\r';
			     i++)
				rest[i] = (char)c;
			rest[i] = '\0';
			if (c != EOF)
				ungetc(c, f);
			two_mode = sscanf(rest, "%ld %ld", &v1, &v2) == 2 &&
				   v2 > 0;
			continue;
		}
		if (!strncasecmp(w, "arcs", 4))
			k = 0;
		else if (!strncasecmp(w, "edges", 5))
			k = 1;
		else if (!strncasecmp(w, "matrix", 6))
			k = two_mode;
		if (k < 0 || first[k])
			continue;
		first[k] = n;
		memcpy(name[k], w, sizeof(w));
		if (first[!k]) {
			rc = err_set(e, "%s: line %lu: an %s section (*%s) after "
				     "an %s section (*%s) at line %lu: igraph "
				     "0.10 does not read a Pajek file mixing the "
				     "two faithfully --directed (give the arcs "
				     "and the edges as two files, or the whole "
				     "as an edge list)", path, n,
				     k ? "edge" : "arc", name[k],
				     k ? "arc" : "edge", name[!k], first[!k]);
			break;
		}
	}
	rewind(f);
	return rc;
}

int import_read(const char *path, const char *format, int directed,
		uint32_t now, struct event_list *out, struct err *e)
{
	igraph_error_handler_t *old_err;
	igraph_warning_handler_t *old_warn;
	const igraph_attribute_table_t *old_attr;
	const char *idattr = NULL, *tsname;
	uint64_t *ids = NULL, base = 0;
	igraph_t g;
	int have_g = 0, tstype = -1, rc = -1, both;
	igraph_error_t ir;
	igraph_integer_t nv, ne, eid, from, to;
	FILE *f;

	f = open_plain(path, e);
	if (!f)
		return -1;
	ig_msg[0] = '\0';
	old_err = igraph_set_error_handler(on_igraph_error);
	old_warn = igraph_set_warning_handler(on_igraph_warning);
	old_attr = igraph_set_attribute_table(&igraph_cattribute_table);

	if (!strcmp(format, "graphml")) {
		ig_id_hidden = 0;
		ir = igraph_read_graph_graphml(&g, f, 0);
		idattr = "id";
		if (ir == IGRAPH_SUCCESS && ig_id_hidden) {
			have_g = 1;
			err_set(e, "%s: a node attribute named \"id\" (a <key> "
				"with attr.name=\"id\") replaced the node ids "
				"(igraph keeps both under that name): rename it",
				path);
			goto out;
		}
	} else if (!strcmp(format, "gml")) {
		ir = igraph_read_graph_gml(&g, f);
		idattr = "id";
	} else if (!strcmp(format, "pajek")) {
		if (directed && pajek_mixed(f, path, e))
			goto out;
		ir = igraph_read_graph_pajek(&g, f);
		base = 1;
	} else if (!strcmp(format, "ncol")) {
		ir = igraph_read_graph_ncol(&g, f, NULL, 1,
					    IGRAPH_ADD_WEIGHTS_NO, directed);
		idattr = "name";
	} else if (!strcmp(format, "lgl")) {
		ir = igraph_read_graph_lgl(&g, f, 1, IGRAPH_ADD_WEIGHTS_NO,
					   directed);
		idattr = "name";
	} else {
		err_set(e, "%s: \"%s\" is not an igraph format", path, format);
		goto out;
	}
	if (ir != IGRAPH_SUCCESS) {
		if (strcmp(format, "graphml") && strcmp(format, "gml"))
			fix_eol_line(f); /* ncol, lgl, pajek */
		/* igraph 0.10's GML reader takes node ids below 2^31 only,
		 * and calls a larger one "non-integer" */
		int gml_id = !strcmp(format, "gml") &&
			     strstr(ig_msg, "Non-integer node id");

		err_set(e, "%s: %s%s", path, ig_msg[0] ? ig_msg :
			igraph_strerror(ir), gml_id ? "; igraph's GML reader "
			"takes node ids up to 2147483647 only: give a graph "
			"with larger ids as graphml, edges or csv" : "");
		goto out;
	}
	have_g = 1;
	nv = igraph_vcount(&g);
	ne = igraph_ecount(&g);
	/* an undirected file loaded --directed: both arcs of each edge
	 * (igraph lists an edge smaller vertex first, a direction the file
	 * never gave) */
	both = directed && !igraph_is_directed(&g);
	ids = mem_alloc((size_t)nv, sizeof(*ids));
	if (!ids || event_list_reserve(out, (size_t)ne * (both ? 2 : 1)) < 0) {
		err_set(e, "%s: out of memory for %lld edges", path,
			(long long)ne);
		goto out;
	}
	/* Pajek's members are its vertex numbers by definition (base 1):
	 * nothing renumbered there */
	if (member_ids(&g, idattr, base, ids, nv) && idattr)
		out->renumbered++;
	tsname = ts_attr(&g, &tstype);
	for (eid = 0; eid < ne; eid++) {
		struct graph_event ev;
		uint64_t ts = now;

		igraph_edge(&g, eid, &from, &to);
		/* an edge without the attribute (igraph: NaN, or "") gets
		 * the load time, like a text line without a ts */
		if (tsname && tstype == IGRAPH_ATTRIBUTE_NUMERIC) {
			igraph_real_t x = EAN(&g, tsname, eid);

			if (isnan(x))
				x = (igraph_real_t)now;
			if (!(x >= 0 && x <= UINT32_MAX && x == floor(x))) {
				err_set(e, "%s: edge %lld (%llu-%llu): \"%s\" %.17g "
					"is not a timestamp (an integer "
					"0..4294967295)", path, (long long)eid,
					(unsigned long long)ids[from],
					(unsigned long long)ids[to], tsname, x);
				goto out;
			}
			ts = (uint64_t)x;
		} else if (tsname) {
			const char *s = EAS(&g, tsname, eid);

			if (*s && (dec_u64(s, &ts) < 0 || ts > UINT32_MAX)) {
				err_set(e, "%s: edge %lld (%llu-%llu): \"%.40s\" is "
					"not a timestamp (an integer "
					"0..4294967295)", path, (long long)eid,
					(unsigned long long)ids[from],
					(unsigned long long)ids[to], s);
				goto out;
			}
		}
		ev.src = ids[from];
		ev.dst = ids[to];
		ev.ts = (uint32_t)ts;
		ev.op = GRAPH_ADD;
		if (ev.src == ev.dst) {
			out->self_loops++;
			continue;
		}
		out->ev[out->n++] = ev;
		if (both) {
			ev.src = ids[to];
			ev.dst = ids[from];
			out->ev[out->n++] = ev;
		}
	}
	rc = 0;
out:
	if (have_g)
		igraph_destroy(&g);
	igraph_set_attribute_table(old_attr);
	igraph_set_warning_handler(old_warn);
	igraph_set_error_handler(old_err);
	free(ids);
	fclose(f);
	return rc;
}
