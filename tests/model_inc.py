#!/usr/bin/env python3
"""Write scoring/model_default.inc from the two model files (make model)."""
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

if len(sys.argv) != 3:
    sys.exit("usage: model_inc.py MODEL_WITH_TIMES MODEL_WITHOUT_TIMES")
out = sys.stdout


def emit(path, cname, what):
    m = json.load(open(path))
    if m.get("kind") != "logistic":
        sys.exit("model_inc.py: %s: only a logistic model can be built in (kind %r)"
                 % (path, m.get("kind")))

    def arr(name):
        out.write("\t.%s = {\n" % ("w" if name == "weights" else name))
        for x in m[name]:
            out.write("\t\t%s,\n" % repr(float(x)))
        out.write("\t},\n")

    out.write("\n/* %s: %s */\n" % (what, path))
    out.write("static const struct model %s = {\n" % cname)
    out.write('\t.name = "%s",\n\t.version = "%s",\n\t.full = "%s@%s",\n'
              % (m["name"], m["version"], m["name"], m["version"]))
    gen = m.get("info", {}).get("generation")
    if not gen:
        sys.exit("model_inc.py: %s: no info.generation (made by a triad train "
                 "from before 7 Dec 2026?): run make model" % path)
    out.write('\t.gen = "%s",\n' % gen)
    out.write("\t.nf = %d,\n" % len(m["features"]))
    out.write("\t.feat = { %s },\n" % ", ".join(FEAT[f] for f in m["features"]))
    arr("mean")
    arr("scale")
    arr("weights")
    out.write("\t.bias = %s,\n\t.builtin = 1,\n};\n" % repr(float(m["bias"])))


out.write("""/*
 * The built-in models: the numbers of two model files, made by `make model`
 * (triad train, then tests/model_inc.py). Regenerate this file when they
 * change; test_scoring checks that they agree.
 */
""")
emit(sys.argv[1], "default_model",
     "for graphs with times: triad train data/CollegeMsg.txt --name "
     "collegemsg-lr --features no-time --kind logistic (split 0.8: it never "
     "saw the events after that split)")
emit(sys.argv[2], "static_model",
     "for graphs without times: triad train data/facebook_combined.txt "
     "--random-order --name facebook-lr --kind logistic")
