#!/usr/bin/env python3
"""Write scoring/model_default.inc from a model file (make model)."""
import json
import sys

FEAT = {
    "mutual": "FEAT_MUTUAL", "adamic_adar": "FEAT_ADAMIC_ADAR",
    "resource_alloc": "FEAT_RESOURCE_ALLOC", "jaccard": "FEAT_JACCARD",
    "cosine": "FEAT_COSINE", "pref_attach": "FEAT_PREF_ATTACH",
    "deg_member": "FEAT_DEG_MEMBER", "deg_cand": "FEAT_DEG_CAND",
    "walk": "FEAT_WALK", "ppr": "FEAT_PPR",
    "recent_mutual": "FEAT_RECENT_MUTUAL", "mutual_age": "FEAT_MUTUAL_AGE",
    "cand_age": "FEAT_CAND_AGE", "cand_recent": "FEAT_CAND_RECENT",
    "log_mutual": "FEAT_LOG_MUTUAL", "trend": "FEAT_TREND",
}

m = json.load(open(sys.argv[1]))
if m.get("kind") != "logistic":
    sys.exit("model_inc.py: %s: only a logistic model can be built in (kind %r)"
             % (sys.argv[1], m.get("kind")))
out = sys.stdout


def arr(name):
    out.write("\t.%s = {\n" % ("w" if name == "weights" else name))
    for x in m[name]:
        out.write("\t\t%s,\n" % repr(float(x)))
    out.write("\t},\n")


out.write("""/*
 * The built-in default model: the numbers of data/model.json, made by
 *   make model   (triad train data/CollegeMsg.txt -o data/model.json
 *                 --name collegemsg-lr, then tests/model_inc.py)
 * (split 0.8: it never saw the events after that split). Regenerate this
 * file when data/model.json changes; test_scoring checks they agree.
 */
static const struct model default_model = {
""")
out.write('\t.name = "%s",\n\t.version = "%s",\n\t.full = "%s@%s",\n'
          % (m["name"], m["version"], m["name"], m["version"]))
out.write("\t.nf = %d,\n" % len(m["features"]))
out.write("\t.feat = { %s },\n" % ", ".join(FEAT[f] for f in m["features"]))
arr("mean")
arr("scale")
arr("weights")
out.write("\t.bias = %s,\n\t.builtin = 1,\n};\n" % repr(float(m["bias"])))
