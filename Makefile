# ttsmig - migrate LoRaWAN end devices from TTS Community Edition to TTS Cloud.
#
#   make            build build/ttsmig (optimised, with debug info)
#   make test       install missing Debian packages, build with
#                   AddressSanitizer + UBSan, run every unit and integration
#                   test against a throwaway PostgreSQL
#   make demo       install what is missing, start PostgreSQL and two
#                   simulators, run a whole migration
#   make install    PREFIX=/usr/local (binaries and the man page)
#   make deps       install the Debian packages the build and tests need
#   make memcheck   run the test suite under valgrind (no sanitizers)
#   make bench      the performance benchmark (tests/bench/, several minutes)
#   make newcomer   `make demo` from a fresh clone of HEAD, as a newcomer runs
#                   it (tests/newcomer.sh; minutes: a full build)
#   make format     reformat the C sources with clang-format
#   make torture    the long torture tests (tests/torture/: kill -9 during
#                   apply, snapshot, reconcile and rollback, 4 workers,
#                   PostgreSQL restarts, faults; 1,000 devices; hours)
#   make fuzz       build the libFuzzer targets (clang) in build/fuzz and run
#                   each for FUZZ_SECONDS (default 600); not part of `make test`
#
# Variables: BUILD (output directory), SAN=1 (sanitizer build), PREFIX, CC.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
CC         ?= cc
BUILD      ?= build
SAN        ?= 0

# Debian packages: build tools, libraries, and the PostgreSQL server the tests
# and the demo run (python3-yaml: tests/integration/test_compose.sh; jq: an
# example of the README that tests/integration/test_readme.sh runs).
DEB_PKGS := build-essential pkg-config libpq-dev postgresql libcurl4-openssl-dev \
            libcjson-dev libcmocka-dev libmicrohttpd-dev libsodium-dev curl python3-yaml jq
# clang and its libFuzzer runtime, for `make fuzz` and the short fuzz runs in
# `make test` (tests/fuzz/), where LLVM ships libFuzzer for the architecture
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
ifneq ($(filter amd64 arm64 i386 s390x,$(DEB_ARCH)),)
DEB_PKGS += clang libclang-rt-14-dev
endif

PKGS       := libpq libcurl libcjson libsodium
TEST_PKGS  := cmocka
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

GEN        := $(BUILD)/gen
WARN       := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
              -Wmissing-prototypes -Wvla -Wno-missing-field-initializers
CPPFLAGS   += -D_GNU_SOURCE -Iinclude -I$(GEN) -DTTSMIG_VERSION='"$(VERSION)"'
# HOOKS=1: the crash-point hooks of the engine tests (test builds only)
HOOKS      ?= $(SAN)
ifeq ($(HOOKS),1)
CPPFLAGS   += -DTTSMIG_TEST_HOOKS
endif
ifeq ($(SAN),1)
OPT        := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all
LDSAN      := -fsanitize=address,undefined
else
OPT        := -O2 -g
LDSAN      :=
endif
CFLAGS     ?=
ALL_CFLAGS := -std=c17 $(WARN) $(OPT) $(PKG_CFLAGS) $(CFLAGS)

