# triad - see README.md. `make`, `make run`, `make test`, `make bench`.
#
#   make                         build bin/triad
#   make deps                    install missing Debian packages (apt-get)
#   make test                    unit + end-to-end tests (Check)
#   make test SANITIZE=address,undefined   the same under ASan/UBSan
#   make tsan                    the same under ThreadSanitizer
#   make bench                   benchmarks (timing lives here, never in tests)
#   make run                     the service on the bundled sample data
#   make fuzz [FUZZ_SECONDS=30]  libFuzzer targets (clang), each for FUZZ_SECONDS
#   make faults                  kill -9, disk full and broker loss, end to end
#   make valgrind                the tests under memcheck
#   make scale                   the service's figures at growing graph sizes
#   make soak                    minutes under load and ingest, judged at the end
#   make demo                    mock Kafka + serve + replay CollegeMsg, live answers
#   make model                   refit the built-in models (data/model*.json)
#
# Objects go to $(BUILD); a sanitizer build uses its own directory so the
# two never mix. O=DIR puts every output under DIR (for parallel builds).

O        ?= .
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD    ?= $(O)/build
BINDIR   ?= $(O)/bin
else
BUILD    ?= $(O)/build/san-$(subst $(comma),-,$(SANITIZE))
BINDIR   ?= $(BUILD)/bin
endif
comma := ,

CC       ?= cc
PKGS     := igraph rdkafka lmdb libevent libevent_pthreads check zlib json-c liburcu-bp
DEBS     := pkg-config libigraph-dev librdkafka-dev liblmdb-dev libevent-dev \
            check zlib1g-dev libjson-c-dev liburcu-dev
# Tools the benchmarks and demos use (not needed to build or test).
BENCH_DEBS := wrk hyperfine

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wvla -Werror
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L $(WARN) \
             $(CFLAGS) -Igraph -Icandidates -Iscoring -Iserver \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -MMD -MP
LIBS      = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SANITIZE)
endif

