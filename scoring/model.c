/* model.c - logistic-regression ranking models and their files (model.h). */
#include "model.h"

#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"

/*
 * The built-in default. Its numbers are copied from data/model.json, the
 * output of `triad train data/CollegeMsg.txt -o data/model.json` (see the
 * README); the test suite checks that the two agree.
 */
#include "model_default.inc"

void model_set_name(struct model *m, const char *name, const char *version)
{
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->version, sizeof(m->version), "%s", version);
	snprintf(m->full, sizeof(m->full), "%s@%s", m->name, m->version);
}

const struct model *model_default(void)
{
	return &default_model;
}

void model_free(struct model *m)
{
	if (m && !m->builtin)
		free(m);
}

uint32_t model_features(const struct model *m)
{
	uint32_t i, mask = 0;

	for (i = 0; i < m->nf; i++)
		mask |= FEAT_BIT(m->feat[i]);
	return mask;
}

const char *model_name(const struct model *m)
{
	return m->full;
}

double model_score(const struct model *m, const double *x)
{
	double z = m->bias;
	uint32_t i;

	for (i = 0; i < m->nf; i++) {
		double t = m->w[i] * (x[m->feat[i]] - m->mean[i]) / m->scale[i];

		/* finite parameters can still overflow (a tiny scale, a huge
		 * weight); two opposite infinities would sum to NaN, which
		 * no ranking can sort. Clamp each term so the sum of at most
		 * FEAT_N stays finite; a NaN feature counts as no evidence. */
		if (t != t)
			t = 0;
		else if (t > 1e300)
			t = 1e300;
		else if (t < -1e300)
			t = -1e300;
		z += t;
	}
	if (z > 40)
		z = 40;
	if (z < -40)
		z = -40;
	return 1.0 / (1.0 + exp(-z));
}

static json_object *field(json_object *o, const char *path, const char *name,
			  json_type t, struct err *e)
{
	json_object *f;

	if (!json_object_object_get_ex(o, name, &f)) {
		err_set(e, "%s: field \"%s\": missing", path, name);
		return NULL;
	}
	if (!json_object_is_type(f, t) &&
	    !(t == json_type_double && json_object_is_type(f, json_type_int))) {
		err_set(e, "%s: field \"%s\": expected %s", path, name,
			json_type_to_name(t));
		return NULL;
	}
	return f;
}

static int numbers(json_object *o, const char *path, const char *name,
		   uint32_t n, double *out, int positive, struct err *e)
{
	json_object *a = field(o, path, name, json_type_array, e), *x;
	size_t i;

	if (!a)
		return -1;
	if (json_object_array_length(a) != n)
		return err_set(e, "%s: field \"%s\": expected %u numbers (one per feature), found %zu",
			       path, name, n, json_object_array_length(a));
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(a, i);
		if (!json_object_is_type(x, json_type_double) &&
		    !json_object_is_type(x, json_type_int))
			return err_set(e, "%s: field \"%s[%zu]\": not a number",
				       path, name, i);
		out[i] = json_object_get_double(x);
		if (!isfinite(out[i]) || (positive && !(out[i] > 0)))
			return err_set(e, "%s: field \"%s[%zu]\": %s", path,
				       name, i, positive ? "must be a finite number > 0"
							 : "must be finite");
	}
	return 0;
}

static int parse(json_object *o, const char *path, struct model *m,
		 struct err *e)
{
	json_object *f, *x;
	const char *s;
	size_t n, i, j;
	int id;

	if (!json_object_is_type(o, json_type_object))
		return err_set(e, "%s: not a JSON object", path);
	if (!(f = field(o, path, "format", json_type_string, e)))
		return -1;
	if (strcmp(json_object_get_string(f), "triad-model"))
		return err_set(e, "%s: field \"format\": \"%s\" is not \"triad-model\"",
			       path, json_object_get_string(f));
	if (!(f = field(o, path, "format_version", json_type_int, e)))
		return -1;
	if (json_object_get_int64(f) != MODEL_FORMAT_VERSION)
		return err_set(e, "%s: field \"format_version\": %lld is not supported (this build reads %d)",
			       path, (long long)json_object_get_int64(f),
			       MODEL_FORMAT_VERSION);
	if (!(f = field(o, path, "kind", json_type_string, e)))
		return -1;
	if (strcmp(json_object_get_string(f), "logistic"))
		return err_set(e, "%s: field \"kind\": unknown model kind \"%s\"",
			       path, json_object_get_string(f));
	if (!(f = field(o, path, "name", json_type_string, e)))
		return -1;
	s = json_object_get_string(f);
	if (!*s || strlen(s) >= MODEL_NAME_MAX || strchr(s, '@') || strchr(s, '"') || strchr(s, '\\'))
		return err_set(e, "%s: field \"name\": \"%s\" must be 1..%d characters without '@', '\"' or '\\'",
			       path, s, MODEL_NAME_MAX - 1);
	if (!(x = field(o, path, "version", json_type_string, e)))
		return -1;
	if (!*json_object_get_string(x) ||
	    strlen(json_object_get_string(x)) >= MODEL_NAME_MAX ||
	    strchr(json_object_get_string(x), '"') || strchr(json_object_get_string(x), '\\'))
		return err_set(e, "%s: field \"version\": must be 1..%d characters without '\"' or '\\'",
			       path, MODEL_NAME_MAX - 1);
	model_set_name(m, s, json_object_get_string(x));
	if (!(f = field(o, path, "features", json_type_array, e)))
		return -1;
	n = json_object_array_length(f);
	if (n == 0 || n > FEAT_N)
		return err_set(e, "%s: field \"features\": expected 1..%d names, found %zu",
			       path, FEAT_N, n);
	m->nf = (uint32_t)n;
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(f, i);
		if (!json_object_is_type(x, json_type_string))
			return err_set(e, "%s: field \"features[%zu]\": not a string",
				       path, i);
		id = feat_lookup(json_object_get_string(x));
		if (id < 0)
			return err_set(e, "%s: field \"features[%zu]\": unknown feature \"%s\"",
				       path, i, json_object_get_string(x));
		for (j = 0; j < i; j++)
			if (m->feat[j] == id)
				return err_set(e, "%s: field \"features[%zu]\": \"%s\" listed twice",
					       path, i, json_object_get_string(x));
		m->feat[i] = (uint8_t)id;
	}
	if (numbers(o, path, "mean", m->nf, m->mean, 0, e) ||
	    numbers(o, path, "scale", m->nf, m->scale, 1, e) ||
	    numbers(o, path, "weights", m->nf, m->w, 0, e))
		return -1;
	if (!(f = field(o, path, "bias", json_type_double, e)))
		return -1;
	m->bias = json_object_get_double(f);
	if (!isfinite(m->bias))
		return err_set(e, "%s: field \"bias\": must be finite", path);
	return 0;
}