LIB_SRCS   := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS   := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/sql_gen.o
SQL_FILES  := $(sort $(wildcard sql/*.sql)) $(sort $(wildcard sql/queries/*.sql))

SIM_SRCS   := $(wildcard src/sim/*.c)
SIM_OBJS   := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SIM_SRCS))
SIM_PKGS   := libmicrohttpd
SIM_LIBS   := $(shell pkg-config --libs $(SIM_PKGS) 2>/dev/null)
SIM_CFLAGS := $(shell pkg-config --cflags $(SIM_PKGS) 2>/dev/null)
SIM_BIN    := $(if $(SIM_SRCS),$(BUILD)/ttsmig-sim)

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
INTEG_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(INTEG_SRCS))
TESTUTIL   := $(patsubst tests/%.c,$(BUILD)/obj/tests/%.o,$(wildcard tests/*.c))

.PHONY: all deps test test-build demo install uninstall clean memcheck format format-check devmap bench newcomer
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BUILD)/ttsmig $(SIM_BIN)

# ---------------------------------------------------------------------------
# generated sources

$(BUILD)/tools/embed_sql: src/tools/embed_sql.c
	@mkdir -p $(@D)
	$(CC) -std=c17 -Wall -Wextra -Werror -O1 -o $@ $<

$(GEN)/ttsmig/sql_gen.h $(GEN)/sql_gen.c &: $(BUILD)/tools/embed_sql $(SQL_FILES)
	@mkdir -p $(GEN)/ttsmig
	$(BUILD)/tools/embed_sql $(GEN)/ttsmig/sql_gen.h $(GEN)/sql_gen.c $(SQL_FILES)

# The EndDevice ownership table (src/devmap_table.c) is generated from the
# stack's own JSON files and committed; `make devmap` regenerates it.  The
# generator links redact.c so its "secret" flag follows redact_is_secret_path.
TTSMIG_SHARED_DIR ?= ../shared
GEN_DEVMAP_SRCS := src/tools/gen_devmap.c src/redact.c src/mem.c src/buf.c

$(BUILD)/tools/gen_devmap: $(GEN_DEVMAP_SRCS) include/ttsmig/devmap.h include/ttsmig/redact.h
	@mkdir -p $(@D)
	$(CC) -std=c17 $(WARN) -O1 $(CPPFLAGS) $(PKG_CFLAGS) -o $@ $(GEN_DEVMAP_SRCS) $(PKG_LIBS)

devmap: $(BUILD)/tools/gen_devmap
	$(BUILD)/tools/gen_devmap $(TTSMIG_SHARED_DIR)/tts/generated src/devmap_table.c

# ---------------------------------------------------------------------------
# library and binaries

$(BUILD)/obj/%.o: src/%.c $(GEN)/ttsmig/sql_gen.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/obj/sql_gen.o: $(GEN)/sql_gen.c $(GEN)/ttsmig/sql_gen.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libttsmig.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/ttsmig: $(BUILD)/obj/main.o $(BUILD)/libttsmig.a
	$(CC) $(LDSAN) -o $@ $^ $(PKG_LIBS)

# the simulator of a TTS deployment (src/sim/), linked with the library for
# the shared modules (buf, err, devmap, ...)
$(BUILD)/obj/sim/%.o: src/sim/%.c $(GEN)/ttsmig/sql_gen.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Isrc/sim $(ALL_CFLAGS) $(SIM_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/ttsmig-sim: $(SIM_OBJS) $(BUILD)/libttsmig.a
	$(CC) $(LDSAN) -o $@ $^ $(SIM_LIBS) $(PKG_LIBS) -lm

# ---------------------------------------------------------------------------
# tests

$(BUILD)/obj/tests/%.o: tests/%.c $(GEN)/ttsmig/sql_gen.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests $(ALL_CFLAGS) $(TEST_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(TESTUTIL) $(BUILD)/libttsmig.a
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(TESTUTIL) $(BUILD)/libttsmig.a
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

# helpers of the torture scripts (tests/torture/*.c), also used by their
# short versions in `make test`
TORTURE_TOOLS := $(patsubst tests/torture/%.c,$(BUILD)/tests/torture/%,$(wildcard tests/torture/*.c))

$(BUILD)/tests/torture/%: $(BUILD)/obj/tests/torture/%.o $(BUILD)/libttsmig.a
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(PKG_LIBS)

test-build: $(BUILD)/ttsmig $(SIM_BIN) $(UNIT_BINS) $(INTEG_BINS) $(TORTURE_TOOLS) \
            $(BUILD)/tools/gen_devmap

# The default test run: sanitizer build in build/asan, then the runner
# starts a throwaway PostgreSQL and runs every test binary.
test: deps
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 test-build
	tests/run.sh build/asan
	@$(MAKE) --no-print-directory format-check

# The same suite under valgrind, on a build without sanitizers.
memcheck: deps
	$(MAKE) --no-print-directory BUILD=build/memcheck SAN=0 HOOKS=1 test-build
	tests/memcheck.sh build/memcheck

demo: deps
	$(MAKE) --no-print-directory all
	src/scripts/demo.sh $(BUILD)

# What a newcomer does first: a fresh clone of HEAD (committed work only),
# then the README's `make demo` in it; checks that it ends with its report.
newcomer:
	tests/newcomer.sh

# The performance figures (tests/bench/bench.sh; BENCH_* variables set sizes).
bench: deps
	$(MAKE) --no-print-directory all
	tests/bench/bench.sh $(BUILD)

# ---------------------------------------------------------------------------
# torture (tests/torture/): the long versions, each against 1,000 devices,
# on the optimised build in $(TORTURE_BUILD); hours; not in CI (short
# versions run in `make test`: tests/integration/test_torture_short.sh):
#   apply_kill.sh  apply SIGKILLed at random >= 50 times per scenario (all 4)
#                  and resumed, the invariants after every kill
#   cmd_kill.sh    the same for snapshot, reconcile and rollback
#   workers.sh     4 apply processes on one batch, one killed (and frozen
#                  past its lease) again and again: lease expiry, fencing
#   pg_restart.sh  PostgreSQL restarted and stopped for 10 s mid-apply
#   faults.sh      5xx, 429, drops, stalls, malformed bodies on both sides
# Every figure goes to $(TORTURE_BUILD)/torture-figures.tsv, printed at the
# end.  TORTURE_SCRIPTS picks some; the scripts' settings (TORTURE_DEVICES,
# TORTURE_KILLS, TORTURE_SEED, ...) are in their headers.

TORTURE_BUILD   ?= build/torture
TORTURE_SCRIPTS ?= apply_kill.sh cmd_kill.sh workers.sh pg_restart.sh faults.sh

.PHONY: torture

torture: deps
	$(MAKE) --no-print-directory BUILD=$(TORTURE_BUILD) SAN=0 all \
		$(TORTURE_BUILD)/tests/torture/copycheck
	@rm -f $(TORTURE_BUILD)/torture-figures.tsv
	@status=0; for s in $(TORTURE_SCRIPTS); do \
		echo "=== tests/torture/$$s"; \
		TORTURE_FIGURES=$(CURDIR)/$(TORTURE_BUILD)/torture-figures.tsv \
			tests/torture/$$s $(TORTURE_BUILD) || status=1; \
	done; \
	echo "=== figures (script, scenario, name, value): $(TORTURE_BUILD)/torture-figures.tsv"; \
	cat $(TORTURE_BUILD)/torture-figures.tsv 2>/dev/null; \
	exit $$status

# ---------------------------------------------------------------------------
# fuzzing (tests/fuzz/): one libFuzzer target per tests/fuzz/fuzz_*.c, built
# with clang in $(FUZZ_BUILD): the library instrumented for coverage with
# ASan and UBSan (fuzzer-no-link), each target linked with libFuzzer's main.
# `make fuzz` seeds the corpora from the fixtures and runs every target for
# FUZZ_SECONDS; tests/integration/test_fuzz_short.sh runs them briefly in
# `make test`.  Crash inputs stay in $(FUZZ_BUILD)/crashes/.

FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?= 600
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
# clang's -Wformat=2 also flags err.c's vsnprintf wrapper (gcc does not)
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
                -Wno-format-nonliteral
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-build fuzz-targets

fuzz: deps fuzz-build
	tests/fuzz/run.sh -s $(FUZZ_SECONDS) $(FUZZ_BUILD)

fuzz-build:
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) SAN=0 \
		CFLAGS="$(FUZZ_CFLAGS)" fuzz-targets

# (inside the sub-make, BUILD is the fuzz build)
fuzz-targets: $(patsubst %,$(BUILD)/%,$(FUZZ_NAMES))

$(BUILD)/obj/fuzz/%.o: tests/fuzz/%.c tests/fuzz/fuzzutil.h $(GEN)/ttsmig/sql_gen.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/fuzz $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/fuzz_%: $(BUILD)/obj/fuzz/fuzz_%.o $(BUILD)/libttsmig.a
	$(CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(PKG_LIBS)

# ---------------------------------------------------------------------------
# dependencies: install what is missing on Debian (as root), otherwise say how

deps:
	@PKGS="$(DEB_PKGS)" src/scripts/deps.sh

# ---------------------------------------------------------------------------

install: $(BUILD)/ttsmig $(SIM_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILD)/ttsmig $(DESTDIR)$(PREFIX)/bin/ttsmig
	$(if $(SIM_BIN),install -m 0755 $(SIM_BIN) $(DESTDIR)$(PREFIX)/bin/ttsmig-sim)
	install -m 0644 docs/ttsmig.1 $(DESTDIR)$(PREFIX)/share/man/man1/ttsmig.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ttsmig $(DESTDIR)$(PREFIX)/bin/ttsmig-sim \
		$(DESTDIR)$(PREFIX)/share/man/man1/ttsmig.1

# tracked files only (work in progress is checked once committed)
FORMAT_SRCS = $(shell git ls-files '*.[ch]' 2>/dev/null || find src include tests -name '*.[ch]')

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	@if command -v clang-format >/dev/null 2>&1; then \
		clang-format --dry-run --Werror $(FORMAT_SRCS) && echo "format-check: ok"; \
	else echo "format-check: clang-format not installed, skipped"; fi

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