LIB_SRC   := $(wildcard graph/*.c candidates/*.c scoring/*.c server/*.c)
LIB_SRC   := $(filter-out server/main.c,$(LIB_SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tests/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tests/%.c=$(BUILD)/tests/%)
TRIAD     := $(BINDIR)/triad

.PHONY: all deps test bench run clean check-deps
all: $(TRIAD)

# Install what pkg-config cannot find. Runs apt-get only when something is
# missing, so it is cheap to call before every run and test.
deps:
	@if ! pkg-config --exists $(PKGS) 2>/dev/null; then \
	  echo "make deps: installing $(DEBS)"; \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEBS) >/dev/null && \
	  pkg-config --exists $(PKGS) || { echo "make deps: still missing: $(PKGS)" >&2; exit 1; }; \
	fi

bench-deps: deps
	@command -v wrk >/dev/null && command -v hyperfine >/dev/null || { \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(BENCH_DEBS) >/dev/null; }

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libtriad.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# Under ThreadSanitizer every program also links tests/tsan_thrd.c (why:
# there, and `make tsan` below).
ifneq ($(findstring thread,$(SANITIZE)),)
TSAN_OBJ := $(BUILD)/tests/tsan_thrd.o
endif

$(TRIAD): $(BUILD)/server/main.o $(BUILD)/libtriad.a $(TSAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libtriad.a $(TSAN_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Each suite is its own binary; end-to-end suites find the server through
# TRIAD_BIN. Check prints one summary line per suite.
test: deps
	@$(MAKE) --no-print-directory $(TRIAD) $(TEST_BIN)
	@fail=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; \
	  TRIAD_BIN=$(abspath $(TRIAD)) TRIAD_DATA=$(abspath data) $$t || fail=1; \
	done; exit $$fail

bench: bench-deps
	@$(MAKE) --no-print-directory $(TRIAD) $(BENCH_BIN)
	@for b in $(BENCH_BIN); do \
	  TRIAD_BIN=$(abspath $(TRIAD)) TRIAD_DATA=$(abspath data) $$b || exit 1; \
	done

run: deps
	@$(MAKE) --no-print-directory $(TRIAD)
	$(TRIAD) serve

clean:
	rm -rf $(O)/build $(O)/bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Fault injection (tests/faults.c): kill -9 trials under Kafka + HTTP
# ingest, broker outage, damaged state, full map. FAULT_TRIALS (default
# 20) and FAULT_SEED (default the clock; printed) choose the trials.
FAULTS_BIN := $(BUILD)/tests/faults
.PHONY: faults
faults: deps
	@$(MAKE) --no-print-directory $(TRIAD) $(FAULTS_BIN)
	@TRIAD_BIN=$(abspath $(TRIAD)) TRIAD_DATA=$(abspath data) $(FAULTS_BIN)

# ---- ThreadSanitizer ---------------------------------------------------
# `make tsan`: `make test` built with -fsanitize=thread, every triad process
# the suites start included. Reports go to files (tests capture servers'
# stderr), one per process that found a race; any file fails the target.
# tests/tsan.supp says what is not checked and why.
TSAN_DIR := $(O)/build/san-thread/reports
.PHONY: tsan
# ThreadSanitizer runs the suites 5-15x slower: Check's timeouts are
# stretched (training_learns_recency's fit passed its 120 s under it)
TSAN_SCALE ?= 4
tsan: deps
	@rm -rf $(TSAN_DIR) && mkdir -p $(TSAN_DIR)
	@TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) log_path=$(abspath $(TSAN_DIR))/race $$TSAN_OPTIONS" \
	  CK_TIMEOUT_MULTIPLIER=$(TSAN_SCALE) \
	  $(MAKE) --no-print-directory test SANITIZE=thread; rc=$$?; \
	n=$$(ls $(TSAN_DIR) | wc -l); \
	for f in $(TSAN_DIR)/*; do [ -e "$$f" ] && { echo "== $$f"; cat "$$f"; }; done; \
	if [ "$$n" -gt 0 ]; then echo "make tsan: $$n processes reported races or errors ($(TSAN_DIR))" >&2; exit 1; fi; \
	[ $$rc -eq 0 ] && echo "make tsan: no race reported"; exit $$rc

# ---- fuzzing (clang libFuzzer) ----------------------------------------
# `make fuzz` builds every tests/fuzz_*.c against the library compiled by
# clang with ASan/UBSan and runs each for FUZZ_SECONDS, starting from the
# committed seeds in tests/corpus/NAME/ (read only) plus a scratch corpus
# under $(FUZZ_BUILD)/corpus/NAME/. Crashes land in $(FUZZ_BUILD)/crash/.
# tests/test_fuzz_regress.c replays tests/corpus/ under `make test`.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_BUILD   := $(O)/build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
FUZZ_CFLAGS   = $(filter-out -fsanitize=%,$(ALL_CFLAGS)) $(FUZZ_SAN)
FUZZ_SRC     := $(wildcard tests/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJ     := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

.PHONY: fuzz fuzz-build
$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libtriad.a: $(FUZZ_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz_%.c $(FUZZ_BUILD)/libtriad.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< -o $@ \
	  $(FUZZ_BUILD)/libtriad.a $(LIBS)

fuzz-build: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	@fail=0; for f in $(FUZZ_BIN); do \
	  n=$$(basename $$f); n=$${n#fuzz_}; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$n $(FUZZ_BUILD)/crash/$$n; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash/$$n/ \
	    $(FUZZ_BUILD)/corpus/$$n tests/corpus/$$n || fail=1; \
	done; exit $$fail

# ---- valgrind (added by the soak/valgrind task) ------------------------
# `make valgrind`: 1. the end-to-end suites with every triad process they
# start (serve, kafka-mock, load, stats...) under valgrind memcheck: e2e.h's
# spawn() and test_load's run() put $TRIAD_VALGRIND in front of $TRIAD_BIN,
# so a leak (definite or indirect) or a memory error makes the process exit
# 99 and the suite, which checks every exit status, fails; waits are
# stretched by TRIAD_TIME_SCALE and Check's timeouts by CK_TIMEOUT_MULTIPLIER.
# 2. the test binaries themselves under valgrind in one process
# (CK_FORK=no; their servers then run natively; children forked to exec
# them are silent). 3. every non-empty log in
# $(VALGRIND_DIR) is checked for a non-zero "ERROR SUMMARY"; logs without a
# summary belong to processes the tests kill -9 on purpose and are counted.
VALGRIND_DIR   := $(BUILD)/valgrind
VALGRIND_OPTS  := --leak-check=full --show-leak-kinds=definite,indirect \
                  --errors-for-leak-kinds=definite,indirect \
                  --error-exitcode=99 --num-callers=30
VALGRIND_SCALE ?= 20
VALGRIND_E2E   := test_server test_kafka test_replicas test_load
# test_eval is left out: 5 minutes under valgrind (VALGRIND_SELF=... to add)
VALGRIND_SELF  ?= test_server test_kafka test_replicas test_store test_event \
                  test_load test_fuzz_regress test_graph test_candidates \
                  test_scoring
.PHONY: valgrind
valgrind: deps
	@command -v valgrind >/dev/null || { echo "make valgrind: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
	@[ -z "$(SANITIZE)" ] || { echo "make valgrind: not with SANITIZE (valgrind and ASan do not mix)" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(TRIAD) $(TEST_BIN)
	@rm -rf $(VALGRIND_DIR) && mkdir -p $(VALGRIND_DIR)
	@fail=0; t0=$$(date +%s); \
	for t in $(VALGRIND_E2E); do \
	  echo "== valgrind: $$t, every triad process under memcheck"; \
	  TRIAD_VALGRIND="valgrind $(VALGRIND_OPTS) --log-file=$(abspath $(VALGRIND_DIR))/$$t.triad.%p.log" \
	  TRIAD_TIME_SCALE=$(VALGRIND_SCALE) CK_TIMEOUT_MULTIPLIER=$(VALGRIND_SCALE) \
	  TRIAD_BIN=$(abspath $(TRIAD)) TRIAD_DATA=$(abspath data) \
	    $(BUILD)/tests/$$t || fail=1; \
	done; \
	for t in $(VALGRIND_SELF); do \
	  echo "== valgrind: $$t itself (CK_FORK=no)"; \
	  CK_FORK=no CK_TIMEOUT_MULTIPLIER=$(VALGRIND_SCALE) \
	  TRIAD_BIN=$(abspath $(TRIAD)) TRIAD_DATA=$(abspath data) \
	    valgrind $(VALGRIND_OPTS) --child-silent-after-fork=yes \
	      --log-file=$(VALGRIND_DIR)/$$t.self.%p.log \
	    $(BUILD)/tests/$$t || fail=1; \
	done; \
	n=0; bad=0; killed=0; \
	for f in $(VALGRIND_DIR)/*.log; do \
	  [ -s "$$f" ] || continue; n=$$((n + 1)); \
	  if ! grep -q "ERROR SUMMARY:" "$$f"; then killed=$$((killed + 1)); \
	  elif grep -q "ERROR SUMMARY: [1-9]" "$$f"; then bad=$$((bad + 1)); \
	    echo "== valgrind errors in $$f:"; grep -E "definitely|indirectly|Invalid|uninitialised|ERROR SUMMARY" "$$f" | head -20; \
	  fi; \
	done; \
	echo "valgrind: $$n processes checked, $$bad with errors or leaks, $$killed without a summary (killed on purpose), $$(( $$(date +%s) - t0 )) s; logs in $(VALGRIND_DIR)"; \
	[ $$bad -eq 0 ] || fail=1; exit $$fail

# ---- scale (tests/scale.c) ---------------------------------------------
# `make scale`: load time, bytes per edge, snapshot reopen, ingest rate and
# query p50/p99 on synthetic graphs of 1M, 10M and 100M edges (about 3.5
# minutes, 4 GB in /tmp/triad-scale), a Markdown table on stdout and the
# plot tests/results/scale.svg. Not part of `make bench`. SCALE_EDGES (e.g.
# 1000000,10000000), SCALE_QUERIES, SCALE_INGEST, SCALE_BUDGET, SCALE_DIR,
# SCALE_SVG change it (see the top of tests/scale.c).
SCALE_BIN := $(BUILD)/tests/scale
.PHONY: scale
scale: deps
	@$(MAKE) --no-print-directory $(TRIAD) $(SCALE_BIN)
	@mkdir -p tests/results
	@TRIAD_BIN=$(abspath $(TRIAD)) SCALE_SVG=$${SCALE_SVG:-$(abspath tests/results/scale.svg)} \
	  $(SCALE_BIN)

# ---- soak (added by the soak/valgrind task) ----------------------------
# `make soak`: tests/soak.c runs kafka-mock, serve on a 1.1M-edge synthetic
# graph, `triad replay` at SOAK_RATE events/s and wrk on /recommend in
# windows of SOAK_WINDOW s for SOAK_SECONDS (default 420, at most 450),
# drains, then prints a table and a verdict (errors, RSS flat, p99 stable,
# no ingest stall, every produced event applied once; exit 1 on failure).
# About 8 minutes, loopback only. Knobs: see the header of tests/soak.c.
SOAK_BIN := $(BUILD)/tests/soak
.PHONY: soak
soak: bench-deps
	@$(MAKE) --no-print-directory $(TRIAD) $(SOAK_BIN)
	@TRIAD_BIN=$(abspath $(TRIAD)) SOAK_LUA=$(abspath tests/soak_recommend.lua) \
	  RECOMMEND_LUA=$(abspath tests/recommend.lua) $(SOAK_BIN)

# ---- demo (tests/demo.sh) -----------------------------------------------
# `make demo`: kafka-mock, serve the first half of CollegeMsg, replay the
# second half through Kafka at DEMO_RATE (default 1000) events/s and print
# one member's top 5 every DEMO_EVERY (3) seconds as the stream flows.
.PHONY: demo
demo: deps
	@command -v curl >/dev/null || { \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq curl >/dev/null; }
	@$(MAKE) --no-print-directory $(TRIAD)
	@TRIAD_BIN=$(abspath $(TRIAD)) TRIAD_DATA=$(abspath data) sh tests/demo.sh

# ---- the built-in model --------------------------------------------------
# `make model`: retrain the two built-in models, data/model.json on the
# bundled CollegeMsg sample (split 0.8; for graphs with times) and
# data/model-static.json on the facebook sample in a random order (for
# graphs without), and regenerate scoring/model_default.inc (python3).
# The served model leaves the time features out (--features no-time): with
# them the answer costs about three times as much (README, "train and eval"),
# and it is logistic (--kind logistic): on CollegeMsg the validation
# prefers it, boosted trees cost about 0.08 ms more per answer (README),
# and only a logistic model can be built in.
.PHONY: model
model: deps
	@$(MAKE) --no-print-directory $(TRIAD)
	$(TRIAD) train data/CollegeMsg.txt -o data/model.json --name collegemsg-lr --features no-time --kind logistic --quiet
	$(TRIAD) train data/facebook_combined.txt --random-order -o data/model-static.json --name facebook-lr --kind logistic --quiet
	python3 tests/model_inc.py data/model.json data/model-static.json > scoring/model_default.inc.tmp
	mv scoring/model_default.inc.tmp scoring/model_default.inc
	@$(MAKE) --no-print-directory $(TRIAD)
