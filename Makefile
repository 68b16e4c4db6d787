# certbridge - top-level Makefile.
#
#   make            install missing Debian packages, build build/certbridge and tools
#   make test       unit tests, -t fixtures, integration tests, then all of it again
#                   under AddressSanitizer + UndefinedBehaviorSanitizer, fuzzing,
#                   and the quick reliability suite (soak-quick)
#   make soak       the full reliability suite (docs/reliability.md)
#   make bench      the benchmarks (docs/benchmarks.md)
#   make run        the lab: test PKI, local TLS mosquitto, certbridge on conf/lab.ini
#   make cross ARCH=arm64|armhf   an ARM gateway's certbridge, into build/ARCH/
#   make test-cross its unit tests and a lab session under qemu-user, both ARCHs
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean
#
# SANITIZE=address,undefined builds into build/asan/ instead of build/.
# WOLFSSL=system links Debian's shared libwolfssl instead of the project's
# own static build of it, into build/system/ (and build/system/asan/);
# docs/install.md, "Which wolfSSL".

CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?=
WOLFSSL  ?= own
PYTHON   := /usr/bin/python3

ifeq ($(WOLFSSL),own)
BASE     := build
else ifeq ($(WOLFSSL),system)
BASE     := build/system
else
$(error WOLFSSL=$(WOLFSSL): use WOLFSSL=own (the default: the project's static wolfSSL) or WOLFSSL=system (Debian's libwolfssl))
endif