struct model *model_load(const char *path, struct err *e)
{
	struct model *m = NULL;
	json_object *o = NULL;
	FILE *f = NULL;
	char *text = NULL;
	size_t len = 0, cap = 0, got;
	struct json_tokener *tok = NULL;
	enum json_tokener_error jerr;

	if (!(f = fopen(path, "rb"))) {
		err_set(e, "%s: cannot open: %m", path);
		goto fail;
	}
	for (;;) {
		if (mem_grow((void **)&text, &cap, len + 4097, 1)) {
			err_set(e, "%s: out of memory", path);
			goto fail;
		}
		got = fread(text + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
		if (len > (1u << 20)) {
			err_set(e, "%s: larger than 1 MiB, not a model file", path);
			goto fail;
		}
	}
	if (ferror(f)) {
		err_set(e, "%s: read error", path);
		goto fail;
	}
	text[len] = '\0';
	if (!(tok = json_tokener_new())) {
		err_set(e, "%s: out of memory", path);
		goto fail;
	}
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		err_set(e, "%s: not valid JSON (%s)", path,
			jerr == json_tokener_continue ? "unexpected end of file"
						      : json_tokener_error_desc(jerr));
		goto fail;
	}
	if ((size_t)json_tokener_get_parse_end(tok) < len &&
	    text[json_tokener_get_parse_end(tok) + strspn(text + json_tokener_get_parse_end(tok), " \t\r\n")]) {
		err_set(e, "%s: trailing text after the JSON object", path);
		goto fail;
	}
	if (!(m = mem_calloc(1, sizeof(*m)))) {
		err_set(e, "%s: out of memory", path);
		goto fail;
	}
	if (parse(o, path, m, e))
		goto fail;
	goto done;
fail:
	free(m);
	m = NULL;
done:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	if (f)
		fclose(f);
	free(text);
	return m;
}

static json_object *darray(const double *x, uint32_t n)
{
	json_object *a = json_object_new_array();
	uint32_t i;

	for (i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_double(x[i]));
	return a;
}

int model_save(const struct model *m, const char *path, const char *info_json,
	       struct err *e)
{
	json_object *o = json_object_new_object(), *a, *info = NULL;
	char tmp[4096];
	const char *s;
	FILE *f = NULL;
	uint32_t i;
	int rc = -1;

	if (!o)
		goto oom;
	json_object_object_add(o, "format", json_object_new_string("triad-model"));
	json_object_object_add(o, "format_version", json_object_new_int(MODEL_FORMAT_VERSION));
	json_object_object_add(o, "name", json_object_new_string(m->name));
	json_object_object_add(o, "version", json_object_new_string(m->version));
	json_object_object_add(o, "kind", json_object_new_string("logistic"));
	if (!(a = json_object_new_array()))
		goto oom;
	for (i = 0; i < m->nf; i++)
		json_object_array_add(a, json_object_new_string(feat_name(m->feat[i])));
	json_object_object_add(o, "features", a);
	json_object_object_add(o, "mean", darray(m->mean, m->nf));
	json_object_object_add(o, "scale", darray(m->scale, m->nf));
	json_object_object_add(o, "weights", darray(m->w, m->nf));
	json_object_object_add(o, "bias", json_object_new_double(m->bias));
	if (info_json && (info = json_tokener_parse(info_json)))
		json_object_object_add(o, "info", info);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_SPACED);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w"))) {
		err_set(e, "%s: cannot write: %m", tmp);
		goto out;
	}
	if (fputs(s, f) < 0 || fputc('\n', f) < 0 || fclose(f)) {
		f = NULL;
		err_set(e, "%s: write failed: %m", tmp);
		unlink(tmp);
		goto out;
	}
	f = NULL;
	if (rename(tmp, path)) {
		err_set(e, "%s: cannot rename into place: %m", path);
		unlink(tmp);
		goto out;
	}
	rc = 0;
	goto out;
oom:
	err_set(e, "%s: out of memory", path);
out:
	json_object_put(o);
	return rc;
}
