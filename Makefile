# uakd build: library (libuakd.a), CLI (uakd), tests, benchmarks.
#
#   make                 library and CLI in build/
#   make test            build and run every test program (the README's test command)
#   make bench           build the benchmarks (run them with bench/run.sh)
#   make SAN=1 test      the same under AddressSanitizer + UndefinedBehaviorSanitizer (build-san/)
#   make CC=clang        any C11 compiler; WERROR=1 turns warnings into errors
#   make OPENMP=0        single-threaded build without OpenMP
#   make DNNL=0          without the oneDNN fast backend (plain C kernels only)
#
# Sources are found by wildcard: src/*.c form the library, tools/*.c the CLI, each
# tests/test_*.c one test program, each bench/bench_*.c one benchmark program.

CC      ?= cc
SAN     ?= 0
OPENMP  ?= 1
WERROR  ?= 0
DNNL    ?= $(shell test -f /usr/include/oneapi/dnnl/dnnl.h && echo 1 || echo 0)
BUILD   ?= $(if $(filter 1,$(SAN)),build-san,build)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter -Iinclude -MMD -MP
LDLIBS  := -lcairo -lcjson -lpng -lturbojpeg -lopenblas -llapacke -lpthread -lm
LDFLAGS ?=

ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif
ifeq ($(OPENMP),1)
CFLAGS  += -fopenmp
LDFLAGS += -fopenmp
endif
ifeq ($(DNNL),1)
CFLAGS  += -DUAKD_HAVE_DNNL=1
LDLIBS  := -ldnnl $(LDLIBS)
endif
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC   := $(wildcard src/*.c)
CLI_SRC   := $(wildcard tools/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIB       := $(BUILD)/libuakd.a
CLI       := $(BUILD)/uakd

.PHONY: all lib cli tests bench test info clean
all: info lib cli

info:
	@echo "uakd build: CC=$(CC) ($$($(CC) -dumpversion)) BUILD=$(BUILD) OpenMP=$(OPENMP) oneDNN=$(DNNL) sanitizers=$(SAN) Werror=$(WERROR)"

lib: $(LIB)
cli: $(CLI)
tests: $(TEST_BIN)
bench: $(BENCH_BIN) $(CLI)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(CLI): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(LIB) tests/test.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

test: info $(TEST_BIN) $(CLI)
	@UAKD_CLI=$(CLI) tests/run.sh $(BUILD)/tests

clean:
	rm -rf build build-san build-clang

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d) $(BENCH_BIN:=.d)