# ARCH=arm64 or ARCH=armhf: a cross build for an ARM gateway into build/ARCH/
# (docs/install.md, "ARM gateways"): Debian's cross compiler, the project's
# wolfSSL cross-built (ARM_CRYPTO=no: an arm64 core without the ARMv8 crypto
# extensions), libevent and inih from a private sysroot of Debian's arm
# packages (tools/cross-sysroot.sh), all three linked statically: one file
# to copy. CC and AR from the environment or the command line win.
ARCH       ?=
ARM_CRYPTO ?= yes
ifneq ($(ARCH),)
ifeq ($(ARCH),arm64)
TRIPLET  := aarch64-linux-gnu
QEMU     := qemu-aarch64-static
else ifeq ($(ARCH),armhf)
TRIPLET  := arm-linux-gnueabihf
QEMU     := qemu-arm-static
else
$(error ARCH=$(ARCH): use ARCH=arm64 or ARCH=armhf (or no ARCH for this machine))
endif
ifneq ($(WOLFSSL)$(SANITIZE),own)
$(error a cross build (ARCH=$(ARCH)) uses the project's wolfSSL and no sanitizer)
endif
ifeq ($(origin CC),default)
CC       := $(TRIPLET)-gcc
endif
ifeq ($(origin AR),default)
AR       := $(TRIPLET)-ar
endif
BASE     := build/$(ARCH)$(if $(filter no,$(ARM_CRYPTO)),-nocrypto)
SYSROOT  := build/$(ARCH)/sysroot
SYSLIB   := $(SYSROOT)/usr/lib/$(TRIPLET)
endif

ifeq ($(SANITIZE),)
B        := $(BASE)
SANFLAGS :=
else
B        := $(BASE)/asan
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# Messages are written into fixed buffers with snprintf and are cut short by
# design when a path or a name is huge, hence -Wno-format-truncation.
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wundef -Wformat=2 -Wpointer-arith -Wcast-qual -Wvla -Wno-format-truncation

# CFLAGS, CPPFLAGS and LDFLAGS are the caller's (optimisation, debug info,
# extras): `make CFLAGS=-O0` replaces them. What the code needs is in the
# CB_ variables below, which every compile and link rule uses too, so the
# language, the warnings, the sanitizers and the defines cannot be dropped.
CFLAGS   ?= -O2 -g
# _FILE_OFFSET_BITS=64: on a 32-bit target (armhf) stat() and readdir()
# fail with EOVERFLOW on today's 64-bit inode numbers without it (a
# device_certs folder would list as empty). No libevent call certbridge
# makes passes an off_t, so the library's own build does not matter.
CB_CPPFLAGS := -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -D_FILE_OFFSET_BITS=64 \
               -DINI_HANDLER_LINENO=1
CB_CFLAGS   := -std=c11 $(WARN) $(SANFLAGS)
CB_LDFLAGS  := $(SANFLAGS)
ifeq ($(ARCH),)
LDLIBS    = $(WOLFSSL_LIBS) -levent -linih
CMOCKA    := -lcmocka
SYSROOT_STAMP :=
else
# The sysroot's headers after the cross compiler's own; its .a files by
# path (its .so links point at packages that are not unpacked); cmocka's
# .so found at run time through the rpath.
CB_CPPFLAGS += -isystem $(SYSROOT)/usr/include -isystem $(SYSROOT)/usr/include/$(TRIPLET)
LDLIBS    = $(WOLFSSL_LIBS) $(SYSLIB)/libevent.a $(SYSLIB)/libinih.a
CMOCKA    := -L$(SYSLIB) -Wl,-rpath,$(abspath $(SYSLIB)) -lcmocka
SYSROOT_STAMP := $(SYSROOT)/PACKAGES
endif

# The project's own wolfSSL (tools/wolfssl-build.sh: Debian's pinned source,
# configured for certbridge, static) is built once into WOLFSSL_CACHE, keyed
# by its version and flags, and reused by every build folder and by later
# clones on the same machine. build/wolfssl.prefix names the prefix in use:
# the script runs at every make (0.1 s when cached, so a deleted or outdated
# cache is rebuilt), and the file is rewritten only when the prefix changes,
# which then rebuilds every object. -isystem, as for /usr/include: wolfSSL's
# headers are not held to certbridge's warnings.
WOLFSSL_CACHE ?= /var/tmp/certbridge-wolfssl
ifeq ($(WOLFSSL),own)
WOLFSSL_STAMP    := $(BASE)/wolfssl.prefix
wolfssl_prefix    = $(shell cat $(WOLFSSL_STAMP))
WOLFSSL_CPPFLAGS  = -isystem $(wolfssl_prefix)/include
WOLFSSL_LIBS      = $(wolfssl_prefix)/lib/libwolfssl.a
else
WOLFSSL_STAMP    :=
WOLFSSL_CPPFLAGS :=
WOLFSSL_LIBS     := -lwolfssl
endif

# Include paths by folder, so that a layering mistake fails to compile:
# common/ (and the fuzz targets, the tests of common/) see only common/;
# gateway/ and its tests (test_gw_*) see gateway/ too; tools/ and the test
# of certbridge-diag's modules see tools/ too.
GATEWAY_SIDE := gateway/% tests/unit/test_gw_% tests/unit/gw_%
TOOLS_SIDE   := tools/% tests/unit/test_diag.c
includes = -Icommon $(if $(filter $(GATEWAY_SIDE),$(1)),-Igateway) \
           $(if $(filter $(TOOLS_SIDE),$(1)),-Itools)

# The codec and value parsers take untrusted bytes: be strict about
# silent integer narrowing there.
STRICT_SRC := common/mqtt.c common/mqtt_connect.c common/parse.c common/parse_net.c
$(patsubst %.c,$(B)/%.o,$(STRICT_SRC)): CB_CFLAGS += -Wconversion -Wsign-conversion

COMMON_SRC  := $(sort $(wildcard common/*.c))
GATEWAY_SRC := $(sort $(filter-out gateway/main.c,$(wildcard gateway/*.c)))
COMMON_OBJ  := $(COMMON_SRC:%.c=$(B)/%.o)
GATEWAY_OBJ := $(GATEWAY_SRC:%.c=$(B)/%.o)
UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_SRC    := $(sort $(wildcard tools/certbridge-*.c))
TOOL_BIN    := $(TOOL_SRC:tools/%.c=$(B)/%)
# certbridge-diag's own steps (network, TLS, MQTT, text): linked into it and
# its unit test only, so common/ keeps just what the gateway and the tools
# share.
DIAG_SRC    := $(sort $(wildcard tools/diag_*.c))
DIAG_OBJ    := $(DIAG_SRC:%.c=$(B)/%.o)
# certbridge-certs' tables (tools/certs_*.c), linked into it alone.
CERTS_SRC   := $(sort $(wildcard tools/certs_*.c))
CERTS_OBJ   := $(CERTS_SRC:%.c=$(B)/%.o)

BINS := $(B)/certbridge $(TOOL_BIN)

.SECONDARY:

.PHONY: all build build-deps deps test test-quick test-container test-unit test-conf \
        test-integration run cross test-cross cross-check \
        der-fixtures install clean bench fuzz fuzz-run soak soak-quick FORCE

all: build-deps
	@$(MAKE) --no-print-directory build

build: $(BINS)

# Build packages only for `make`; everything (tests, lab) for test and run.
build-deps:
	@tools/install-deps.sh build

deps:
	@tools/install-deps.sh

$(BASE)/wolfssl.prefix: FORCE
	@mkdir -p $(dir $@)
	@p=$$($(if $(ARCH),CC="$(CC)" WOLFSSL_HOST=$(TRIPLET) WOLFSSL_ARM_CRYPTO=$(ARM_CRYPTO)) \
		tools/wolfssl-build.sh $(WOLFSSL_CACHE)) && \
		{ [ "$$(cat $@ 2>/dev/null)" = "$$p" ] || echo "$$p" > $@; }

ifneq ($(ARCH),)
# A cross build's sysroot is made once (make cross refreshes it).
$(SYSROOT)/PACKAGES:
	tools/cross-sysroot.sh $(ARCH) $(SYSROOT)
endif

$(B)/%.o: %.c $(WOLFSSL_STAMP) | $(SYSROOT_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CB_CPPFLAGS) $(call includes,$<) $(WOLFSSL_CPPFLAGS) $(CPPFLAGS) $(CB_CFLAGS) \
		$(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/libgateway.a: $(GATEWAY_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/certbridge: $(B)/gateway/main.o $(B)/libgateway.a $(B)/libcommon.a
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/certbridge-%: $(B)/tools/certbridge-%.o $(B)/libcommon.a
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A tool's private objects go before the archive, which resolves what they
# use of common/.
$(B)/certbridge-diag: $(B)/tools/certbridge-diag.o $(DIAG_OBJ) $(B)/libcommon.a
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/certbridge-certs: $(B)/tools/certbridge-certs.o $(CERTS_OBJ) $(B)/libcommon.a
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests of common/ link common/ only; test_gw_* also link the gateway's
# modules (everything but main.c).
$(B)/tests/%: $(B)/tests/unit/%.o $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA)

$(B)/tests/test_gw_%: $(B)/tests/unit/test_gw_%.o $(B)/libgateway.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA)

$(B)/tests/test_diag: $(B)/tests/unit/test_diag.o $(DIAG_OBJ) $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA)

# The session's tests run it over the fake transport: gw_fake_conn.o comes
# before the archive, so the archive's conn.o is never linked
# (docs/architecture.md, "Seams").
$(B)/tests/test_gw_session: $(B)/tests/unit/test_gw_session.o \
		$(B)/tests/unit/gw_fake_conn.o $(B)/libgateway.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CB_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA)

# ---------------------------------------------------------------- tests

test: deps
	@$(MAKE) --no-print-directory test-unit test-conf test-integration
	@$(MAKE) --no-print-directory SANITIZE=address,undefined test-unit test-conf test-integration
	@$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=30
	@$(MAKE) --no-print-directory soak-quick
	@echo "make test: all passed"

# The container image, built for real from a Debian base made with
# debootstrap from this machine's package mirror (no registry), then run:
# -t, uid 8883, a device session to a broker outside it (tools/
# container-build.sh, tests/container/; docs/install.md "Container").
# About 5 minutes the first time, 3 with the base cached.
test-container: deps
	@img=$$(tools/container-build.sh) && \
		CB_IMAGE=$$img $(PYTHON) -m pytest -q -p no:cacheprovider tests/container

# The fast loop while working (README): one pass, no sanitizers, no fuzzing,
# no reliability suite.
test-quick: deps
	@$(MAKE) --no-print-directory test-unit test-conf test-integration
	@echo "make test-quick: all passed (make test runs the rest)"

# Real certificates and CRLs for the DER readers' and the judge's tests, and
# the lab PKI the session's tests load, made afresh at every run (about a
# second) because their dates are relative to now; the tests find them in
# CB_DER_FIXTURES.
DER_FIXTURES := $(B)/tests/der-fixtures

der-fixtures:
	@rm -rf $(DER_FIXTURES) && mkdir -p $(DER_FIXTURES)
	@$(PYTHON) tests/unit/gen_der_fixtures.py $(DER_FIXTURES)
	@$(PYTHON) tests/unit/gen_judge_pki.py $(DER_FIXTURES)/judge
	@$(PYTHON) tests/unit/gen_devstore_pki.py $(DER_FIXTURES)/devstore
	@$(PYTHON) tools/mkpki.py lab $(DER_FIXTURES)/lab >/dev/null

test-unit: $(UNIT_BIN) der-fixtures
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
		CB_DER_FIXTURES=$(CURDIR)/$(DER_FIXTURES) $$t; done

test-conf: $(B)/certbridge
	@tests/conf/run.sh $(B)/certbridge

test-integration: $(BINS)
	CERTBRIDGE=$(CURDIR)/$(B)/certbridge CB_BUILD=$(CURDIR)/$(B) CB_SANITIZE=$(SANITIZE) \
		CB_WOLFSSL=$(WOLFSSL) \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# ---------------------------------------------------------------- ARM

# certbridge and its tools for an ARM gateway (ARCH=arm64 or armhf; see
# ARCH above), with the cross compilers and qemu-user installed first.
cross:
	@[ -n "$(ARCH)" ] || { echo "make cross ARCH=arm64 (or ARCH=armhf)" >&2; exit 2; }
	@tools/install-deps.sh cross
	@tools/cross-sysroot.sh $(ARCH) $(SYSROOT)
	@$(MAKE) --no-print-directory build
	@file -b $(B)/certbridge | cut -d, -f1-2
	@ls -l $(B)/certbridge | awk '{ print "$(B)/certbridge: " $$5 " bytes" }'

# Both ARM builds, each checked under qemu-user: the unit tests, then
# tests/cross (the binary's shape, -t, a device session through it to a
# mosquitto on this machine). About 5 minutes (README).
test-cross: deps
	@$(MAKE) --no-print-directory cross-check ARCH=arm64
	@$(MAKE) --no-print-directory cross-check ARCH=armhf
	@echo "make test-cross: all passed"

cross-check: cross
	@$(MAKE) --no-print-directory $(UNIT_BIN) der-fixtures
	@set -e; for t in $(UNIT_BIN); do echo "== $(ARCH): $$t"; \
		CB_DER_FIXTURES=$(CURDIR)/$(DER_FIXTURES) $(QEMU) -L /usr/$(TRIPLET) $$t; done
	CB_CROSS_ARCH=$(ARCH) CB_CROSS_BUILD=$(CURDIR)/$(B) CB_QEMU="$(QEMU) -L /usr/$(TRIPLET)" \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/cross

# ---------------------------------------------------------------- fuzz

# libFuzzer targets, built with clang against common/ compiled for fuzzing.
# `make fuzz FUZZ_SECONDS=600` for a longer run; make test runs each 30 s.
FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_B       := $(BASE)/fuzz
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_COMMON  := $(COMMON_SRC:%.c=$(FUZZ_B)/%.o)
FUZZERS      := $(FUZZ_B)/fuzz_mqtt $(FUZZ_B)/fuzz_config $(FUZZ_B)/fuzz_certfacts \
                $(FUZZ_B)/fuzz_crl

$(FUZZ_B)/%.o: %.c $(WOLFSSL_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CB_CPPFLAGS) $(call includes,$<) $(WOLFSSL_CPPFLAGS) $(CPPFLAGS) -std=c11 \
		$(filter-out -Wno-format-truncation,$(WARN)) $(FUZZ_FLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/tests/fuzz/fuzz_%.o $(FUZZ_COMMON)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

# Runs every target for $(FUZZ_SECONDS) on a scratch copy of its seed
# corpus; any crash, leak or sanitizer report fails.
fuzz-run: $(FUZZERS)
	@set -e; for f in mqtt config certfacts crl; do \
		work=$(FUZZ_B)/corpus-$$f; rm -rf $$work; mkdir -p $$work; \
		cp tests/fuzz/corpus/$$f/* $$work/; \
		echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
		$(FUZZ_B)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_B)/crash-$$f- $$work 2>$(FUZZ_B)/fuzz_$$f.log \
			|| { tail -50 $(FUZZ_B)/fuzz_$$f.log; exit 1; }; \
		grep -E "stat::number_of_executed_units|stat::new_units_added" $(FUZZ_B)/fuzz_$$f.log; \
	done

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-run

# ---------------------------------------------------------------- bench

# Figures, not assertions: see docs/benchmarks.md. certbridge beside HAProxy
# (installed by tools/bench.py when missing), 3 interleaved runs, about 5 min;
# BENCH_ARGS=--quick for small numbers. Then the status page's cost
# (tools/bench_page.py, a few seconds).
bench: deps
	@$(MAKE) --no-print-directory build
	$(PYTHON) tools/bench.py --build $(B) $(BENCH_ARGS)
	$(PYTHON) tools/bench_page.py --build $(B)

# ---------------------------------------------------------------- soak

# The reliability suite: faults injected while messages flow, every outcome
# asserted (docs/reliability.md). soak: scenarios 1-7 at larger scale plus
# 10,000 sessions held for 10 minutes (about 15 min); soak-quick: 1-7 at
# small scale (about 2 min). Table in $(B)/soak/results.md, logs in
# $(B)/soak/work/.
soak: deps
	@$(MAKE) --no-print-directory build
	$(PYTHON) tools/soak.py --build $(B) --out $(B)/soak/results.md

soak-quick: deps
	@$(MAKE) --no-print-directory build
	$(PYTHON) tools/soak.py --quick --build $(B) --out $(B)/soak/results.md

# ---------------------------------------------------------------- lab

# The lab on this machine (tools/lab.sh): the build's output goes to a log,
# the terminal shows the lab and certbridge's own log. Other ports:
# make run PORT=18883 ADMIN_PORT=19883 BROKER_PORT=28884.
run: deps
	@mkdir -p build
	@echo "make run: building certbridge (log: build/run-build.log)"
	@$(MAKE) --no-print-directory build >build/run-build.log 2>&1 || \
		{ tail -n 30 build/run-build.log; \
		  echo "make run: the build failed; the whole log is build/run-build.log" >&2; exit 1; }
	@PORT="$(PORT)" ADMIN_PORT="$(ADMIN_PORT)" BROKER_PORT="$(BROKER_PORT)" tools/lab.sh

# ---------------------------------------------------------------- install

SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system

# The configuration is installed only where none exists: an upgrade never
# overwrites a gateway's settings.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/certbridge \
		$(DESTDIR)$(PREFIX)/share/doc/certbridge
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/certbridge/
	install -m 0644 conf/certbridge.ini $(DESTDIR)$(PREFIX)/share/doc/certbridge/certbridge.ini.example
	install -m 0644 conf/certbridge-alerts.yml $(DESTDIR)$(PREFIX)/share/doc/certbridge/
	sed -e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/certbridge/|$(SYSCONFDIR)/certbridge/|g' \
		conf/certbridge.service > $(DESTDIR)$(UNITDIR)/certbridge.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/certbridge.service
	test -e $(DESTDIR)$(SYSCONFDIR)/certbridge/certbridge.ini || \
		install -m 0640 conf/certbridge.ini $(DESTDIR)$(SYSCONFDIR)/certbridge/certbridge.ini

clean:
	rm -rf build

-include $(shell find build -type f -name '*.d' 2>/dev/null)
